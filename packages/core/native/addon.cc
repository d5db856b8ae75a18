// N-API face of the engine: one Engine object per reactor, all state per instance
// (no globals), so every worker thread can own reactors of its own.
#include "addon.h"

#include <errno.h>
#include <uv.h>

#include <cstring>

#include "engine.h"
#include "tuning.h"

namespace logcaster {

namespace {

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env, const BackendDescriptor* backend) {
    return DefineClass(env, "Engine", {
      InstanceMethod<&EngineWrap::Listen>("listen"),
      InstanceMethod<&EngineWrap::CloseListener>("closeListener"),
      InstanceMethod<&EngineWrap::Connect>("connect"),
      InstanceMethod<&EngineWrap::ListenUnix>("listenUnix"),
      InstanceMethod<&EngineWrap::ConnectUnix>("connectUnix"),
      InstanceMethod<&EngineWrap::BindDatagram>("bindDatagram"),
      InstanceMethod<&EngineWrap::SendDatagram>("sendDatagram"),
      InstanceMethod<&EngineWrap::SendDatagramTo>("sendDatagramTo"),
      InstanceMethod<&EngineWrap::DatagramStats>("datagramStats"),
      InstanceMethod<&EngineWrap::LocalAddress>("localAddress"),
      InstanceMethod<&EngineWrap::Write>("write"),
      InstanceMethod<&EngineWrap::End>("end"),
      InstanceMethod<&EngineWrap::Destroy>("destroy"),
      InstanceMethod<&EngineWrap::Pause>("pause"),
      InstanceMethod<&EngineWrap::Resume>("resume"),
      InstanceMethod<&EngineWrap::SetIdleTimeout>("setIdleTimeout"),
      InstanceMethod<&EngineWrap::RemoteAddress>("remoteAddress"),
      InstanceMethod<&EngineWrap::Queued>("queued"),
      InstanceMethod<&EngineWrap::Ref>("ref"),
      InstanceMethod<&EngineWrap::Unref>("unref"),
      InstanceMethod<&EngineWrap::DispatchPending>("dispatchPending"),
      InstanceMethod<&EngineWrap::RunOnce>("runOnce"),
      InstanceMethod<&EngineWrap::Shutdown>("shutdown"),
      InstanceMethod<&EngineWrap::CloseHandles>("closeHandles"),
      InstanceMethod<&EngineWrap::Stats>("stats"),
      InstanceMethod<&EngineWrap::CreateTlsContext>("createTlsContext"),
      InstanceMethod<&EngineWrap::ReleaseTlsContext>("releaseTlsContext"),
      InstanceMethod<&EngineWrap::TlsInfoOf>("tlsInfo"),
      InstanceMethod<&EngineWrap::TlsSessionOf>("tlsSession"),
      InstanceMethod<&EngineWrap::TlsErrorOf>("tlsError"),
    }, const_cast<BackendDescriptor*>(backend));
  }

  // new Engine(options, dispatch, events: Int32Array, arena: Uint8Array)
  EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    auto* backend = static_cast<const BackendDescriptor*>(info.Data());
    if (info.Length() < 4 || !info[0].IsObject() || !info[1].IsFunction() || !info[2].IsTypedArray() ||
        !info[3].IsTypedArray()) {
      Napi::TypeError::New(env, "Engine(options, dispatch, events: Int32Array, arena: Uint8Array)")
          .ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    EngineOptions opts;
    if (o.Get("highWaterMark").IsNumber()) opts.high_water_mark = o.Get("highWaterMark").As<Napi::Number>().Int64Value();
    if (o.Get("edgeTriggered").IsBoolean()) opts.driver.edge_triggered = o.Get("edgeTriggered").As<Napi::Boolean>();
    if (o.Get("sqpoll").IsBoolean()) opts.driver.sqpoll = o.Get("sqpoll").As<Napi::Boolean>();
    auto events = info[2].As<Napi::Int32Array>();
    auto arena = info[3].As<Napi::Uint8Array>();
    if (events.ElementLength() < static_cast<size_t>(kEventHeader + kEventInts * 64)) {
      Napi::RangeError::New(env, "event buffer too small").ThrowAsJavaScriptException();
      return;
    }
    dispatch_.Reset(info[1].As<Napi::Function>(), 1);
    events_ref_.Reset(events, 1);
    arena_ref_.Reset(arena, 1);
    async_ctx_ = std::make_unique<Napi::AsyncContext>(env, "LogcasterReactor");

    std::string reason = backend->probe();
    if (!reason.empty()) {
      Napi::Error::New(env, std::string(backend->name) + ": unsupported: " + reason).ThrowAsJavaScriptException();
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
      Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
      return;
    }
    size_t cap = (events.ElementLength() - kEventHeader) / kEventInts;
    auto engine = std::make_unique<Engine>(loop, backend->create(opts.driver), opts, events.Data(), cap,
                                           reinterpret_cast<char*>(arena.Data()), arena.ByteLength());
    engine->dispatch = [this] { CallDispatch(); };
    std::string err;
    int r = engine->Start(&err);
    if (r < 0) {
      Napi::Error e = Napi::Error::New(env, std::string(backend->name) + ": " + (err.empty() ? std::strerror(-r) : err));
      e.Set("errno", Napi::Number::New(env, -r));
      e.ThrowAsJavaScriptException();
      return;
    }
    // The engine's libuv handles close asynchronously, and their close callbacks live
    // in this addon: an async cleanup hook makes Node keep the environment (and the
    // addon) until they have run, also when a worker thread is terminated.
    lifetime_ = new Lifetime();
    lifetime_->engine = std::move(engine);
    lifetime_->owner = this;
    napi_add_async_cleanup_hook(env, &EngineWrap::OnEnvCleanup, lifetime_, &lifetime_->hook);
  }

