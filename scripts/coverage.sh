#!/usr/bin/env bash
# Coverage of the whole suite, by hand (it takes longer than `npm test`):
#   - TypeScript: c8, through NODE_V8_COVERAGE, so every process and worker thread the tests
#     start (server children, CLI clients, examples) counts, mapped back to the .ts sources;
#   - native: every backend rebuilt with gcc's --coverage, the engine's counts merged across
#     backends by lcov, and the addons rebuilt as before on exit.
# Needs lcov (Debian package `lcov`). Reports: coverage/ts/index.html, coverage/native/index.html,
# the summaries on stdout. Extra arguments replace the test globs (e.g. one file).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v lcov >/dev/null || { echo "coverage: lcov is needed for the native report (apt-get install lcov)" >&2; exit 2; }

npm run build >/dev/null
mapfile -t backends < <(ls -d packages/backend-*/ 2>/dev/null | while read -r d; do [ -f "$d/binding.gyp" ] && echo "$d"; done)
rebuild() {
  for b in "${backends[@]}"; do
    (cd "$b" && CXXFLAGS="$1" LDFLAGS="$1" npx --no-install node-gyp rebuild >/dev/null 2>&1)
  done
}
trap 'echo "coverage: rebuilding the addons without instrumentation" >&2; rebuild ""' EXIT
echo "coverage: rebuilding ${#backends[@]} addons with --coverage" >&2
rebuild --coverage
find packages -name '*.gcda' -delete

rm -rf coverage && mkdir -p coverage
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=('packages/*/dist/test/**/*.test.js' 'examples/*/test/*.test.js')
status=0
# The packaging tests are left out: the io_uring one recompiles that addon from scratch
# (prebuildify) under the running suite, whose counts then no longer match the notes.
npx --no-install c8 --reporter=text-summary --reporter=html --reporter=json-summary \
  --report-dir coverage/ts --all --src . \
  --include 'packages/*/dist/src/**' --include 'examples/**/*.js' \
  --exclude '**/test/**' --exclude '**/node_modules/**' \
  mocha --exclude '**/packaging.test.js' "${tests[@]}" || status=$?

# Counts whose notes file is gone belong to a build replaced mid-run: unreadable, so left
# out, named.
find packages -name '*.gcda' | while read -r f; do
  [ -f "${f%.gcda}.gcno" ] || { echo "coverage: left out $f (its build was replaced during the run)" >&2; rm -f "$f"; }
done
lcov --quiet --capture --directory packages --output-file coverage/native-all.info --ignore-errors gcov,graph
lcov --quiet --extract coverage/native-all.info '*/packages/core/native/*' '*/packages/backend-*/src/*' \
  --output-file coverage/native.info
genhtml --quiet --ignore-errors source coverage/native.info --output-directory coverage/native >/dev/null
echo "native (engine + backends):"
lcov --summary coverage/native.info 2>&1 | grep -E 'lines|functions'
echo "per file (lines):"
lcov --list coverage/native.info 2>/dev/null | grep -E '\|' | head -60
exit $status
