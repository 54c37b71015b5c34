#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for MINUTES each with cargo-fuzz on nightly.
# Usage: fuzz/run.sh [--minutes N] [TARGET...]     (default 1 minute each)
#        fuzz/run.sh SECONDS                       (the old form: N seconds each)
# Needs: rustup toolchain nightly, `cargo install cargo-fuzz --locked`.
# Seeds: the committed corpus fuzz/corpus/TARGET/ (read only); what the fuzzer learns goes to
# fuzz/target/corpus/TARGET/, crashes to fuzz/artifacts/TARGET/. A summary line per target.
set -euo pipefail
cd "$(dirname "$0")"
seconds=60
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) seconds=$(python3 -c "print(int(float('$2') * 60))"); shift 2 ;;
        --minutes=*) seconds=$(python3 -c "print(int(float('${1#*=}') * 60))"); shift ;;
        [0-9]*) seconds=$1; shift ;;
        -h|--help) sed -n 2,7p "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(cargo +nightly fuzz list)
failed=0
for target in "${targets[@]}"; do
    mkdir -p target/corpus/"$target" corpus/"$target"
    echo "== $target ($seconds s)"
    log=target/fuzz-"$target".log
    if cargo +nightly fuzz run -O "$target" target/corpus/"$target" corpus/"$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
        grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -n 1 || tail -n 2 "$log"
    else
        failed=1
        echo "!! $target failed: see fuzz/$log and fuzz/artifacts/$target/"
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 5 || tail -n 20 "$log"
    fi
done
exit $failed
