// Built instead of the kqueue backend where <sys/event.h> does not exist (Linux):
// the package still installs and loads, and probe() says why it cannot be used, so
// the loader reports "kqueue: unsupported: ..." and automatic selection moves on.
#include "addon.h"

namespace {

#if defined(__linux__)
#define LOGCASTER_OS_NAME "linux"
#elif defined(_WIN32)
#define LOGCASTER_OS_NAME "windows"
#else
#define LOGCASTER_OS_NAME "this platform"
#endif

std::string ProbeUnsupported() {
  return "unsupported on " LOGCASTER_OS_NAME " (kqueue exists only on macOS and the BSDs)";
}

// Never called: the engine refuses to start when probe() reports a reason.
std::unique_ptr<logcaster::IoDriver> CreateNothing(const logcaster::DriverOptions&) { return nullptr; }

const logcaster::BackendDescriptor kKqueueUnsupported = {"kqueue", ProbeUnsupported, CreateNothing};

}  // namespace

LOGCASTER_BACKEND_MODULE(kKqueueUnsupported)
