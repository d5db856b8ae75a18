#include "engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>

#include "posix_util.h"
#include "sockets.h"

namespace logcaster {

namespace {
// Bound one libuv callback so Node's loop keeps turning: at most this many
// harvest+dispatch rounds, and no new round once the turn has run kTurnBudgetMs
// (at 10,000 busy connections one round alone can take milliseconds).
constexpr int kMaxRoundsPerTurn = 8;
constexpr uint64_t kTurnBudgetMs = 4;
constexpr uint64_t kTickMs = 100;    // idle-timeout sweep / accept-retry granularity
constexpr uint64_t kAcceptRetryMs = 250;
constexpr size_t kMinReadSpace = 2048;
}  // namespace

struct Engine::Handles {
  uv_poll_t poll;
  uv_async_t async;
  uv_timer_t timer;
  Engine* engine = nullptr;
  bool has_poll = false;
  bool has_async = false;
  int open = 0;
  std::function<void()> done;
};

static void OnHandleClosed(uv_handle_t* h) {
  auto* hs = static_cast<Engine::Handles*>(h->data);
  if (--hs->open == 0) {
    auto done = std::move(hs->done);
    delete hs;
    if (done) done();
  }
}

Engine::Engine(uv_loop_t* loop, std::unique_ptr<IoDriver> driver, const EngineOptions& opts, int32_t* events,
               size_t event_capacity, char* arena, size_t arena_size)
    : loop_(loop),
      driver_(std::move(driver)),
      opts_(opts),
      events_(events),
      event_capacity_(event_capacity),
      arena_(arena),
      arena_size_(arena_size) {
  events_[0] = 0;
}

Engine::~Engine() {
  if (started_ && !shut_down_) Shutdown();
  if (handles_) CloseHandles(nullptr);
  for (Conn* c : slots_) delete c;
  driver_.reset();  // closes kernel objects after libuv stopped watching them
}

uint64_t Engine::NowMs() const {
  timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int Engine::Start(std::string* err) {
  int r = driver_->Init(this, err);  // the driver sees us as its DriverHost only
  if (r < 0) return r;
  handles_ = new Handles();
  handles_->engine = this;
  uv_timer_init(loop_, &handles_->timer);
  handles_->timer.data = handles_;
  handles_->open++;
  uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->timer));
  int fd = driver_->WatchFd();
  if (fd >= 0) {
    uv_poll_init(loop_, &handles_->poll, fd);
    handles_->poll.data = handles_;
    handles_->has_poll = true;
    handles_->open++;
    uv_poll_start(&handles_->poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* hs = static_cast<Handles*>(p->data);
      if (hs->engine) hs->engine->Turn();
    });
  } else {
    uv_async_init(loop_, &handles_->async, [](uv_async_t* a) {
      auto* hs = static_cast<Handles*>(a->data);
      if (hs->engine) hs->engine->Turn();
    });
    handles_->async.data = handles_;
    handles_->has_async = true;
    handles_->open++;
    thread_ = std::thread([this] { ThreadMain(); });
  }
  started_ = true;
  UpdateRef();
  return 0;
}

// Helper thread (select/poll): block in the kernel, then hand off to the JS thread
// and wait until that turn has consumed the results before waiting again.
void Engine::ThreadMain() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (thread_stop_) return;
    }
    driver_->WaitOnThread();
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (thread_stop_) return;
      thread_posted_ = true;
    }
    cv_.notify_all();  // a blocking RunOnce may be waiting for this
    uv_async_send(&handles_->async);
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return !thread_posted_ || thread_stop_; });
    if (thread_stop_) return;
  }
}

void Engine::Turn() {
  if (!started_ || in_turn_ || in_dispatch_) return;
  in_turn_ = true;
  stats_.turns++;
  const bool threaded = handles_->has_async;
  bool more = false;
  const uint64_t started = MonoMs();
  for (int round = 0; round < kMaxRoundsPerTurn && !shut_down_; ++round) {
    if (round > 0 && MonoMs() - started >= kTurnBudgetMs) break;
    bool posted = true;
    if (threaded) {
      std::lock_guard<std::mutex> lk(mu_);
      posted = thread_posted_;
    }
    const bool tls_more = tls_.DeliverPending();
    more = posted ? Harvest(0) : false;
    if (threaded && posted && !more) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        thread_posted_ = false;
      }
      cv_.notify_all();
    }
    DispatchPending();
    more = more || tls_more || tls_.HasPending();
    if (!more) break;
  }
  if (more && !shut_down_) {
    // Work left after our share of this loop iteration: come back on the next one.
    if (threaded) uv_async_send(&handles_->async); else driver_->Wake();
  }
  driver_->EndTurn();
  in_turn_ = false;
  UpdateRef();
  ArmTimer();
}

