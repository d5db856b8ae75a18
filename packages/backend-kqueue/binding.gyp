{
  "targets": [
    {
      "target_name": "logcaster_kqueue",
      # The shared engine ships in @logcaster/core ("../core" both in this monorepo and
      # under node_modules/@logcaster/).
      "includes": ["../core/native/core.gypi"],
      "conditions": [
        # The real backend only where <sys/event.h> exists. Elsewhere (Linux) an addon
        # whose probe() reports "unsupported on linux", so installing never fails.
        ["OS=='mac' or OS=='freebsd' or OS=='openbsd' or OS=='netbsd'", {
          "sources": ["src/kqueue_poller.cc", "src/addon.cc"]
        }, {
          "sources": ["src/unsupported_addon.cc"]
        }]
      ]
    }
  ]
}
