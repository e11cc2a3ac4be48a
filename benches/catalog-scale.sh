#!/usr/bin/env bash
# Issue 14, target 1: a vault of 10,000 assets against one of 10, the same calls in each (open,
# assets, asset, play, pause, the start of a download), medians of --rounds (default 5).
#   benches/catalog-scale.sh [--rounds N] [--assets N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p vodvault-benches --features scale --bin vodvault-catalog-scale
exec target/release/vodvault-catalog-scale "$@"
