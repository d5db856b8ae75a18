#include "engine_tls.h"

#include <errno.h>

#include <algorithm>

#include "engine.h"

namespace logcaster {

struct EngineTls::ConnTls final : TlsSink {
  EngineTls* owner = nullptr;
  Conn* c = nullptr;
  std::shared_ptr<TlsContext> ctx;  // its SSL objects point into it
  std::unique_ptr<TlsLink> link;
  std::string early;         // plaintext written (outbound) before the handshake finished
  uint64_t deadline_ms = 0;  // the handshake must be done by then
  bool opened = false;       // handshake done: OPEN went to JS
  bool end_after_handshake = false;
  bool backlog = false;      // stopped with input possibly left (no room, paused)
  bool queued = false;       // on pending_
  bool eof_pending = false;  // TCP EOF seen while input was still undelivered
  bool failed = false;
  bool released = false;
  bool flush_needed = false;  // the write queue became non-empty during a link call
  bool socket_full = false;   // ... because the kernel took less than offered

  long SendCipher(const char* data, size_t len) override { return owner->Send(c, this, data, len); }
};

EngineTls::EngineTls(Engine* engine) : e_(engine) {}

EngineTls::~EngineTls() {
  conns_.clear();
  graveyard_.clear();
  contexts_.clear();
  listener_ctx_.clear();
  if (bio_method_) BIO_meth_free(bio_method_);
}

// ---- contexts ----

int EngineTls::CreateContext(const TlsOptions& o, std::string* err) {
  std::unique_ptr<TlsContext> ctx = TlsContext::Create(o, err);
  if (!ctx) return -1;
  contexts_.push_back({std::shared_ptr<TlsContext>(std::move(ctx)), false});
  return static_cast<int>(contexts_.size() - 1);
}

void EngineTls::ReleaseContext(int32_t ctx_id) {
  if (ctx_id >= 0 && static_cast<size_t>(ctx_id) < contexts_.size()) contexts_[ctx_id].ctx.reset();
}

bool EngineTls::ValidContext(int32_t ctx_id, bool server) const {
  return ctx_id >= 0 && static_cast<size_t>(ctx_id) < contexts_.size() && contexts_[ctx_id].ctx &&
         contexts_[ctx_id].ctx->server() == server;
}

void EngineTls::AttachListener(int32_t listener_id, int32_t ctx_id) {
  if (listener_ctx_.size() <= static_cast<size_t>(listener_id)) listener_ctx_.resize(listener_id + 1);
  listener_ctx_[listener_id] = contexts_[ctx_id].ctx;
}

void EngineTls::DetachListener(int32_t listener_id) {
  if (static_cast<size_t>(listener_id) < listener_ctx_.size()) listener_ctx_[listener_id].reset();
}

bool EngineTls::AttachOutbound(Conn* c, int32_t ctx_id, const std::string& servername, const std::string& session,
                               std::string* err) {
  return Start(c, contexts_[ctx_id].ctx, servername, session, err);
}

bool EngineTls::Start(Conn* c, std::shared_ptr<TlsContext> ctx, const std::string& servername,
                      const std::string& session, std::string* err) {
  if (!bio_method_) bio_method_ = TlsLink::NewBioMethod();
  if (!bio_method_) { *err = TakeOpenSslError("cannot create the TLS BIO method"); return false; }
  auto t = std::make_unique<ConnTls>();
  t->owner = this;
  t->c = c;
  t->link = TlsLink::Create(ctx.get(), bio_method_, t.get(), servername, session, err);
  if (!t->link) return false;
  t->deadline_ms = e_->NowMs() + ctx->handshake_timeout_ms();
  t->ctx = std::move(ctx);
  const uint32_t slot = SlotOf(c->id);
  if (conns_.size() <= slot) conns_.resize(slot + 1);
  conns_[slot] = std::move(t);
  handshaking_++;
  e_->ArmTimer();
  return true;
}

EngineTls::ConnTls* EngineTls::Of(const Conn* c) const {
  const uint32_t slot = SlotOf(c->id);
  return slot < conns_.size() ? conns_[slot].get() : nullptr;
}

bool EngineTls::Alive(int32_t id) const {
  Conn* c = e_->Lookup(id);
  return c && !c->closing;
}

// ---- engine hooks ----

bool EngineTls::OnAccepted(Listener* l, Conn* c, int watch_err) {
  if (static_cast<size_t>(l->id) >= listener_ctx_.size() || !listener_ctx_[l->id]) return false;
  std::string err;
  if (watch_err < 0) {
    // Unlike plain TCP the handler cannot be told (no OPEN before a handshake).
    stats_.handshake_failures++;
    e_->Fail(c, -watch_err, kPhaseWatch);
  } else if (!Start(c, listener_ctx_[l->id], "", "", &err)) {
    stats_.handshake_failures++;
    e_->Fail(c, EPROTO, kPhaseTls);
  }
  return true;
}

void EngineTls::OnConnected(Conn* c) {
  ConnTls* t = Of(c);
  if (!t->link->Start()) {
    if (FinishOutput(c, t)) FailTls(c, t, EPROTO, t->link->error());
    return;
  }
  FinishOutput(c, t);
}

void EngineTls::OnCipher(Conn* c, char* data, size_t len) {
  ConnTls* t = Of(c);
  // The ciphertext keeps its place in this batch's arena; plaintext goes after it.
  e_->arena_used_ += len;
  e_->stats_.bytes_read += len;
  if (c->idle_timeout_ms) c->last_active_ms = e_->NowMs();
  if (t->failed) return;
  t->link->Feed(data, len);
  Deliver(c, t);
}

void EngineTls::Deliver(Conn* c, ConnTls* t) {
  if (c->closing || t->failed) return;
  if (t->opened && c->paused) {
    t->link->Keep();
    t->backlog = true;  // OnResumed delivers it
    return;
  }
  const int32_t id = c->id;
  size_t avail = 0;
  char* out = e_->ReadSpace(&avail);
  const size_t cap = out ? std::min(avail, kMaxReadPerBatch) : 0;
  uint32_t ev = 0;
  const size_t n = t->link->Pump(out, cap, &ev);
  if (!FinishOutput(c, t)) return;
  if (ev & kTlsFailed) {
    FailTls(c, t, EPROTO, t->link->error());
    return;
  }
  if (ev & kTlsHandshakeDone) {
    HandshakeDone(c, t);
    if (!Alive(id)) return;
  }
  if (n > 0) {
    // Not ExtendRead-able (OpenReadLength says 0 for TLS): its own DATA event.
    e_->Emit(kEvData, id, static_cast<int32_t>(e_->arena_used_), static_cast<int32_t>(n));
    e_->arena_used_ += n;
  }
  t->link->Keep();  // the arena is reused after this batch
  if (ev & kTlsPeerClosed) {
    t->backlog = false;
    e_->PeerEnded(c);
    return;
  }
  t->backlog = (ev & kTlsFull) && t->link->HasInput();
  if (t->backlog) {
    if (!c->paused) MarkPending(c, t);
  } else if (t->eof_pending) {
    t->eof_pending = false;
    e_->PeerEnded(c);
  }
}

void EngineTls::HandshakeDone(Conn* c, ConnTls* t) {
  const int32_t id = c->id;
  t->opened = true;
  handshaking_--;
  stats_.handshakes++;
  e_->Emit(kEvOpen, id, c->listener_id, 0);
  if (!t->early.empty()) {
    std::string early;
    early.swap(t->early);
    if (!t->link->Write(early.data(), early.size())) {
      if (FinishOutput(c, t)) FailTls(c, t, EPROTO, t->link->error());
      return;
    }
    if (!FinishOutput(c, t)) return;
  }
  if (t->end_after_handshake) {
    t->link->Close();
    if (!FinishOutput(c, t)) return;
    c->end_requested = true;
  }
  // DRAIN for a writer that was told to wait while the handshake ran; the FIN for end().
  e_->AfterQueueChange(c);
}

bool EngineTls::OnPeerEnd(Conn* c) {
  ConnTls* t = Of(c);
  if (c->peer_ended || t->eof_pending || t->failed) return true;
  if (!t->opened) {
    FailTls(c, t, ECONNRESET, "TLS handshake failed: the peer closed the connection");
    return true;
  }
  if (t->backlog) {
    t->eof_pending = true;  // END once what came before it is delivered
    return true;
  }
  return false;  // the engine's own end-of-input handling
}

int EngineTls::Write(Conn* c, const char* data, size_t len) {
  ConnTls* t = Of(c);
  if (t->failed) return -EPIPE;
  if (!t->opened) {
    if (t->end_after_handshake) return -EPIPE;
    t->early.append(data, len);
    if (t->early.size() < e_->opts_.high_water_mark) return 1;
    c->need_drain = true;
    return 0;
  }
  const bool ok = t->link->Write(data, len);
  if (!FinishOutput(c, t)) return 1;  // reported through CLOSE
  if (!ok) {
    FailTls(c, t, EPROTO, t->link->error());
    return 1;
  }
  return e_->WriteVerdict(c);
}

int EngineTls::End(Conn* c) {
  ConnTls* t = Of(c);
  if (!t->opened) {
    t->end_after_handshake = true;
    return 0;
  }
  t->link->Close();
  return FinishOutput(c, t) ? 1 : 0;
}

void EngineTls::OnResumed(Conn* c) {
  ConnTls* t = Of(c);
  if (!t || !t->backlog) return;
  MarkPending(c, t);
  e_->driver_->Wake();  // a turn must run even if the socket stays quiet
}

void EngineTls::Release(Conn* c) {
  const uint32_t slot = SlotOf(c->id);
  if (slot >= conns_.size() || !conns_[slot]) return;
  ConnTls* t = conns_[slot].get();
  if (!t->opened) handshaking_--;
  t->released = true;
  t->failed = true;
  for (Error& e : errors_) {
    if (e.id == c->id) e.released = true;
  }
  graveyard_.push_back(std::move(conns_[slot]));
}

size_t EngineTls::Queued(const Conn* c) const {
  ConnTls* t = Of(c);
  return t ? t->early.size() : 0;
}

long EngineTls::Send(Conn* c, ConnTls* t, const char* data, size_t len) {
  if (c->closing) return -EPIPE;
  size_t off = 0;
  const bool was_empty = c->wq.empty();
  if (was_empty && !c->connecting) {
    long n = e_->driver_->TrySendDirect(c, data, len);
    if (n < 0) return n;
    off = static_cast<size_t>(n);
    if (off) e_->CountSent(c, off);
    if (off < len) t->socket_full = true;
  }
  if (off < len) {
    if (!c->wq.Append(data + off, len - off)) return -ENOMEM;
    if (was_empty) t->flush_needed = true;
  }
  return 0;
}

bool EngineTls::FinishOutput(Conn* c, ConnTls* t) {
  const int32_t id = c->id;
  if (long err = t->link->sink_error()) {
    if (t->failed) return false;
    t->failed = true;
    if (in_harvest_) deferred_fail_.push_back({id, static_cast<int>(err), kPhaseWrite});
    else e_->Fail(c, static_cast<int>(err), kPhaseWrite);
    return false;
  }
  if (t->flush_needed) {
    t->flush_needed = false;
    const bool full = t->socket_full;
    t->socket_full = false;
    // Inside a Harvest the driver is in the middle of its own work: flush after it.
    if (in_harvest_) deferred_flush_.push_back(id);
    else e_->driver_->Flush(c, full);
  }
  return Alive(id);
}

void EngineTls::FailTls(Conn* c, ConnTls* t, int err, const std::string& why) {
  if (t->failed) return;
  t->failed = true;
  if (!t->opened) stats_.handshake_failures++;
  errors_.push_back({c->id, why, false});
  if (in_harvest_) deferred_fail_.push_back({c->id, err, kPhaseTls});
  else FailNow(c, err, kPhaseTls);
}

void EngineTls::FailNow(Conn* c, int err, int32_t phase) {
  // The alert OpenSSL just queued says why (a completion driver has not sent it yet):
  // give it one try at the socket before the queue is dropped.
  if (phase == kPhaseTls && !c->wq.empty()) {
    long n = e_->driver_->SendQueuedNow(c);
    if (n > 0) {
      c->wq.Consume(static_cast<size_t>(n));
      e_->CountSent(c, static_cast<size_t>(n));
    }
  }
  e_->Fail(c, err, phase);
}

void EngineTls::MarkPending(Conn* c, ConnTls* t) {
  if (t->queued) return;
  t->queued = true;
  pending_.push_back(c->id);
}

void EngineTls::EndHarvest() {
  in_harvest_ = false;
  if (!deferred_fail_.empty()) {
    std::vector<DeferredFail> fails;
    fails.swap(deferred_fail_);
    for (const DeferredFail& f : fails) {
      if (Conn* c = e_->Lookup(f.id)) FailNow(c, f.err, f.phase);
    }
  }
  if (!deferred_flush_.empty()) {
    std::vector<int32_t> ids;
    ids.swap(deferred_flush_);
    for (int32_t id : ids) {
      Conn* c = e_->Lookup(id);
      if (c && !c->closing && !c->wq.empty()) e_->driver_->Flush(c, false);
    }
  }
}

bool EngineTls::DeliverPending() {
  if (pending_.empty()) return false;
  pending_work_.swap(pending_);
  for (int32_t id : pending_work_) {
    Conn* c = e_->Lookup(id);
    ConnTls* t = c ? Of(c) : nullptr;
    if (!t) continue;
    t->queued = false;
    if (c->closing || c->paused) continue;  // resume lists it again
    if (e_->BatchFull()) {
      MarkPending(c, t);
      continue;
    }
    Deliver(c, t);
  }
  pending_work_.clear();
  return !pending_.empty();
}

void EngineTls::SweepHandshakes(uint64_t now_ms) {
  if (handshaking_ == 0) return;
  for (auto& p : conns_) {
    ConnTls* t = p.get();
    if (!t || t->opened || t->failed || t->deadline_ms > now_ms) continue;
    FailTls(t->c, t, ETIMEDOUT, "TLS handshake timed out");
  }
}

std::string EngineTls::TakeError(int32_t id) {
  for (const Error& e : errors_) {
    if (e.id == id) return e.message;
  }
  return "";
}

void EngineTls::EndBatch() {
  errors_.erase(std::remove_if(errors_.begin(), errors_.end(), [](const Error& e) { return e.released; }), errors_.end());
  graveyard_.clear();
}

bool EngineTls::Info(int32_t id, TlsInfo* out) const {
  Conn* c = e_->Lookup(id);
  ConnTls* t = c ? Of(c) : nullptr;
  if (!t || !t->opened) return false;
  *out = t->link->Info();
  return true;
}

std::string EngineTls::Session(int32_t id) const {
  Conn* c = e_->Lookup(id);
  ConnTls* t = c ? Of(c) : nullptr;
  return t && t->opened ? t->link->Session() : "";
}

}  // namespace logcaster