void Engine::RunOnce(int timeout_ms) {
  if (!started_ || shut_down_) return;
  if (handles_->has_async) {
    // select/poll: the helper thread owns the kernel wait; block until it posts.
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms < 0 ? 100 : timeout_ms),
                   [this] { return thread_posted_ || thread_stop_; });
    }
    Turn();
  } else {
    in_turn_ = true;
    tls_.DeliverPending();
    Harvest(tls_.HasPending() ? 0 : timeout_ms);
    DispatchPending();
    driver_->EndTurn();
    in_turn_ = false;
    ArmTimer();
  }
  // libuv timers do not run while JS blocks here: sweep idle timeouts ourselves.
  if (timer_running_ && NowMs() - last_sweep_ms_ >= kTickMs) OnTimer();
}

bool Engine::Harvest(int timeout_ms) {
  tls_.BeginHarvest();
  bool more = driver_->Harvest(timeout_ms);
  tls_.EndHarvest();
  return more;
}

void Engine::DispatchPending() {
  if (in_dispatch_) return;  // JS is walking the buffer; it will see new records
  for (;;) {
    while (events_[0] > 0 || !overflow_.empty()) {
      if (events_[0] == 0) {
        // Move records that did not fit into the now-empty shared buffer.
        size_t n = std::min(overflow_.size() / kEventInts, event_capacity_);
        std::memcpy(events_ + kEventHeader, overflow_.data(), n * kEventInts * sizeof(int32_t));
        overflow_.erase(overflow_.begin(), overflow_.begin() + n * kEventInts);
        events_[0] = static_cast<int32_t>(n);
      }
      in_dispatch_ = true;
      stats_.dispatches++;
      batch_serial_++;
      if (dispatch) dispatch();
      in_dispatch_ = false;
      events_[0] = 0;
      arena_used_ = 0;
    }
    if (dgram_flush_.empty()) break;
    FlushDatagrams();  // may report DRAIN or errors: dispatched by the next pass
  }
  if (arena_used_ > 0) {
    // Input that became no event (TLS records that only moved a handshake on): the
    // batch is over all the same, and its arena space is free again.
    batch_serial_++;
    arena_used_ = 0;
  }
  if (!closing_slots_.empty()) {
    free_slots_.insert(free_slots_.end(), closing_slots_.begin(), closing_slots_.end());
    closing_slots_.clear();
  }
  tls_.EndBatch();
}

void Engine::FlushDatagrams() {
  std::vector<int32_t>& list = dgram_flush_work_;  // swapped, not reallocated
  list.swap(dgram_flush_);
  for (int32_t id : list) {
    Conn* c = Lookup(id);
    if (c && !c->closing && c->HasQueuedOutput()) driver_->Flush(c, false);
  }
  list.clear();
}

void Engine::Emit(int32_t kind, int32_t id, int32_t a, int32_t b) {
  size_t n = static_cast<size_t>(events_[0]);
  if (overflow_.empty() && n < event_capacity_) {
    int32_t* r = events_ + kEventHeader + n * kEventInts;
    r[0] = kind; r[1] = id; r[2] = a; r[3] = b;
    events_[0] = static_cast<int32_t>(n + 1);
  } else {
    overflow_.insert(overflow_.end(), {kind, id, a, b});
  }
}

bool Engine::BatchFull() const {
  return static_cast<size_t>(events_[0]) + 16 >= event_capacity_ || arena_size_ - arena_used_ < kMinReadSpace;
}

char* Engine::ReadSpace(size_t* avail) {
  size_t left = arena_size_ - arena_used_;
  if (left < kMinReadSpace || static_cast<size_t>(events_[0]) + 4 >= event_capacity_) return nullptr;
  *avail = left;
  return arena_ + arena_used_;
}

void Engine::CommitRead(Conn* c, size_t len) {
  if (tls_.Has(c)) {
    tls_.OnCipher(c, arena_ + arena_used_, len);
    return;
  }
  Emit(kEvData, c->id, static_cast<int32_t>(arena_used_), static_cast<int32_t>(len));
  arena_used_ += len;
  stats_.bytes_read += len;
  if (c->idle_timeout_ms) c->last_active_ms = NowMs();
}

