// Page-cache advice for files a program writes once and rarely reads back (the log
// journal): start writeback early, and drop what is on disk from the cache.
#pragma once
#include <napi.h>

namespace logcaster {

// Adds startWriteback(fd, offset, length) and dropFromPageCache(fd, offset, length)
// to a backend's exports.
void ExportPageCache(Napi::Env env, Napi::Object exports);

}  // namespace logcaster
