#!/usr/bin/env bash
# Compiles the generated Kotlin bindings and the Kotlin tests with kotlinc and runs them on the
# JVM with JNA against the library bindings/generate.sh built. Needs:
#   java 17+, JNA (Debian: libjna-java), kotlinc (KOTLINC, or `npm pack kotlin-compiler@2.4.20`
#   unpacked; its lib/ has kotlinx-coroutines-core-jvm.jar).
# Skips with a printed reason (exit 0) when a tool is missing; VODVAULT_REQUIRE_BINDINGS=1 turns
# that into a failure (CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
skip() {
  echo "SKIPPED Kotlin tests: $1" >&2
  if [ "${VODVAULT_REQUIRE_BINDINGS:-0}" = 1 ]; then exit 1; fi
  exit 0
}
kotlinc=${KOTLINC:-$(command -v kotlinc || true)}
[ -n "$kotlinc" ] && [ -x "$kotlinc" ] || skip "kotlinc not found (set KOTLINC; npm pack kotlin-compiler@2.4.20)"
command -v java >/dev/null || skip "java not found"
jna=${JNA_JAR:-/usr/share/java/jna.jar}
[ -f "$jna" ] || skip "JNA not found at $jna (apt-get install libjna-java, or set JNA_JAR)"
klib=$(cd "$(dirname "$(readlink -f "$kotlinc")")/../lib" && pwd)
coroutines="$klib/kotlinx-coroutines-core-jvm.jar"
[ -f "$coroutines" ] || skip "kotlinx-coroutines-core-jvm.jar not in $klib"
lib=target/debug
[ -f "$lib/libvodvault_ffi.so" ] || [ -f "$lib/libvodvault_ffi.dylib" ] || bindings/generate.sh
out=target/kotlin-tests
mkdir -p "$out"
rm -f "$out/tests.jar"  # never run a stale jar when compilation fails
"$kotlinc" -nowarn bindings/kotlin/generated/io/vodvault/vodvault_ffi.kt bindings/kotlin/tests/VaultTest.kt \
  -cp "$jna:$coroutines" -include-runtime -d "$out/tests.jar" 2>&1 | grep -v "^warning" || true
[ -f "$out/tests.jar" ] || { echo "kotlinc failed" >&2; exit 1; }
VODVAULT_FIXTURES=$PWD/tests/fixtures java -Djna.library.path="$PWD/$lib" -cp "$out/tests.jar:$jna:$coroutines" VaultTestKt
