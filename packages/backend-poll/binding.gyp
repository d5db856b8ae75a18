{
  "targets": [
    {
      "target_name": "logcaster_poll",
      # The shared engine ships in @logcaster/core ("../core" both in this monorepo and
      # under node_modules/@logcaster/).
      "includes": ["../core/native/core.gypi"],
      "sources": ["src/poll_poller.cc", "src/addon.cc"]
    }
  ]
}
