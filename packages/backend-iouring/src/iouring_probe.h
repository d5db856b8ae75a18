#pragma once
#include <string>

namespace logcaster {

// "" when io_uring with multishot accept/recv and buffer rings is usable here,
// otherwise why not (e.g. "io_uring_setup: Operation not permitted
// (kernel.io_uring_disabled=2)"). LOGCASTER_IOURING_FORCE_UNSUPPORTED=<reason>
// makes it report that reason (to test the fallback).
std::string ProbeIoUring();

}  // namespace logcaster