size_t Engine::OpenReadLength(const Conn* c) const {
  if (tls_.Has(c)) return 0;  // its DATA is plaintext after the ciphertext: nothing to extend
  const size_t n = static_cast<size_t>(events_[0]);
  if (n == 0 || !overflow_.empty()) return 0;
  const int32_t* r = events_ + kEventHeader + (n - 1) * kEventInts;
  if (r[0] != kEvData || r[1] != c->id) return 0;
  if (static_cast<size_t>(r[2]) + static_cast<size_t>(r[3]) != arena_used_) return 0;
  return static_cast<size_t>(r[3]);
}

void Engine::ExtendRead(Conn* c, size_t len) {
  int32_t* r = events_ + kEventHeader + (static_cast<size_t>(events_[0]) - 1) * kEventInts;
  r[3] += static_cast<int32_t>(len);
  arena_used_ += len;
  stats_.bytes_read += len;
  if (c->idle_timeout_ms) c->last_active_ms = NowMs();
}

Conn* Engine::Lookup(int32_t id) {
  if (id <= 0) return nullptr;
  uint32_t slot = static_cast<uint32_t>(id) & kSlotMask;
  if (slot >= slots_.size()) return nullptr;
  Conn* c = slots_[slot];
  return c->id == id ? c : nullptr;
}

Listener* Engine::LookupListener(int32_t lid) {
  if (lid < 0 || static_cast<size_t>(lid) >= listeners_.size()) return nullptr;
  Listener* l = listeners_[lid].get();
  return l && l->fd >= 0 ? l : nullptr;
}

Conn* Engine::NewConn(int fd, int32_t listener_id) {
  uint32_t slot;
  Conn* c;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    c = slots_[slot];
  } else {
    if (slots_.size() > kSlotMask) return nullptr;
    slot = static_cast<uint32_t>(slots_.size());
    c = new Conn();
    c->wq.UsePool(&chunk_pool_);
    slots_.push_back(c);
    slot_gen_.push_back(0);
  }
  // A new generation per reuse: stale ids and poller tokens never match again.
  uint32_t gen = slot_gen_[slot] + 1;
  if (gen > kMaxGen) gen = 1;
  slot_gen_[slot] = gen;
  c->fd = fd;
  c->id = static_cast<int32_t>(slot | (gen << kSlotBits));
  c->listener_id = listener_id;
  c->close_phase = 0;
  c->close_err = 0;
  live_conns_++;
  return c;
}

void Engine::ReleaseConn(Conn* c) {
  if (c->id == 0) return;
  Emit(kEvClose, c->id, c->close_err, c->close_phase);
  if (c->idle_timeout_ms) timed_conns_--;
  uint32_t slot = static_cast<uint32_t>(c->id) & kSlotMask;
  tls_.Release(c);
  c->Reset();
  closing_slots_.push_back(slot);
  live_conns_--;
  stats_.closed++;
  // A descriptor came free: listeners paused by fd exhaustion may accept again.
  if (paused_listeners_) {
    for (auto& l : listeners_) {
      if (l && l->fd >= 0 && l->accept_paused) {
        l->accept_paused = false;
        paused_listeners_--;
        driver_->ResumeAccept(l.get());
      }
    }
  }
}

void Engine::OnAccepted(Listener* l, int fd) {
  SetNoDelay(fd);
  l->exhausted_reported = false;
  Conn* c = NewConn(fd, l->id);
  if (!c) { close(fd); return; }
  stats_.accepted++;
  int r = driver_->AddConn(c);
  if (tls_.OnAccepted(l, c, r)) return;  // OPEN once the handshake is done
  // OPEN carries the registration error so the handler may still say why
  // (e.g. "ERROR: ..." on a select backend past FD_SETSIZE) before it is closed.
  Emit(kEvOpen, c->id, l->id, r < 0 ? -r : 0);
}

void Engine::OnAcceptError(Listener* l, int err) {
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
    // Out of descriptors: stop accepting (no busy loop on a level-triggered
    // listener); resume when a connection closes or after kAcceptRetryMs.
    if (!l->accept_paused) {
      l->accept_paused = true;
      l->paused_at_ms = NowMs();
      paused_listeners_++;
      stats_.accept_pauses++;
      driver_->PauseAccept(l);
      // Once per exhaustion episode, not once per retry.
      if (!l->exhausted_reported) {
        l->exhausted_reported = true;
        Emit(kEvListenError, l->id, err);
      }
    }
    ArmTimer();
  }
  // ECONNABORTED, EINTR, EPROTO...: that one connection is gone, keep going.
}

