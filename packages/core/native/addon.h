// What a backend addon provides: its name, a runtime probe and a driver factory.
// InitBackend turns that into the module every backend exports
// ({ name, probe(), Engine }), so backend packages contain only their syscall.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "io_driver.h"

namespace logcaster {

struct BackendDescriptor {
  const char* name;
  // "" when this machine supports the mechanism, otherwise a reason such as
  // "io_uring_setup: Operation not permitted (kernel.io_uring_disabled=2)".
  std::string (*probe)();
  std::unique_ptr<IoDriver> (*create)(const DriverOptions& options);
};

Napi::Object InitBackend(Napi::Env env, Napi::Object exports, const BackendDescriptor* backend);

}  // namespace logcaster

#define LOGCASTER_BACKEND_MODULE(descriptor)                                         \
  static Napi::Object LogcasterInit(Napi::Env env, Napi::Object exports) {           \
    return logcaster::InitBackend(env, exports, &(descriptor));                      \
  }                                                                                  \
  NODE_API_MODULE(NODE_GYP_MODULE_NAME, LogcasterInit)
