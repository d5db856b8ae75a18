#include "tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace logcaster {

namespace {

// Clears OpenSSL's (thread-local) error queue when a call into it returns, whatever
// path it takes: Node's crypto shares the queue and must not find our leftovers.
struct ErrorQueueGuard {
  ErrorQueueGuard() { ERR_clear_error(); }
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

BioPtr MemBuf(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// Every certificate of a PEM text, in order. Empty (and *err) when there is none or
// one does not parse.
std::vector<X509Ptr> ReadCerts(const std::string& pem, const char* what, std::string* err) {
  std::vector<X509Ptr> out;
  BioPtr bio = MemBuf(pem);
  if (!bio) { *err = TakeOpenSslError(what); return out; }
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  // The loop ends with "no start line" at the end of the text: only an error if nothing parsed.
  if (out.empty()) *err = TakeOpenSslError(what);
  ERR_clear_error();
  return out;
}

int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

bool UseCertAndKey(SSL_CTX* ctx, const std::string& cert_pem, const std::string& key_pem, std::string* err) {
  std::vector<X509Ptr> chain = ReadCerts(cert_pem, "cannot read the TLS certificate", err);
  if (chain.empty()) return false;
  if (SSL_CTX_use_certificate(ctx, chain[0].get()) != 1) { *err = TakeOpenSslError("cannot use the TLS certificate"); return false; }
  for (size_t i = 1; i < chain.size(); ++i) {
    // add0 takes ownership on success.
    if (SSL_CTX_add0_chain_cert(ctx, chain[i].get()) != 1) { *err = TakeOpenSslError("cannot use the certificate chain"); return false; }
    chain[i].release();
  }
  BioPtr kb = MemBuf(key_pem);
  EVP_PKEY* key = kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!key) { *err = TakeOpenSslError("cannot read the TLS private key"); return false; }
  int ok = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (ok != 1) { *err = TakeOpenSslError("cannot use the TLS private key"); return false; }
  if (SSL_CTX_check_private_key(ctx) != 1) { *err = TakeOpenSslError("the TLS private key does not match the certificate"); return false; }
  return true;
}

// One SSL_CTX with every setting of `o`, and the given certificate (SNI contexts differ
// only by it).
SSL_CTX* NewCtx(const TlsOptions& o, const std::string& cert_pem, const std::string& key_pem, std::string* err) {
  SSL_CTX* ctx = SSL_CTX_new(o.server ? TLS_server_method() : TLS_client_method());
  if (!ctx) { *err = TakeOpenSslError("cannot create a TLS context"); return nullptr; }
  auto fail = [&]() -> SSL_CTX* { SSL_CTX_free(ctx); return nullptr; };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their record buffers back (thousands of them stay cheap).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (o.server && cert_pem.empty()) { *err = "a TLS server needs a certificate and a key"; return fail(); }
  if (!cert_pem.empty() || !key_pem.empty()) {
    if (cert_pem.empty() || key_pem.empty()) { *err = "a TLS certificate needs its key and a key its certificate"; return fail(); }
    if (!UseCertAndKey(ctx, cert_pem, key_pem, err)) return fail();
  }
  if (!o.ca_pem.empty()) {
    std::vector<X509Ptr> cas = ReadCerts(o.ca_pem, "cannot read the TLS CA certificates", err);
    if (cas.empty()) return fail();
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (auto& ca : cas) {
      if (X509_STORE_add_cert(store, ca.get()) != 1) { *err = TakeOpenSslError("cannot add a CA certificate"); return fail(); }
      // Tells clients which issuers a client certificate may come from.
      if (o.server && o.request_cert && SSL_CTX_add_client_CA(ctx, ca.get()) != 1) { *err = TakeOpenSslError("cannot add a client CA"); return fail(); }
    }
  }
  int mode = SSL_VERIFY_NONE;
  if (!o.server) mode = SSL_VERIFY_PEER;
  if (o.server && o.request_cert) mode = SSL_VERIFY_PEER | (o.reject_unauthorized ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  SSL_CTX_set_verify(ctx, mode, o.reject_unauthorized ? nullptr : AcceptAnyCertificate);
  if (o.server) {
    static const unsigned char kSidContext[] = "logcaster";
    SSL_CTX_set_session_id_context(ctx, kSidContext, sizeof kSidContext - 1);
  }
  return ctx;
}

bool NameMatches(const std::string& pattern, const char* name) {
  auto iequal = [](const char* a, const char* b, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    }
    return true;
  };
  size_t len = std::strlen(name);
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    // "*.example.com" matches exactly one more label: "a.example.com", not "a.b.example.com".
    const char* dot = std::strchr(name, '.');
    if (!dot || dot == name) return false;
    size_t rest = len - static_cast<size_t>(dot - name);
    return rest == pattern.size() - 1 && iequal(dot, pattern.data() + 1, rest);
  }
  return len == pattern.size() && iequal(name, pattern.data(), len);
}

std::string NameText(X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : "";
}

}  // namespace

