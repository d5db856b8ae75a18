{
  "targets": [
    {
      "target_name": "logcaster_iouring",
      # The shared engine ships in @logcaster/core. "../core" is that package both in
      # this monorepo (packages/core) and when installed (node_modules/@logcaster/core).
      # io_uring is used through raw syscalls: no liburing, nothing extra at run time.
      "includes": ["../core/native/core.gypi"],
      "sources": ["src/uring.cc", "src/iouring_probe.cc", "src/iouring_tuning.cc", "src/iouring_driver.cc",
                  "src/iouring_receive.cc", "src/iouring_datagram.cc", "src/addon.cc"]
    }
  ]
}
