# TEST-ONLY: the real kqueue backend source (../../src) compiled against the
# kqueue-on-epoll shim in this folder, so the conformance suite can exercise it on
# Linux. Built by `npm run build:shim` (or by the test when missing); never shipped.
{
  "targets": [
    {
      "target_name": "logcaster_kqueue_shim",
      "includes": ["../../../core/native/core.gypi"],
      "defines": ["LOGCASTER_KQUEUE_SHIM"],
      "include_dirs": ["."],
      "sources": ["../../src/kqueue_poller.cc", "../../src/addon.cc", "kqueue_shim.cc"]
    }
  ]
}
