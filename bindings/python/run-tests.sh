#!/usr/bin/env bash
# Runs the Python binding tests (pytest) against the library bindings/generate.sh built. Skips
# with a printed reason (exit 0) without pytest; VODVAULT_REQUIRE_BINDINGS=1 makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! python3 -c 'import pytest' 2>/dev/null; then
  echo "SKIPPED Python tests: pytest is not installed (pip install pytest)" >&2
  [ "${VODVAULT_REQUIRE_BINDINGS:-0}" = 1 ] && exit 1
  exit 0
fi
[ -f bindings/python/generated/vodvault_ffi.py ] || bindings/generate.sh
python3 -m pytest -q bindings/python/tests