void Engine::OnConnected(Conn* c, int err) {
  if (err) { Fail(c, err, kPhaseConnect); return; }
  c->connecting = false;
  if (tls_.Has(c)) {
    driver_->UpdateReading(c);
    tls_.OnConnected(c);  // the ClientHello; OPEN once the handshake is done
    return;
  }
  Emit(kEvOpen, c->id, -1, 0);
  driver_->UpdateReading(c);
  if (!c->wq.empty()) driver_->Flush(c, false);
  else if (c->end_requested) AfterQueueChange(c);
}

void Engine::OnPeerEnd(Conn* c) {
  if (tls_.Has(c) && tls_.OnPeerEnd(c)) return;
  PeerEnded(c);
}

void Engine::PeerEnded(Conn* c) {
  if (c->peer_ended) return;
  c->peer_ended = true;
  driver_->UpdateReading(c);
  Emit(kEvEnd, c->id);
  if (c->write_shut) Fail(c, 0, kPhaseNone);
}

void Engine::OnSent(Conn* c, size_t n) {
  c->wq.Consume(n);
  CountSent(c, n);
  AfterQueueChange(c);
}

void Engine::CountSent(Conn* c, size_t n) {
  stats_.bytes_written += n;
  if (c->idle_timeout_ms) c->last_active_ms = NowMs();
}

void Engine::AfterQueueChange(Conn* c) {
  if (c->HasQueuedOutput() || c->closing) return;
  if (c->need_drain) {
    c->need_drain = false;
    Emit(kEvDrain, c->id);
  }
  if (c->end_requested && !c->write_shut && !c->connecting && !c->dgram) {
    c->write_shut = true;
    shutdown(c->fd, SHUT_WR);
    if (c->peer_ended) Fail(c, 0, kPhaseNone);
  }
}

void Engine::Fail(Conn* c, int err, int32_t phase) {
  if (c->closing || c->id == 0) return;
  c->closing = true;
  if (c->dgram) c->dgram->path.Unlink();
  c->close_err = err;
  c->close_phase = phase;
  driver_->CloseConn(c);
}

// ---- JS-facing API ----

int Engine::Listen(const std::string& host, int port, int backlog, bool ipv6_only, int32_t tls_ctx, int* bound_port,
                   std::string* err) {
  if (shut_down_) { *err = "reactor is closed"; return -EBADF; }
  if (tls_ctx >= 0 && !tls_.ValidContext(tls_ctx, true)) { *err = "not a TLS server context"; return -EINVAL; }
  int fd = ListenSocket(host, port, backlog, ipv6_only, bound_port, err);
  if (fd < 0) return fd;
  return AddListener(fd, BoundPath(), tls_ctx, err);
}

int Engine::ListenUnix(const std::string& path, int mode, int backlog, std::string* err) {
  if (shut_down_) { *err = "reactor is closed"; return -EBADF; }
  BoundPath bound;
  int fd = UnixListenSocket(path, mode, backlog, &bound, err);
  if (fd < 0) return fd;
  return AddListener(fd, std::move(bound), -1, err);
}

int Engine::AddListener(int fd, BoundPath path, int32_t tls_ctx, std::string* err) {
  auto l = std::make_unique<Listener>();
  l->fd = fd;
  l->id = static_cast<int32_t>(listeners_.size());
  l->unix_path = std::move(path);
  int r = driver_->AddListener(l.get());
  if (r < 0) {
    close(fd);
    l->unix_path.Unlink();
    *err = std::string("cannot watch listener: ") + std::strerror(-r);
    return r;
  }
  int32_t id = l->id;
  listeners_.push_back(std::move(l));
  live_listeners_++;
  if (tls_ctx >= 0) tls_.AttachListener(id, tls_ctx);
  UpdateRef();
  return id;
}

int Engine::CloseListener(int32_t lid) {
  Listener* l = LookupListener(lid);
  if (!l) return -EBADF;
  driver_->RemoveListener(l);
  close(l->fd);
  l->unix_path.Unlink();
  if (l->accept_paused) paused_listeners_--;
  listeners_[lid].reset();
  tls_.DetachListener(lid);
  live_listeners_--;
  UpdateRef();
  return 0;
}

