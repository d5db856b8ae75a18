{
  "targets": [
    {
      "target_name": "logcaster_epoll",
      # The shared engine ships in @logcaster/core. "../core" is that package both in
      # this monorepo (packages/core) and when installed (node_modules/@logcaster/core);
      # gyp cannot compute include paths, so it is spelled out here.
      "includes": ["../core/native/core.gypi"],
      "sources": ["src/epoll_poller.cc", "src/addon.cc"]
    }
  ]
}
