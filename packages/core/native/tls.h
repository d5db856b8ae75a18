// TLS for the engine, over the OpenSSL the running Node is linked with: the addon is
// built against Node's own OpenSSL headers and resolves the symbols from the node
// binary at load time, so it carries no OpenSSL of its own.
//
// A TlsLink sits between a connection's socket I/O and its handler: ciphertext the
// driver read is fed in and plaintext comes out into the read arena; plaintext the
// handler writes is encrypted and handed to the engine's raw write path (direct send,
// then the write queue). Both directions use a BIO of our own over the engine's memory
// — SSL reads ciphertext straight from the arena and writes records straight to the
// socket — so there is no extra copy and no growing buffer per connection.
#pragma once
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace logcaster {

struct TlsOptions {
  bool server = true;
  std::string cert_pem;  // certificate, then its chain
  std::string key_pem;
  std::string ca_pem;    // CAs to verify the peer with (one or more PEM blocks)
  // Server: ask clients for a certificate. Client: always verifies the server.
  bool request_cert = false;
  // Fail the handshake when the peer's certificate does not verify (a server with
  // request_cert also when the client sends none). Otherwise the handler decides,
  // from TlsInfo.authorized.
  bool reject_unauthorized = true;
  std::vector<std::string> alpn;  // protocols, most preferred first
  struct Sni {
    std::string servername;  // exact, or "*.example.com"
    std::string cert_pem, key_pem;
  };
  std::vector<Sni> sni;  // server: other certificates, by the name the client asks for
  // A connection whose handshake is not done by then is closed (it holds a slot the
  // handler cannot see yet).
  uint32_t handshake_timeout_ms = 10000;
};

// One SSL_CTX (plus one per SNI name). Shared by every connection of a listener, or
// by outbound connections made with the same options.
class TlsContext {
 public:
  static std::unique_ptr<TlsContext> Create(const TlsOptions& o, std::string* err);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool server() const { return server_; }
  uint32_t handshake_timeout_ms() const { return handshake_timeout_ms_; }

 private:
  TlsContext() = default;
  static int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                        unsigned int inlen, void* arg);
  static int SelectServername(SSL* ssl, int* alert, void* arg);

  SSL_CTX* ctx_ = nullptr;
  bool server_ = true;
  uint32_t handshake_timeout_ms_ = 10000;
  std::string alpn_wire_;  // length-prefixed, as ALPN puts it on the wire
  struct SniCtx {
    std::string name;
    SSL_CTX* ctx;
  };
  std::vector<SniCtx> sni_;
};

// Where a link's ciphertext goes: the engine's raw write path for its connection.
// Returns 0, or -errno once the socket failed (the link then drops further output).
class TlsSink {
 public:
  virtual long SendCipher(const char* data, size_t len) = 0;

 protected:
  ~TlsSink() = default;
};

// What a handler can learn about the TLS side of its connection.
struct TlsInfo {
  std::string protocol;       // "TLSv1.3"
  std::string cipher;
  std::string alpn;           // negotiated protocol, "" when none
  std::string servername;     // SNI the client asked for (server side), or sent (client side)
  std::string peer_subject;   // RFC 2253, "" without a peer certificate
  std::string peer_issuer;
  std::string peer_fingerprint;  // SHA-256, hex with colons
  bool authorized = false;    // the peer's certificate verified (and, client side, its name)
  std::string authorization_error;
  bool resumed = false;       // session resumption
};

// Flags TlsLink::Pump reports.
enum TlsEvent : uint32_t {
  kTlsHandshakeDone = 1,   // the handshake completed during this call
  kTlsPeerClosed = 2,      // close_notify received: the peer sends nothing more
  kTlsFailed = 4,          // fatal: handshake failure, bad record, alert (error() says what)
  kTlsFull = 8,            // stopped because `out` was full: more may be waiting
};

class TlsLink {
 public:
  // One BIO method per engine (OpenSSL BIO methods are plain data, but no state may be
  // process-wide here). nullptr when OpenSSL refuses.
  static BIO_METHOD* NewBioMethod();

  // server: accept a handshake; otherwise start one (servername for SNI and the
  // certificate name check, session to resume: i2d_SSL_SESSION bytes). nullptr with
  // *err when OpenSSL cannot make the connection.
  static std::unique_ptr<TlsLink> Create(TlsContext* ctx, BIO_METHOD* method, TlsSink* sink,
                                         const std::string& servername, const std::string& session,
                                         std::string* err);
  ~TlsLink();
  TlsLink(const TlsLink&) = delete;
  TlsLink& operator=(const TlsLink&) = delete;

  // Client: send the ClientHello. Returns false on failure (error()).
  bool Start();
  // Ciphertext that arrived. It is read in place by the next Pump; call Keep() if it
  // may not stay where it is until then.
  void Feed(const char* data, size_t len);
  // Copies what is left of the fed ciphertext aside (the arena it lives in is reused).
  void Keep();
  // Runs the handshake and decrypts into out[0, cap). Returns plaintext bytes written;
  // *events gets TlsEvent flags.
  size_t Pump(char* out, size_t cap, uint32_t* events);
  // Fed ciphertext not consumed yet, or decrypted bytes OpenSSL holds: Pump again.
  bool HasInput() const;
  // Encrypts all of data (records go to the sink). false on failure (error()).
  bool Write(const char* data, size_t len);
  // Sends close_notify (once).
  void Close();

  bool handshake_done() const { return handshake_done_; }
  bool peer_closed() const { return peer_closed_; }
  // 0, or the errno the sink reported: the connection must be failed with it.
  long sink_error() const { return sink_error_; }
  const std::string& error() const { return error_; }
  TlsInfo Info() const;
  // The session to resume with later (i2d bytes), "" when none is resumable yet.
  std::string Session() const;

 private:
  TlsLink() = default;
  static int BioWrite(BIO* b, const char* data, size_t len, size_t* written);
  static int BioRead(BIO* b, char* out, size_t len, size_t* read);
  static long BioCtrl(BIO* b, int cmd, long num, void* ptr);
  // After an SSL call returned r <= 0: fatal error recorded (true), or just wants I/O.
  bool Fatal(int r);

  SSL* ssl_ = nullptr;
  bool server_ = true;
  TlsSink* sink_ = nullptr;
  const char* in_ = nullptr;   // fed ciphertext not read yet
  size_t in_len_ = 0;
  std::string kept_;           // ciphertext kept aside by Keep(), read before in_
  size_t kept_pos_ = 0;
  long sink_error_ = 0;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool close_sent_ = false;
  std::string error_;
};

// OpenSSL's error queue as one message (and cleared, so Node's own crypto never sees
// our errors).
std::string TakeOpenSslError(const char* what);

}  // namespace logcaster
