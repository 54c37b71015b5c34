#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60) with cargo-fuzz on nightly.
# Usage: fuzz/run.sh [SECONDS]   (needs: rustup toolchain nightly, cargo install cargo-fuzz)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
for target in $(cargo +nightly fuzz list); do
    mkdir -p corpus/"$target"
    echo "== $target ($seconds s)"
    cargo +nightly fuzz run -O "$target" corpus/"$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | tail -n 2
done
