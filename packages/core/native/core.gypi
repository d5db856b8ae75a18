# Included by every backend's binding.gyp: compiles the shared engine into the addon.
# Paths are relative to this file, so a backend installed from npm finds the
# engine sources inside its @logcaster/core dependency.
{
  "sources": [
    "engine.cc",
    "engine_tls.cc",
    "tls.cc",
    "readiness_driver.cc",
    "sockets.cc",
    "datagram_sockets.cc",
    "unix_sockets.cc",
    "tuning.cc",
    "addon.cc"
  ],
  "include_dirs": [
    ".",
    "<!@(node -p \"require('node-addon-api').include\")"
  ],
  "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
  "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-exceptions"],
  "cflags_cc!": ["-std=gnu++17", "-std=gnu++1y", "-fno-rtti"],
  "xcode_settings": {
    "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
    "GCC_ENABLE_CPP_EXCEPTIONS": "NO",
    "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
  },
  "conditions": [
    ["OS=='linux'", { "ldflags": ["-Wl,--as-needed"] }]
  ]
}