std::string TakeOpenSslError(const char* what) {
  std::string msg = what;
  bool first = true;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    msg += first ? ": " : "; ";
    msg += buf;
    first = false;
  }
  return msg;
}

// ---- TlsContext ----

std::unique_ptr<TlsContext> TlsContext::Create(const TlsOptions& o, std::string* err) {
  ErrorQueueGuard guard;
  std::unique_ptr<TlsContext> t(new TlsContext());
  t->server_ = o.server;
  t->handshake_timeout_ms_ = o.handshake_timeout_ms;
  for (const std::string& p : o.alpn) {
    if (p.empty() || p.size() > 255) { *err = "an ALPN protocol name must be 1 to 255 bytes"; return nullptr; }
    t->alpn_wire_ += static_cast<char>(p.size());
    t->alpn_wire_ += p;
  }
  t->ctx_ = NewCtx(o, o.cert_pem, o.key_pem, err);
  if (!t->ctx_) return nullptr;
  auto use_alpn = [&](SSL_CTX* ctx) -> bool {
    if (t->alpn_wire_.empty()) return true;
    if (o.server) {
      SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, t.get());
      return true;
    }
    // 0 is success here, unlike almost everything else in OpenSSL.
    return SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(t->alpn_wire_.data()),
                                   static_cast<unsigned int>(t->alpn_wire_.size())) == 0;
  };
  if (!use_alpn(t->ctx_)) { *err = TakeOpenSslError("cannot set ALPN protocols"); return nullptr; }
  if (!o.sni.empty()) {
    if (!o.server) { *err = "SNI certificates are for servers"; return nullptr; }
    for (const TlsOptions::Sni& s : o.sni) {
      SSL_CTX* c = NewCtx(o, s.cert_pem, s.key_pem, err);
      if (!c) { *err = "SNI " + s.servername + ": " + *err; return nullptr; }
      t->sni_.push_back({s.servername, c});
      use_alpn(c);
    }
    SSL_CTX_set_tlsext_servername_callback(t->ctx_, SelectServername);
    SSL_CTX_set_tlsext_servername_arg(t->ctx_, t.get());
  }
  return t;
}

TlsContext::~TlsContext() {
  for (SniCtx& s : sni_) SSL_CTX_free(s.ctx);
  SSL_CTX_free(ctx_);
}

int TlsContext::SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                           unsigned int inlen, void* arg) {
  auto* t = static_cast<TlsContext*>(arg);
  unsigned char* chosen = nullptr;
  // Our list first: the first of our protocols the client also offers (server preference).
  int r = SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(t->alpn_wire_.data()),
                                static_cast<unsigned int>(t->alpn_wire_.size()), in, inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

int TlsContext::SelectServername(SSL* ssl, int*, void* arg) {
  auto* t = static_cast<TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  for (const SniCtx& s : t->sni_) {
    if (NameMatches(s.name, name)) {
      SSL_set_SSL_CTX(ssl, s.ctx);
      break;
    }
  }
  return SSL_TLSEXT_ERR_OK;
}

// ---- TlsLink ----

BIO_METHOD* TlsLink::NewBioMethod() {
  BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "logcaster engine");
  if (!m) return nullptr;
  BIO_meth_set_write_ex(m, BioWrite);
  BIO_meth_set_read_ex(m, BioRead);
  BIO_meth_set_ctrl(m, BioCtrl);
  return m;
}

