// Process and file tuning every backend exports, beside the engine: glibc's mmap
// threshold (for programs that own their process) and page-cache advice for files
// written once and rarely read back (the log journal).
#pragma once
#include <napi.h>

namespace logcaster {

// Adds setMallocMmapThreshold(bytes), startWriteback(fd, offset, length) and
// dropFromPageCache(fd, offset, length) to a backend's exports.
void ExportTuning(Napi::Env env, Napi::Object exports);

}  // namespace logcaster
