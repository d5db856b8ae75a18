// Whether io_uring is usable here: the syscall exists and is allowed, the kernel has
// the features and opcodes the driver relies on, and multishot receives (Linux 6.0).
#include <errno.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "iouring_probe.h"
#include "uring.h"

namespace logcaster {

namespace {

std::string ReadSysctl(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (!f) return "";
  char buf[32] = {0};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string s(buf, n);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string ProbeIoUring() {
  const char* forced = getenv("LOGCASTER_IOURING_FORCE_UNSUPPORTED");
  if (forced && *forced) return forced;

  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  int fd = SysUringSetup(8, &p);
  if (fd < 0) {
    int e = -fd;
    std::string msg = std::string("io_uring_setup: ") + std::strerror(e);
    if (e == ENOSYS) return msg + " (kernel built without io_uring, or the syscall is filtered)";
    if (e == EPERM || e == EACCES) {
      std::string v = ReadSysctl("/proc/sys/kernel/io_uring_disabled");
      if (!v.empty() && v != "0") return msg + " (kernel.io_uring_disabled=" + v + ")";
      return msg + " (blocked by a seccomp filter or container policy)";
    }
    return msg;
  }
  std::string reason;
  const unsigned need_feat = IORING_FEAT_NODROP | IORING_FEAT_FAST_POLL | IORING_FEAT_EXT_ARG;
  if ((p.features & need_feat) != need_feat) reason = "io_uring lacks NODROP/FAST_POLL/EXT_ARG (needs Linux 5.11+)";

  if (reason.empty()) {
    size_t len = sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op);
    auto* pr = static_cast<io_uring_probe*>(calloc(1, len));
    if (!pr) {
      reason = "out of memory";
    } else {
      int r = SysUringRegister(fd, IORING_REGISTER_PROBE, pr, 256);
      if (r < 0) {
        reason = std::string("io_uring_register(PROBE): ") + std::strerror(-r);
      } else {
        const struct { int op; const char* name; } need[] = {
            {IORING_OP_ACCEPT, "ACCEPT"}, {IORING_OP_RECV, "RECV"}, {IORING_OP_SEND, "SEND"},
            {IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_RECVMSG, "RECVMSG"}, {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}};
        for (const auto& n : need) {
          if (n.op > pr->last_op || !(pr->ops[n.op].flags & IO_URING_OP_SUPPORTED)) {
            reason = std::string("io_uring lacks IORING_OP_") + n.name;
            break;
          }
        }
      }
      free(pr);
    }
  }
  if (reason.empty()) {
    // Multishot recv and recvmsg (with provided buffer rings) arrived in Linux 6.0;
    // no opcode flag says so, the kernel version does.
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2) {
      if (major < 6) reason = std::string("kernel ") + u.release + " lacks multishot recv/recvmsg (needs Linux 6.0+)";
    }
  }
  close(fd);
  return reason;
}

}  // namespace logcaster