  ~EngineWrap() override { Teardown(); }

 private:
  struct Lifetime {
    std::unique_ptr<Engine> engine;
    napi_async_cleanup_hook_handle hook = nullptr;
    bool closing = false;
    EngineWrap* owner = nullptr;
  };

  // Stop the engine and close its handles; the hook is removed (and Lifetime freed)
  // only from the last close callback.
  static void Close(Lifetime* l) {
    if (l->closing) return;
    l->closing = true;
    if (l->owner) l->owner->lifetime_ = nullptr;
    std::unique_ptr<Engine> engine = std::move(l->engine);
    engine->dispatch = nullptr;  // no JS calls from here on
    engine->Shutdown();
    engine->CloseHandles([l] {
      napi_remove_async_cleanup_hook(l->hook);
      delete l;
    });
    engine.reset();  // kernel objects go; libuv no longer watches them
  }

  static void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) { Close(static_cast<Lifetime*>(arg)); }

  void Teardown() {
    if (lifetime_) Close(lifetime_);
  }

  Engine* engine() const { return lifetime_ ? lifetime_->engine.get() : nullptr; }

  void CallDispatch() {
    napi_env env = Env();
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
    Napi::HandleScope scope(Env());
    napi_value fn = dispatch_.Value();
    napi_value recv = Value();
    napi_value result;
    // Raw calls: while a worker is being terminated JS can no longer run and these
    // fail; that must not turn into a fatal error from inside a libuv callback.
    if (js_depth_ > 0) {
      // Called synchronously from JS (dispatchPending/runOnce): a plain call; an
      // exception propagates to that caller.
      napi_call_function(env, recv, fn, 0, nullptr, &result);
      return;
    }
    // From a libuv callback: MakeCallback so microtasks and nextTick run after it.
    napi_status st = napi_make_callback(env, *async_ctx_, recv, fn, 0, nullptr, &result);
    if (st == napi_pending_exception || (napi_is_exception_pending(env, &pending) == napi_ok && pending)) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }

  bool Check(const Napi::CallbackInfo& info) {
    if (!engine()) {
      Napi::Error::New(info.Env(), "reactor is closed").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  static int32_t Id(const Napi::CallbackInfo& info) { return info[0].As<Napi::Number>().Int32Value(); }

  // An Error carrying errno (JS turns it into a Node-style code), thrown; undefined.
  static Napi::Value ThrowErrno(Napi::Env env, const std::string& message, int r) {
    Napi::Error e = Napi::Error::New(env, message.empty() ? std::strerror(-r) : message);
    e.Set("errno", Napi::Number::New(env, -r));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }

  static Napi::Array Triple(Napi::Env env, const std::string& text, int port, int family) {
    Napi::Array a = Napi::Array::New(env, 3);
    a.Set(0u, Napi::String::New(env, text));
    a.Set(1u, Napi::Number::New(env, port));
    a.Set(2u, Napi::Number::New(env, family));
    return a;
  }

  Napi::Value Listen(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    std::string host = info[0].As<Napi::String>();
    int port = info[1].As<Napi::Number>().Int32Value();
    int backlog = info[2].As<Napi::Number>().Int32Value();
    bool v6only = info[3].ToBoolean();
    int32_t tls_ctx = info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : -1;
    int bound = 0;
    std::string err;
    int r = engine()->Listen(host, port, backlog, v6only, tls_ctx, &bound, &err);
    if (r < 0) return ThrowErrno(info.Env(), err, r);
    Napi::Array a = Napi::Array::New(info.Env(), 2);
    a.Set(0u, Napi::Number::New(info.Env(), r));
    a.Set(1u, Napi::Number::New(info.Env(), bound));
    return a;
  }

  // listenUnix(path, mode (-1: umask's), backlog) -> listener id
  Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    std::string path = info[0].As<Napi::String>();
    std::string err;
    int r = engine()->ListenUnix(path, info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Int32Value(), &err);
    if (r < 0) return ThrowErrno(info.Env(), err, r);
    return Napi::Number::New(info.Env(), r);
  }

  Napi::Value CloseListener(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), -EBADF);
    return Napi::Number::New(info.Env(), engine()->CloseListener(Id(info)));
  }

  Napi::Value Connect(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    std::string ip = info[0].As<Napi::String>();
    int port = info[1].As<Napi::Number>().Int32Value();
    int32_t tls_ctx = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    std::string servername = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
    std::string session;
    if (info[4].IsTypedArray()) {
      auto b = info[4].As<Napi::Uint8Array>();
      session.assign(reinterpret_cast<const char*>(b.Data()), b.ByteLength());
    }
    std::string err;
    js_depth_++;
    int r = engine()->Connect(ip, port, tls_ctx, servername, session, &err);
    js_depth_--;
    if (r < 0) return ThrowErrno(info.Env(), err, r);
    return Napi::Number::New(info.Env(), r);
  }

  Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    std::string path = info[0].As<Napi::String>();
    std::string err;
    js_depth_++;
    int r = engine()->ConnectUnix(path, &err);
    js_depth_--;
    if (r < 0) return ThrowErrno(info.Env(), err, r);
    return Napi::Number::New(info.Env(), r);
  }

  // bindDatagram({ unix, host, port, ipv6Only, reusePort, connectHost, connectPort,
  //   path, mode, connectPath, recvBufferSize, sendBufferSize, maxMessageSize })
  //   -> [id, bound port]
  Napi::Value BindDatagram(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    Napi::Object o = info[0].As<Napi::Object>();
    auto str = [&o](const char* k) { Napi::Value v = o.Get(k); return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); };
    auto num = [&o](const char* k, int dflt) { Napi::Value v = o.Get(k); return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : dflt; };
    DatagramSpec spec;
    spec.unix_socket = o.Get("unix").ToBoolean();
    spec.host = str("host");
    spec.port = num("port", 0);
    spec.ipv6_only = o.Get("ipv6Only").ToBoolean();
    spec.reuse_port = o.Get("reusePort").ToBoolean();
    spec.connect_host = str("connectHost");
    spec.connect_port = num("connectPort", 0);
    spec.path = str("path");
    spec.mode = num("mode", -1);
    spec.connect_path = str("connectPath");
    spec.recv_buffer = num("recvBufferSize", 0);
    spec.send_buffer = num("sendBufferSize", 0);
    const size_t max_message = static_cast<size_t>(num("maxMessageSize", 65536));
    int bound = 0;
    std::string err;
    int r = engine()->BindDatagram(spec, max_message, &bound, &err);
    if (r < 0) return ThrowErrno(info.Env(), err, r);
    Napi::Array a = Napi::Array::New(info.Env(), 2);
    a.Set(0u, Napi::Number::New(info.Env(), r));
    a.Set(1u, Napi::Number::New(info.Env(), bound));
    return a;
  }

  // sendDatagram(id, data, port, host ('' = connected)) -> 1 / 0 (over the high-water mark)
  Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    auto data = info[1].As<Napi::Uint8Array>();
    std::string host = info[3].As<Napi::String>();
    std::string err;
    int r = engine()->SendDatagram(Id(info), reinterpret_cast<const char*>(data.Data()), data.ByteLength(), host,
                                   info[2].As<Napi::Number>().Int32Value(), &err);
    if (r < 0) return ThrowErrno(info.Env(), err, r);
    return Napi::Number::New(info.Env(), r);
  }

  // sendDatagramTo(id, data, path ('' = connected)) -> 1 / 0
  Napi::Value SendDatagramTo(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    auto data = info[1].As<Napi::Uint8Array>();
    std::string path = info[2].As<Napi::String>();
    std::string err;
    int r = engine()->SendDatagramToPath(Id(info), reinterpret_cast<const char*>(data.Data()), data.ByteLength(), path, &err);
    if (r < 0) return ThrowErrno(info.Env(), err, r);
    return Napi::Number::New(info.Env(), r);
  }

  static void SetCounters(Napi::Env env, Napi::Object o, const DatagramCounters& c) {
    o.Set("received", Napi::Number::New(env, static_cast<double>(c.received)));
    o.Set("truncated", Napi::Number::New(env, static_cast<double>(c.truncated)));
    o.Set("dropped", Napi::Number::New(env, static_cast<double>(c.dropped)));
    o.Set("sent", Napi::Number::New(env, static_cast<double>(c.sent)));
    o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(c.send_errors)));
  }

  Napi::Value DatagramStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const DatagramCounters* c = engine() ? engine()->DatagramStats(Id(info)) : nullptr;
    if (!c) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    SetCounters(env, o, *c);
    return o;
  }

  Napi::Value LocalAddress(const Napi::CallbackInfo& info) {
    if (!engine()) return info.Env().Null();
    std::string text;
    int port = 0, family = 0;
    if (engine()->LocalAddress(Id(info), &text, &port, &family) < 0) return info.Env().Null();
    return Triple(info.Env(), text, port, family);
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), -EPIPE);
    auto data = info[1].As<Napi::Uint8Array>();
    int r = engine()->Write(Id(info), reinterpret_cast<const char*>(data.Data()), data.ByteLength());
    return Napi::Number::New(info.Env(), r);
  }

  Napi::Value End(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), -EPIPE);
    return Napi::Number::New(info.Env(), engine()->End(Id(info)));
  }
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), -EBADF);
    return Napi::Number::New(info.Env(), engine()->Destroy(Id(info)));
  }
  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), -EBADF);
    return Napi::Number::New(info.Env(), engine()->SetPaused(Id(info), true));
  }
  Napi::Value Resume(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), -EBADF);
    return Napi::Number::New(info.Env(), engine()->SetPaused(Id(info), false));
  }
  Napi::Value SetIdleTimeout(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), -EBADF);
    uint32_t ms = info[1].As<Napi::Number>().Uint32Value();
    return Napi::Number::New(info.Env(), engine()->SetIdleTimeout(Id(info), ms));
  }
  Napi::Value RemoteAddress(const Napi::CallbackInfo& info) {
    if (!engine()) return info.Env().Null();
    std::string ip;
    int port = 0, family = 0;
    if (engine()->RemoteAddress(Id(info), &ip, &port, &family) < 0) return info.Env().Null();
    return Triple(info.Env(), ip, port, family);
  }
  Napi::Value Queued(const Napi::CallbackInfo& info) {
    if (!engine()) return Napi::Number::New(info.Env(), 0);
    return Napi::Number::New(info.Env(), static_cast<double>(engine()->QueuedBytes(Id(info))));
  }
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (engine()) engine()->SetRef(true);
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (engine()) engine()->SetRef(false);
    return info.Env().Undefined();
  }
  Napi::Value DispatchPending(const Napi::CallbackInfo& info) {
    if (engine()) {
      js_depth_++;
      engine()->DispatchPending();
      js_depth_--;
    }
    return info.Env().Undefined();
  }
  Napi::Value RunOnce(const Napi::CallbackInfo& info) {
    if (!Check(info)) return info.Env().Undefined();
    js_depth_++;
    engine()->RunOnce(info[0].As<Napi::Number>().Int32Value());
    js_depth_--;
    return info.Env().Undefined();
  }
  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    if (engine()) {
      js_depth_++;
      engine()->Shutdown();
      js_depth_--;
    }
    return info.Env().Undefined();
  }
  Napi::Value CloseHandles(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!engine()) return o;
    engine()->RefreshDrops();
    const EngineStats& s = engine()->stats();
    o.Set("connections", Napi::Number::New(env, static_cast<double>(engine()->connection_count())));
    o.Set("listeners", Napi::Number::New(env, static_cast<double>(engine()->listener_count())));
    o.Set("accepted", Napi::Number::New(env, static_cast<double>(s.accepted)));
    o.Set("closed", Napi::Number::New(env, static_cast<double>(s.closed)));
    o.Set("bytesRead", Napi::Number::New(env, static_cast<double>(s.bytes_read)));
    o.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(s.bytes_written)));
    o.Set("turns", Napi::Number::New(env, static_cast<double>(s.turns)));
    o.Set("dispatches", Napi::Number::New(env, static_cast<double>(s.dispatches)));
    o.Set("acceptPauses", Napi::Number::New(env, static_cast<double>(s.accept_pauses)));
    Napi::Object dg = Napi::Object::New(env);
    SetCounters(env, dg, s.datagrams);
    o.Set("datagrams", dg);
    o.Set("tlsHandshakes", Napi::Number::New(env, static_cast<double>(engine()->tls_stats().handshakes)));
    o.Set("tlsHandshakeFailures", Napi::Number::New(env, static_cast<double>(engine()->tls_stats().handshake_failures)));
    std::vector<std::pair<const char*, double>> counters;
    engine()->driver().Counters(&counters);
    Napi::Object d = Napi::Object::New(env);
    for (const auto& kv : counters) d.Set(kv.first, Napi::Number::New(env, kv.second));
    o.Set("driver", d);
    return o;
  }

  // createTlsContext({ server, cert, key, ca, requestCert, rejectUnauthorized, alpn: string[],
  //                    sni: [{ servername, cert, key }], handshakeTimeout }) -> context id
  Napi::Value CreateTlsContext(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Check(info)) return env.Undefined();
    if (!info[0].IsObject()) {
      Napi::TypeError::New(env, "createTlsContext(options)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object o = info[0].As<Napi::Object>();
    auto text = [&o](const char* key) { Napi::Value v = o.Get(key); return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); };
    TlsOptions t;
    t.server = o.Get("server").ToBoolean();
    t.cert_pem = text("cert");
    t.key_pem = text("key");
    t.ca_pem = text("ca");
    t.request_cert = o.Get("requestCert").ToBoolean();
    t.reject_unauthorized = o.Get("rejectUnauthorized").ToBoolean();
    if (o.Get("handshakeTimeout").IsNumber()) t.handshake_timeout_ms = o.Get("handshakeTimeout").As<Napi::Number>().Uint32Value();
    if (o.Get("alpn").IsArray()) {
      Napi::Array a = o.Get("alpn").As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) t.alpn.push_back(a.Get(i).ToString().Utf8Value());
    }
    if (o.Get("sni").IsArray()) {
      Napi::Array a = o.Get("sni").As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Object e = a.Get(i).As<Napi::Object>();
        t.sni.push_back({e.Get("servername").ToString().Utf8Value(), e.Get("cert").ToString().Utf8Value(),
                         e.Get("key").ToString().Utf8Value()});
      }
    }
    std::string err;
    int id = engine()->tls().CreateContext(t, &err);
    if (id < 0) {
      Napi::Error::New(env, err).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, id);
  }
  Napi::Value ReleaseTlsContext(const Napi::CallbackInfo& info) {
    if (engine()) engine()->tls().ReleaseContext(Id(info));
    return info.Env().Undefined();
  }
  Napi::Value TlsInfoOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    TlsInfo t;
    if (!engine() || !engine()->tls().Info(Id(info), &t)) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("protocol", t.protocol);
    o.Set("cipher", t.cipher);
    o.Set("alpnProtocol", t.alpn);
    o.Set("servername", t.servername);
    o.Set("peerSubject", t.peer_subject);
    o.Set("peerIssuer", t.peer_issuer);
    o.Set("peerFingerprint256", t.peer_fingerprint);
    o.Set("authorized", t.authorized);
    o.Set("authorizationError", t.authorization_error);
    o.Set("resumed", t.resumed);
    return o;
  }
  Napi::Value TlsSessionOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string s = engine() ? engine()->tls().Session(Id(info)) : std::string();
    if (s.empty()) return env.Null();
    return Napi::Buffer<char>::Copy(env, s.data(), s.size());
  }
  Napi::Value TlsErrorOf(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), engine() ? engine()->tls().TakeError(Id(info)) : std::string());
  }

  // Released only after ~EngineWrap's body has stopped the engine that points into them.
  Napi::FunctionReference dispatch_;
  Napi::Reference<Napi::Int32Array> events_ref_;
  Napi::Reference<Napi::Uint8Array> arena_ref_;
  std::unique_ptr<Napi::AsyncContext> async_ctx_;
  int js_depth_ = 0;
  Lifetime* lifetime_ = nullptr;  // owned by itself: freed when the handles are closed
};

}  // namespace

Napi::Object InitBackend(Napi::Env env, Napi::Object exports, const BackendDescriptor* backend) {
  exports.Set("name", Napi::String::New(env, backend->name));
  exports.Set("probe", Napi::Function::New(env, [backend](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env e = info.Env();
    Napi::Object o = Napi::Object::New(e);
    std::string reason = backend->probe();
    o.Set("supported", Napi::Boolean::New(e, reason.empty()));
    o.Set("reason", Napi::String::New(e, reason));
    return o;
  }));
  exports.Set("Engine", EngineWrap::Define(env, backend));
  ExportTuning(env, exports);
  return exports;
}

}  // namespace logcaster
