// TLS inside the engine, between the drivers' reads and writes and the handler, so
// every backend gets it without knowing: the engine calls these hooks where a
// connection's bytes cross it, and the rest of the engine sees plaintext.
//
// Input: a driver reads ciphertext into the batch's arena (CommitRead); it keeps its
// place there and the plaintext is decrypted right after it, as the connection's DATA
// event. What does not fit (arena full, 64 KiB delivered, connection paused) stays in
// its TlsLink and is delivered from the next round on. Output: write() encrypts, and
// the records take the engine's raw path (direct send, else the write queue), so
// backpressure counts the bytes that wait to go on the wire. OPEN reaches the handler
// once the handshake is done; END when close_notify (or the TCP FIN) arrives; end()
// sends close_notify and then the FIN.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "conn.h"
#include "tls.h"

namespace logcaster {

class Engine;

struct TlsStats {
  uint64_t handshakes = 0;         // completed
  uint64_t handshake_failures = 0; // failed, timed out, or the peer left during one
};

class EngineTls {
 public:
  explicit EngineTls(Engine* engine);
  ~EngineTls();
  EngineTls(const EngineTls&) = delete;
  EngineTls& operator=(const EngineTls&) = delete;

  // ---- contexts (ids handed to JS) ----
  int CreateContext(const TlsOptions& o, std::string* err);  // id >= 0, or -1 with *err
  void ReleaseContext(int32_t ctx_id);  // JS is done with the id; users keep it alive
  bool ValidContext(int32_t ctx_id, bool server) const;
  void AttachListener(int32_t listener_id, int32_t ctx_id);
  void DetachListener(int32_t listener_id);
  // An outbound connection that starts TLS once connected. false with *err.
  bool AttachOutbound(Conn* c, int32_t ctx_id, const std::string& servername, const std::string& session,
                      std::string* err);

  // ---- engine hooks ----
  bool Has(const Conn* c) const { return SlotOf(c->id) < conns_.size() && conns_[SlotOf(c->id)] != nullptr; }
  // c was accepted on l and registered with the driver (watch_err: AddConn's -errno).
  // Returns true when TLS took it over (OPEN comes after the handshake).
  bool OnAccepted(Listener* l, Conn* c, int watch_err);
  void OnConnected(Conn* c);   // TCP connected: send the ClientHello
  void OnCipher(Conn* c, char* data, size_t len);  // a driver read len bytes at data (in the arena)
  bool OnPeerEnd(Conn* c);     // TCP EOF; true when TLS handled it
  int Write(Conn* c, const char* data, size_t len);  // like Engine::Write
  int End(Conn* c);            // like Engine::End
  void OnResumed(Conn* c);     // reading resumed: deliver what waits
  void Release(Conn* c);       // the slot is being freed
  size_t Queued(const Conn* c) const;  // plaintext written before the handshake finished

  // Around a driver's Harvest: failures and flushes found inside it wait until it returned.
  void BeginHarvest() { in_harvest_ = true; }
  void EndHarvest();
  // Start of a round: deliver what waited (arena room, resume). True when work remains.
  bool DeliverPending();
  bool HasPending() const { return !pending_.empty(); }
  size_t handshaking() const { return handshaking_; }
  void SweepHandshakes(uint64_t now_ms);
  // A CLOSE of this batch with kPhaseTls: why. Valid until the batch was dispatched.
  std::string TakeError(int32_t id);
  // The batch was dispatched: forget its errors, free the links of released slots.
  void EndBatch();

  bool Info(int32_t id, TlsInfo* out) const;
  std::string Session(int32_t id) const;
  const TlsStats& stats() const { return stats_; }

 private:
  struct ConnTls;
  struct Ctx {
    std::shared_ptr<TlsContext> ctx;
    bool released = false;
  };
  ConnTls* Of(const Conn* c) const;
  bool Start(Conn* c, std::shared_ptr<TlsContext> ctx, const std::string& servername, const std::string& session,
             std::string* err);
  void Deliver(Conn* c, ConnTls* t);
  void HandshakeDone(Conn* c, ConnTls* t);
  // After a call into the link: report a socket error or flush what it queued.
  bool FinishOutput(Conn* c, ConnTls* t);
  void FailTls(Conn* c, ConnTls* t, int err, const std::string& why);
  void FailNow(Conn* c, int err, int32_t phase);
  void MarkPending(Conn* c, ConnTls* t);
  long Send(Conn* c, ConnTls* t, const char* data, size_t len);  // TlsSink, per connection
  bool Alive(int32_t id) const;  // the connection is still open (a call above may have failed it)

  Engine* e_;
  std::vector<Ctx> contexts_;
  std::vector<std::shared_ptr<TlsContext>> listener_ctx_;  // by listener id
  std::vector<std::unique_ptr<ConnTls>> conns_;            // by slot
  // Links of released slots, freed at the end of the batch: a hook may still be
  // inside a call on one when a failure it caused released the connection.
  std::vector<std::unique_ptr<ConnTls>> graveyard_;
  BIO_METHOD* bio_method_ = nullptr;
  std::vector<int32_t> pending_, pending_work_;   // ids with undelivered input
  struct DeferredFail {
    int32_t id;
    int err;
    int32_t phase;
  };
  std::vector<DeferredFail> deferred_fail_;  // found inside a Harvest
  std::vector<int32_t> deferred_flush_;
  struct Error {
    int32_t id;
    std::string message;
    bool released;  // its CLOSE is in a batch: forget it once that was dispatched
  };
  std::vector<Error> errors_;
  size_t handshaking_ = 0;
  bool in_harvest_ = false;
  TlsStats stats_;
};

}  // namespace logcaster