int Engine::Connect(const std::string& ip, int port, int32_t tls_ctx, const std::string& servername,
                    const std::string& session, std::string* err) {
  if (shut_down_) { *err = "reactor is closed"; return -EBADF; }
  if (tls_ctx >= 0 && !tls_.ValidContext(tls_ctx, false)) { *err = "not a TLS client context"; return -EINVAL; }
  bool in_progress = false;
  int fd = ConnectSocket(ip, port, &in_progress, err);
  if (fd < 0) return fd;
  return StartOutbound(fd, in_progress, tls_ctx, servername, session, err);
}

int Engine::ConnectUnix(const std::string& path, std::string* err) {
  if (shut_down_) { *err = "reactor is closed"; return -EBADF; }
  bool in_progress = false;
  int fd = UnixConnectSocket(path, &in_progress, err);
  if (fd < 0) return fd;
  return StartOutbound(fd, in_progress, -1, "", "", err);
}

int Engine::StartOutbound(int fd, bool in_progress, int32_t tls_ctx, const std::string& servername,
                          const std::string& session, std::string* err) {
  Conn* c = NewConn(fd, -1);
  if (!c) { close(fd); *err = "too many connections"; return -EMFILE; }
  c->connecting = true;
  if (tls_ctx >= 0 && !tls_.AttachOutbound(c, tls_ctx, servername, session, err)) {
    Fail(c, EPROTO, kPhaseTls);
    return -EPROTO;
  }
  int r = driver_->AddConn(c);
  if (r < 0) {
    Fail(c, -r, kPhaseWatch);
    return c->id ? c->id : -r;
  }
  if (!in_progress) OnConnected(c, 0);
  UpdateRef();
  return c->id;
}

// ---- datagram sockets ----

int Engine::BindDatagram(const DatagramSpec& spec, size_t max_message, int* bound_port, std::string* err) {
  if (shut_down_) { *err = "reactor is closed"; return -EBADF; }
  auto ep = std::make_unique<DatagramEndpoint>();
  int fd = DatagramSocket(spec, bound_port, &ep->path, &ep->drop_counter, err);
  if (fd < 0) return fd;
  Conn* c = NewConn(fd, -1);
  if (!c) {
    close(fd);
    ep->path.Unlink();
    *err = "too many sockets";
    return -EMFILE;
  }
  sockaddr_storage local;
  socklen_t local_len = sizeof local;
  ep->family = getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0 ? local.ss_family : AF_UNSPEC;
  ep->connected = spec.unix_socket ? !spec.connect_path.empty() : !spec.connect_host.empty();
  ep->max_message = max_message;
  c->dgram = std::move(ep);
  int r = driver_->AddConn(c);
  if (r < 0) {
    *err = r == -ERANGE ? "cannot watch this socket: its descriptor is beyond the backend's FD_SETSIZE"
                        : std::string("cannot watch this socket: ") + std::strerror(-r);
    Fail(c, -r, kPhaseWatch);  // its CLOSE finds no socket in JS: the caller gets the error
    return r;
  }
  UpdateRef();
  return c->id;
}

int Engine::SendDatagram(int32_t id, const char* data, size_t len, const std::string& host, int port,
                         std::string* err) {
  Conn* c = Lookup(id);
  if (!c || !c->dgram || c->closing) { *err = "socket is closed"; return -EBADF; }
  if (host.empty()) return QueueDatagram(c, data, len, nullptr, 0);
  sockaddr_storage to;
  unsigned tolen = 0;
  int family = ParseAddress(host, port, &to, &tolen);
  if (!family) { *err = "not an IP address: " + host; return -EINVAL; }
  if (c->dgram->family == AF_INET && family == AF_INET6) {
    *err = "cannot send to IPv6 address " + host + " from an IPv4 socket";
    return -EAFNOSUPPORT;
  }
  if (c->dgram->family == AF_INET6 && family == AF_INET) {
    // An IPv6 socket reaches IPv4 peers through their mapped address (unless ipv6Only).
    sockaddr_in v4;
    std::memcpy(&v4, &to, sizeof v4);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&to);
    std::memset(v6, 0, sizeof *v6);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = v4.sin_port;
    v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    tolen = sizeof *v6;
  }
  return QueueDatagram(c, data, len, reinterpret_cast<sockaddr*>(&to), tolen);
}

