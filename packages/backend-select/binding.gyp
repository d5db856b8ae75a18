{
  "targets": [
    {
      "target_name": "logcaster_select",
      # The shared engine ships in @logcaster/core ("../core" both in this monorepo and
      # under node_modules/@logcaster/).
      "includes": ["../core/native/core.gypi"],
      "sources": ["src/select_poller.cc", "src/addon.cc"]
    }
  ]
}
