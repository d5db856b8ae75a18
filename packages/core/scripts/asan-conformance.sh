#!/usr/bin/env bash
# Run the conformance suites (stream, datagram and TLS) over AddressSanitizer builds of the
# Linux backends.
# The addons are built in a scratch copy so the tree's normal builds stay untouched.
#   bash packages/core/scripts/asan-conformance.sh [backend ...]   (default: epoll select poll iouring)
# ASan's quarantine keeps freed memory, so the memory-growth test is run with it off.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
work="$(mktemp -d /tmp/logcaster-asan.XXXXXX)"
backends=("${@:-epoll select poll iouring}")
read -r -a backends <<< "${backends[*]}"
mkdir -p "$work/core"
cp -r "$root/packages/core/native" "$work/core/"
ln -s "$root/node_modules" "$work/node_modules"
nodedir="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}"
for b in "${backends[@]}"; do
  mkdir -p "$work/backend-$b"
  cp -r "$root/packages/backend-$b/src" "$root/packages/backend-$b/binding.gyp" "$work/backend-$b/"
  (cd "$work/backend-$b" && CXXFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1" LDFLAGS="-fsanitize=address" \
    node "$root/node_modules/node-gyp/bin/node-gyp.js" rebuild ${nodedir:+--nodedir="$nodedir"} -j max >/dev/null)
done
cat > "$work/conformance.js" <<JS
const { runConformance, runDatagramConformance } = require('$root/packages/conformance/dist/src/suite');
const { runTlsConformance } = require('$root/packages/conformance/dist/src/tls-suite');
for (const b of '${backends[*]}'.split(' ')) {
  const path = '$work/backend-' + b + '/build/Release/logcaster_' + b + '.node';
  const mod = require(path);
  runConformance(b + ' (ASan)', () => mod, 'require(' + JSON.stringify(path) + ')');
  runDatagramConformance(b + ' (ASan)', () => mod);
  runTlsConformance(b + ' (ASan)', () => mod);
}
JS
cd "$work"
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=0 \
  "$root/node_modules/.bin/mocha" --no-config --node-option expose-gc --timeout 120000 conformance.js