int Engine::SendDatagramToPath(int32_t id, const char* data, size_t len, const std::string& path, std::string* err) {
  Conn* c = Lookup(id);
  if (!c || !c->dgram || c->closing) { *err = "socket is closed"; return -EBADF; }
  if (path.empty()) return QueueDatagram(c, data, len, nullptr, 0);
  sockaddr_un to;
  socklen_t tolen = 0;
  int r = UnixAddress(path, &to, &tolen, err);
  if (r < 0) return r;
  return QueueDatagram(c, data, len, reinterpret_cast<sockaddr*>(&to), tolen);
}

int Engine::QueueDatagram(Conn* c, const char* data, size_t len, const sockaddr* to, socklen_t tolen) {
  DatagramEndpoint* e = c->dgram.get();
  const bool was_empty = e->queue.empty();
  e->queue.Push(data, len, to, tolen);
  if (was_empty) {
    // Inside a dispatch, every send of the batch leaves in one sendmmsg after it;
    // from a timer or an outside call, at once.
    if (in_dispatch_) dgram_flush_.push_back(c->id);
    else driver_->Flush(c, false);
  }
  if (c->closing || e->queue.bytes() < opts_.high_water_mark) return 1;
  c->need_drain = true;
  return 0;
}

const DatagramCounters* Engine::DatagramStats(int32_t id) {
  Conn* c = Lookup(id);
  if (!c || !c->dgram) return nullptr;
  uint32_t now = 0;
  if (!c->closing && c->fd >= 0 && DropCountNow(c->fd, &now)) AccountDrops(c, now);
  return &c->dgram->counters;
}