std::unique_ptr<TlsLink> TlsLink::Create(TlsContext* ctx, BIO_METHOD* method, TlsSink* sink, const std::string& servername,
                                         const std::string& session, std::string* err) {
  ErrorQueueGuard guard;
  std::unique_ptr<TlsLink> l(new TlsLink());
  l->server_ = ctx->server();
  l->sink_ = sink;
  l->ssl_ = SSL_new(ctx->ctx());
  BIO* bio = l->ssl_ ? BIO_new(method) : nullptr;
  if (!bio) { *err = TakeOpenSslError("cannot create a TLS connection"); return nullptr; }
  BIO_set_data(bio, l.get());
  BIO_set_init(bio, 1);
  SSL_set_bio(l->ssl_, bio, bio);  // one BIO both ways: SSL_set_bio takes its one reference
  if (l->server_) {
    SSL_set_accept_state(l->ssl_);
    return l;
  }
  SSL_set_connect_state(l->ssl_);
  if (!servername.empty()) {
    unsigned char ip[16];
    const bool is_ip = inet_pton(AF_INET, servername.c_str(), ip) == 1 || inet_pton(AF_INET6, servername.c_str(), ip) == 1;
    if (is_ip) {
      // No SNI for addresses (RFC 6066); the certificate must name the address.
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl_), servername.c_str()) != 1) {
        *err = TakeOpenSslError("cannot check the server's address");
        return nullptr;
      }
    } else if (SSL_set_tlsext_host_name(l->ssl_, servername.c_str()) != 1 || SSL_set1_host(l->ssl_, servername.c_str()) != 1) {
      *err = TakeOpenSslError("cannot set the server name");
      return nullptr;
    }
  }
  if (!session.empty()) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(session.data());
    SSL_SESSION* s = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(session.size()));
    if (!s) { *err = TakeOpenSslError("cannot read the TLS session to resume"); return nullptr; }
    int ok = SSL_set_session(l->ssl_, s);
    SSL_SESSION_free(s);
    if (ok != 1) { *err = TakeOpenSslError("cannot resume the TLS session"); return nullptr; }
  }
  return l;
}

TlsLink::~TlsLink() {
  if (ssl_) SSL_free(ssl_);  // frees the BIO too
}

int TlsLink::BioWrite(BIO* b, const char* data, size_t len, size_t* written) {
  auto* l = static_cast<TlsLink*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  // After a socket error the output goes nowhere: the engine fails the connection as
  // soon as the SSL call returns (never from inside it).
  if (l->sink_error_ == 0) {
    long r = l->sink_->SendCipher(data, len);
    if (r < 0) l->sink_error_ = -r;
  }
  *written = len;
  return 1;
}

int TlsLink::BioRead(BIO* b, char* out, size_t len, size_t* read) {
  auto* l = static_cast<TlsLink*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t n = 0;
  if (l->kept_pos_ < l->kept_.size()) {
    n = std::min(len, l->kept_.size() - l->kept_pos_);
    std::memcpy(out, l->kept_.data() + l->kept_pos_, n);
    l->kept_pos_ += n;
    if (l->kept_pos_ == l->kept_.size()) {
      std::string().swap(l->kept_);  // give the memory back
      l->kept_pos_ = 0;
    }
  } else if (l->in_len_ > 0) {
    n = std::min(len, l->in_len_);
    std::memcpy(out, l->in_, n);
    l->in_ += n;
    l->in_len_ -= n;
  }
  if (n == 0) {
    BIO_set_retry_read(b);
    *read = 0;
    return 0;
  }
  *read = n;
  return 1;
}

long TlsLink::BioCtrl(BIO* b, int cmd, long, void*) {
  auto* l = static_cast<TlsLink*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // every write went to the sink at once
    case BIO_CTRL_PENDING:
      return static_cast<long>(l->in_len_ + (l->kept_.size() - l->kept_pos_));
    default:
      return 0;
  }
}

bool TlsLink::Fatal(int r) {
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
  if (error_.empty()) {
    if (e == SSL_ERROR_SSL) {
      error_ = TakeOpenSslError(handshake_done_ ? "TLS error" : "TLS handshake failed");
      long v = SSL_get_verify_result(ssl_);
      if (!handshake_done_ && v != X509_V_OK) error_ += std::string(" (") + X509_verify_cert_error_string(v) + ")";
    } else if (e == SSL_ERROR_ZERO_RETURN) {
      error_ = handshake_done_ ? "TLS connection closed" : "TLS handshake failed: the peer closed the connection";
    } else {
      error_ = TakeOpenSslError(handshake_done_ ? "TLS error" : "TLS handshake failed");
    }
  }
  return true;
}

