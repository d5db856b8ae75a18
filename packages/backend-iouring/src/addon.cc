#include "addon.h"
#include "iouring_driver.h"
#include "iouring_probe.h"

namespace {

std::unique_ptr<logcaster::IoDriver> CreateIoUringDriver(const logcaster::DriverOptions& options) {
  return std::make_unique<logcaster::IoUringDriver>(options, logcaster::IoUringTuning::FromEnvironment());
}

const logcaster::BackendDescriptor kIoUringBackend = {"iouring", logcaster::ProbeIoUring, CreateIoUringDriver};

}  // namespace

LOGCASTER_BACKEND_MODULE(kIoUringBackend)
