// Why a log writer wants this: every page it writes is a new page-cache page, and on
// virtual machines whose free memory goes back to the host (balloon free-page
// reporting) each one costs a host fault — buffered writes into a growing cache ran at
// ~200 MB/s of sys time here, against ~1.5 GB/s when the writer drops what is already
// on disk and the kernel reuses those pages. Advice only: failures return false and
// the data is unaffected (fdatasync still decides durability).
#include "page_cache.h"

#include <fcntl.h>

#include <cmath>

namespace logcaster {

namespace {

struct Range {
  int fd;
  off_t offset;
  off_t length;
};

// (fd, offset, length): non-negative integers, or a TypeError naming the call.
bool ReadRange(const Napi::CallbackInfo& info, const char* usage, Range* out) {
  Napi::Env env = info.Env();
  double v[3];
  for (size_t i = 0; i < 3; i++) {
    if (info.Length() <= i || !info[i].IsNumber()) {
      Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
      return false;
    }
    v[i] = info[i].As<Napi::Number>().DoubleValue();
    if (!(v[i] >= 0) || v[i] != std::floor(v[i]) || v[i] > 9007199254740991.0) {
      Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
      return false;
    }
  }
  if (v[0] > 2147483647.0) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return false;
  }
  *out = Range{static_cast<int>(v[0]), static_cast<off_t>(v[1]), static_cast<off_t>(v[2])};
  return true;
}

// Queue the range's dirty pages for writeback and return at once, so that a later
// drop (or fdatasync) finds them written or in flight.
bool StartWriteback(const Range& r) {
#if defined(__linux__)
  return sync_file_range(r.fd, r.offset, r.length, SYNC_FILE_RANGE_WRITE) == 0;
#else
  (void)r;
  return false;
#endif
}

// Wait for the range's pages to reach the disk (not the disk's own cache: this is not
// durability), then drop them: only clean pages can be dropped.
bool DropFromPageCache(const Range& r) {
#if defined(__linux__)
  constexpr unsigned kWrite = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  if (sync_file_range(r.fd, r.offset, r.length, kWrite) != 0) return false;
  return posix_fadvise(r.fd, r.offset, r.length, POSIX_FADV_DONTNEED) == 0;
#else
  (void)r;
  return false;
#endif
}

}  // namespace

void ExportPageCache(Napi::Env env, Napi::Object exports) {
  exports.Set("startWriteback", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Range r;
    if (!ReadRange(info, "startWriteback(fd, offset, length)", &r)) return info.Env().Undefined();
    return Napi::Boolean::New(info.Env(), StartWriteback(r));
  }));
  exports.Set("dropFromPageCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Range r;
    if (!ReadRange(info, "dropFromPageCache(fd, offset, length)", &r)) return info.Env().Undefined();
    return Napi::Boolean::New(info.Env(), DropFromPageCache(r));
  }));
}

}  // namespace logcaster