bool TlsLink::Start() {
  ErrorQueueGuard guard;
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return true;  // cannot complete before the server answered, but harmless
  return !Fatal(r);
}

void TlsLink::Feed(const char* data, size_t len) {
  if (in_len_ > 0) Keep();
  in_ = data;
  in_len_ = len;
}

void TlsLink::Keep() {
  if (in_len_ == 0) return;
  if (kept_pos_ > 0) {
    kept_.erase(0, kept_pos_);
    kept_pos_ = 0;
  }
  kept_.append(in_, in_len_);
  in_ = nullptr;
  in_len_ = 0;
}

size_t TlsLink::Pump(char* out, size_t cap, uint32_t* events) {
  ErrorQueueGuard guard;
  *events = 0;
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      if (Fatal(r)) *events |= kTlsFailed;
      return 0;
    }
    handshake_done_ = true;
    *events |= kTlsHandshakeDone;
  }
  size_t got = 0;
  while (got < cap && !peer_closed_) {
    size_t n = 0;
    int r = SSL_read_ex(ssl_, out + got, cap - got, &n);
    if (r == 1) {
      got += n;
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      *events |= kTlsPeerClosed;
      break;
    }
    if (Fatal(r)) *events |= kTlsFailed;
    break;
  }
  if (got == cap) *events |= kTlsFull;
  return got;
}

bool TlsLink::HasInput() const {
  return in_len_ > 0 || kept_pos_ < kept_.size() || SSL_has_pending(ssl_) == 1;
}

bool TlsLink::Write(const char* data, size_t len) {
  ErrorQueueGuard guard;
  while (len > 0) {
    size_t n = 0;
    int r = SSL_write_ex(ssl_, data, len, &n);
    if (r != 1) {
      // Our BIO takes every byte, so only a real failure stops a write.
      if (!Fatal(r)) error_ = "TLS write could not proceed";
      return false;
    }
    data += n;
    len -= n;
  }
  return true;
}

void TlsLink::Close() {
  if (close_sent_ || !handshake_done_) return;
  close_sent_ = true;
  ErrorQueueGuard guard;
  SSL_shutdown(ssl_);  // close_notify goes to the sink; we do not wait for the peer's
}

TlsInfo TlsLink::Info() const {
  TlsInfo info;
  info.protocol = SSL_get_version(ssl_);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl_)) info.cipher = SSL_CIPHER_get_name(c);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn) info.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  if (const char* sn = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) info.servername = sn;
  info.resumed = SSL_session_reused(ssl_) == 1;
  X509Ptr peer(SSL_get1_peer_certificate(ssl_));
  if (!peer) {
    info.authorization_error = "no peer certificate";
    return info;
  }
  info.peer_subject = NameText(X509_get_subject_name(peer.get()));
  info.peer_issuer = NameText(X509_get_issuer_name(peer.get()));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(peer.get(), EVP_sha256(), md, &md_len) == 1) {
    static const char kHex[] = "0123456789ABCDEF";
    for (unsigned int i = 0; i < md_len; ++i) {
      if (i) info.peer_fingerprint += ':';
      info.peer_fingerprint += kHex[md[i] >> 4];
      info.peer_fingerprint += kHex[md[i] & 15];
    }
  }
  long v = SSL_get_verify_result(ssl_);
  info.authorized = v == X509_V_OK;
  if (!info.authorized) info.authorization_error = X509_verify_cert_error_string(v);
  ERR_clear_error();
  return info;
}

std::string TlsLink::Session() const {
  SSL_SESSION* s = SSL_get1_session(ssl_);
  if (!s) return "";
  std::string out;
  if (SSL_SESSION_is_resumable(s) == 1) {
    int n = i2d_SSL_SESSION(s, nullptr);
    if (n > 0) {
      out.resize(static_cast<size_t>(n));
      unsigned char* p = reinterpret_cast<unsigned char*>(&out[0]);
      i2d_SSL_SESSION(s, &p);
    }
  }
  SSL_SESSION_free(s);
  return out;
}

}  // namespace logcaster
