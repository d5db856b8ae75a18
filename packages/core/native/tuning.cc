// Process and file tuning (see tuning.h). The page-cache calls are advice: failures
// return false and the file's data is unaffected (fdatasync decides durability). Why the
// journal drops what it wrote: docs/ARCHITECTURE.md, "Decisions and why".
#include "tuning.h"

#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

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

// Process-wide, so only a program that owns the process calls it (the logcaster
// command does). glibc raises its mmap threshold to the size of every large block
// freed, up to 32 MiB; after that, blocks of a few MiB come from the arenas and stay
// resident once freed. A fixed threshold keeps them mmap()ed and returned on free.
Napi::Value SetMallocMmapThreshold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setMallocMmapThreshold(bytes)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double bytes = info[0].As<Napi::Number>().DoubleValue();
  bool applied = false;
#if defined(__GLIBC__)
  constexpr double kMax = 32.0 * 1024 * 1024;  // glibc's own upper bound for the threshold
  if (bytes >= 0 && bytes <= kMax) applied = mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1;
#else
  (void)bytes;
#endif
  return Napi::Boolean::New(env, applied);
}

}  // namespace

void ExportTuning(Napi::Env env, Napi::Object exports) {
  exports.Set("setMallocMmapThreshold", Napi::Function::New(env, SetMallocMmapThreshold));
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