int Engine::LocalAddress(int32_t id, std::string* address, int* port, int* family) {
  Conn* c = Lookup(id);
  if (!c || c->fd < 0) return -EBADF;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(c->fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return -errno;
  return AddressText(reinterpret_cast<sockaddr*>(&ss), len, address, port, family);
}

bool Engine::OnDatagram(Conn* c, const DatagramIn& d) {
  DatagramEndpoint* e = c->dgram.get();
  // The sender, as JS reads it: 4 or 16 address bytes and a port, or a Unix path.
  const uint8_t* addr = nullptr;
  size_t addr_len = 0;
  int port = 0;
  uint8_t family = kFamilyUnix;
  if (d.from && d.from->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(d.from);
    addr = reinterpret_cast<const uint8_t*>(&a->sin_addr);
    addr_len = 4;
    port = ntohs(a->sin_port);
    family = kFamilyIPv4;
  } else if (d.from && d.from->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(d.from);
    addr = reinterpret_cast<const uint8_t*>(&a->sin6_addr);
    addr_len = 16;
    port = ntohs(a->sin6_port);
    family = kFamilyIPv6;
  } else if (d.from && d.from->sa_family == AF_UNIX && d.fromlen > offsetof(sockaddr_un, sun_path)) {
    auto* a = reinterpret_cast<const sockaddr_un*>(d.from);
    addr = reinterpret_cast<const uint8_t*>(a->sun_path);
    const size_t n = d.fromlen - offsetof(sockaddr_un, sun_path);
    addr_len = a->sun_path[0] == '\0' ? n : strnlen(a->sun_path, n);
  }
  size_t keep = std::min(d.len, e->max_message);
  const size_t left = arena_size_ - arena_used_;
  const bool events_full = static_cast<size_t>(events_[0]) + 4 >= event_capacity_ || !overflow_.empty();
  if (events_full || kDatagramHeader + addr_len + keep > left) {
    const bool batch_empty = events_[0] == 0 && overflow_.empty();
    if (!batch_empty || kDatagramHeader + addr_len > left) return false;
    keep = left - kDatagramHeader - addr_len;  // larger than the whole arena: cut to fit
  }
  const bool truncated = d.truncated || keep < d.len;
  char* rec = arena_ + arena_used_;
  rec[0] = static_cast<char>(truncated ? kDatagramTruncated : 0);
  rec[1] = static_cast<char>(family);
  rec[2] = static_cast<char>(port & 0xff);
  rec[3] = static_cast<char>(port >> 8);
  rec[4] = static_cast<char>(addr_len & 0xff);
  rec[5] = static_cast<char>(addr_len >> 8);
  if (addr_len) std::memcpy(rec + kDatagramHeader, addr, addr_len);
  std::memcpy(rec + kDatagramHeader + addr_len, d.data, keep);
  Emit(kEvMessage, c->id, static_cast<int32_t>(arena_used_), static_cast<int32_t>(keep));
  arena_used_ += kDatagramHeader + addr_len + keep;
  stats_.bytes_read += keep;
  e->counters.received++;
  stats_.datagrams.received++;
  if (truncated) {
    e->counters.truncated++;
    stats_.datagrams.truncated++;
  }
  if (d.has_drops) AccountDrops(c, d.drops);
  return true;
}

void Engine::AccountDrops(Conn* c, uint32_t counter) {
  DatagramEndpoint* e = c->dgram.get();
  // A 32-bit counter of the kernel's: the difference survives its wrap-around. A
  // datagram carries the value from when it was queued, so it may be older than one
  // SO_MEMINFO already reported: only a newer value counts.
  const uint32_t more = counter - e->drops_seen;
  if (more == 0 || more > 0x7fffffffu) return;
  e->drops_seen = counter;
  e->counters.dropped += more;
  stats_.datagrams.dropped += more;
}

void Engine::RefreshDrops() {
  for (Conn* c : slots_) {
    uint32_t now = 0;
    if (c->id && c->dgram && !c->closing && c->fd >= 0 && DropCountNow(c->fd, &now)) AccountDrops(c, now);
  }
}

void Engine::OnDatagramError(Conn* c, int err, int32_t phase) { Emit(kEvSocketError, c->id, err, phase); }

void Engine::OnDatagramsSent(Conn* c, size_t n) {
  DatagramEndpoint* e = c->dgram.get();
  size_t bytes = e->queue.bytes();
  e->queue.Pop(n);
  bytes -= e->queue.bytes();
  e->counters.sent += n;
  stats_.datagrams.sent += n;
  CountSent(c, bytes);
  AfterQueueChange(c);
}

void Engine::OnDatagramSendError(Conn* c, int err) {
  c->dgram->queue.Pop(1);
  c->dgram->counters.send_errors++;
  stats_.datagrams.send_errors++;
  Emit(kEvSocketError, c->id, err, kPhaseWrite);
  AfterQueueChange(c);
}

int Engine::Write(int32_t id, const char* data, size_t len) {
  Conn* c = Lookup(id);
  if (!c || c->closing || c->dgram) return -EPIPE;
  if (c->end_requested) return -EPIPE;
  if (tls_.Has(c)) return tls_.Write(c, data, len);
  size_t off = 0;
  bool full = false;
  // A non-empty queue means the kernel is already full (writability armed) or a send
  // is in flight: append only — trying the socket again would be a wasted syscall.
  const bool was_empty = c->wq.empty();
  if (was_empty && !c->connecting) {
    long n = driver_->TrySendDirect(c, data, len);
    if (n < 0) {
      Fail(c, static_cast<int>(-n), kPhaseWrite);
      return 1;  // reported through CLOSE, like an error found by a later flush
    }
    off = static_cast<size_t>(n);
    full = off < len;
    if (off) CountSent(c, off);
  }
  if (off < len) {
    if (!c->wq.Append(data + off, len - off)) {
      Fail(c, ENOMEM, kPhaseWrite);
      return -ENOMEM;
    }
    if (was_empty && !c->connecting) driver_->Flush(c, full);
  }
  return WriteVerdict(c);
}

int Engine::WriteVerdict(Conn* c) {
  if (c->wq.size() >= opts_.high_water_mark && !c->connecting) {
    long n = driver_->SendQueuedNow(c);
    if (n < 0) {
      Fail(c, static_cast<int>(-n), kPhaseWrite);
      return 1;
    }
    if (n > 0) {
      c->wq.Consume(static_cast<size_t>(n));
      CountSent(c, static_cast<size_t>(n));
    }
  }
  if (c->wq.size() < opts_.high_water_mark) return 1;
  c->need_drain = true;
  return 0;
}

int Engine::End(int32_t id) {
  Conn* c = Lookup(id);
  if (!c || c->closing || c->dgram) return -EPIPE;
  // TLS: close_notify first; before the handshake is done, once it is.
  if (tls_.Has(c) && !tls_.End(c)) return 0;
  c->end_requested = true;
  AfterQueueChange(c);
  return 0;
}

int Engine::Destroy(int32_t id) {
  Conn* c = Lookup(id);
  if (!c) return -EBADF;
  // A datagram socket closed right after a send: what the kernel takes now still leaves.
  if (c->dgram && !c->closing && c->HasQueuedOutput()) driver_->Flush(c, false);
  Fail(c, 0, kPhaseNone);
  UpdateRef();
  return 0;
}

int Engine::SetPaused(int32_t id, bool paused) {
  Conn* c = Lookup(id);
  if (!c || c->closing) return -EBADF;
  if (c->paused == paused) return 0;
  c->paused = paused;
  driver_->UpdateReading(c);
  if (!paused && tls_.Has(c)) tls_.OnResumed(c);
  return 0;
}

int Engine::SetIdleTimeout(int32_t id, uint32_t ms) {
  Conn* c = Lookup(id);
  if (!c || c->closing) return -EBADF;
  if (!c->idle_timeout_ms && ms) timed_conns_++;
  if (c->idle_timeout_ms && !ms) timed_conns_--;
  c->idle_timeout_ms = ms;
  c->last_active_ms = NowMs();
  ArmTimer();
  return 0;
}

int Engine::RemoteAddress(int32_t id, std::string* ip, int* port, int* family) {
  Conn* c = Lookup(id);
  if (!c || c->fd < 0) return -EBADF;
  return PeerAddress(c->fd, ip, port, family);
}

size_t Engine::QueuedBytes(int32_t id) {
  Conn* c = Lookup(id);
  return !c ? 0 : c->dgram ? c->dgram->queue.bytes() : c->wq.size() + tls_.Queued(c);
}

// ---- timers and refs ----

void Engine::ArmTimer() {
  if (!handles_) return;
  bool need = !shut_down_ && (timed_conns_ > 0 || paused_listeners_ > 0 || tls_.handshaking() > 0);
  if (need && !timer_running_) {
    timer_running_ = true;
    uv_timer_start(&handles_->timer, [](uv_timer_t* t) {
      auto* hs = static_cast<Handles*>(t->data);
      if (hs->engine) hs->engine->OnTimer();
    }, kTickMs, kTickMs);
  } else if (!need && timer_running_) {
    timer_running_ = false;
    uv_timer_stop(&handles_->timer);
  }
}

void Engine::OnTimer() {
  uint64_t now = NowMs();
  last_sweep_ms_ = now;
  if (paused_listeners_) {
    for (auto& l : listeners_) {
      if (l && l->fd >= 0 && l->accept_paused && now - l->paused_at_ms >= kAcceptRetryMs) {
        l->accept_paused = false;
        paused_listeners_--;
        driver_->ResumeAccept(l.get());  // EMFILE again simply pauses it again
      }
    }
  }
  tls_.SweepHandshakes(now);
  if (timed_conns_) {
    for (Conn* c : slots_) {
      if (c->id && c->idle_timeout_ms && !c->closing && now - c->last_active_ms >= c->idle_timeout_ms) {
        c->last_active_ms = now;
        Emit(kEvTimeout, c->id);
      }
    }
  }
  if (!in_turn_) DispatchPending();
  ArmTimer();
}

void Engine::UpdateRef() {
  if (!handles_) return;
  bool active = user_ref_ && !shut_down_ && (live_conns_ + live_listeners_ > 0);
  uv_handle_t* h = handles_->has_poll ? reinterpret_cast<uv_handle_t*>(&handles_->poll)
                                      : reinterpret_cast<uv_handle_t*>(&handles_->async);
  if (active) uv_ref(h); else uv_unref(h);
}

void Engine::Shutdown() {
  if (shut_down_) return;
  for (auto& l : listeners_) {
    if (l && l->fd >= 0) {
      driver_->RemoveListener(l.get());
      close(l->fd);
      l->unix_path.Unlink();
      l.reset();
      live_listeners_--;
    }
  }
  for (Conn* c : slots_) {
    if (c->id) Fail(c, 0, kPhaseNone);
  }
  driver_->DrainClosing();
  shut_down_ = true;
  paused_listeners_ = 0;
  ArmTimer();
  UpdateRef();
}

void Engine::CloseHandles(std::function<void()> done) {
  if (!handles_) { if (done) done(); return; }
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      thread_stop_ = true;
    }
    cv_.notify_all();
    driver_->Wake();
    thread_.join();
  }
  Handles* hs = handles_;
  handles_ = nullptr;
  hs->engine = nullptr;
  hs->done = std::move(done);
  uv_timer_stop(&hs->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&hs->timer), OnHandleClosed);
  if (hs->has_poll) {
    uv_poll_stop(&hs->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&hs->poll), OnHandleClosed);
  }
  if (hs->has_async) uv_close(reinterpret_cast<uv_handle_t*>(&hs->async), OnHandleClosed);
}

}  // namespace logcaster
