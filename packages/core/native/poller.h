// The readiness contract: the only thing a select/poll/epoll/kqueue backend implements.
// Everything else (accept/recv/send, connection table, write queues, timers, the
// hand-off to JS) is shared and lives in ReadinessDriver and Engine.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace logcaster {

// Interest / readiness bits.
enum : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kHangup = 1u << 2,  // peer closed its side (EPOLLRDHUP / EV_EOF / POLLHUP)
  kError = 1u << 3,   // socket error pending (EPOLLERR / EV_ERROR / POLLERR)
};

struct PollEvent {
  uint64_t token;   // what the engine passed to Add/Modify
  uint32_t events;  // kReadable | kWritable | kHangup | kError
};

class Poller {
 public:
  virtual ~Poller() = default;

  // Create kernel objects. Returns 0 or -errno; on failure *err says why.
  virtual int Open(std::string* err) = 0;

  // An fd that becomes readable whenever Wait(0) would report something, so Node's
  // own loop can watch it (epoll fd, kqueue fd). -1 when the mechanism has no such
  // fd (select, poll): the engine then calls Wait() from a helper thread, and
  // Add/Modify/Remove may run on the JS thread while Wait blocks on that thread —
  // such pollers must synchronise internally and interrupt a running Wait.
  virtual int ReadyFd() const = 0;

  // true: report readiness once per edge; the driver then reads/accepts until EAGAIN.
  virtual bool EdgeTriggered() const { return false; }

  // Register / change / drop an fd. interest is kReadable|kWritable (0 = watch
  // nothing but errors). Returns 0 or -errno; -ERANGE means "this fd can never be
  // watched by this mechanism" (select and fd >= FD_SETSIZE).
  virtual int Add(int fd, uint64_t token, uint32_t interest) = 0;
  virtual int Modify(int fd, uint64_t token, uint32_t old_interest, uint32_t new_interest) = 0;
  virtual int Remove(int fd, uint32_t old_interest) = 0;

  // Wait up to timeout_ms (-1 = forever, 0 = poll) and append at most max events.
  // Returns the number appended, or -errno (-EINTR is fine: return 0).
  virtual int Wait(int timeout_ms, std::vector<PollEvent>* out, size_t max) = 0;

  // Make a blocked or future Wait return soon (wake pipe / eventfd / EVFILT_USER).
  // Safe to call from any thread.
  virtual void Wake() = 0;
};

}  // namespace logcaster
