#!/usr/bin/env bash
# Runs the fuzz targets (cargo-fuzz, libFuzzer, nightly), each for a while, from seed corpora
# made of the repository's fixtures, the real-world playlists of tests/corpus, key files and
# hand-written VOD answers and catalog JSON (fuzz/seeds).
#
#   fuzz/run.sh [--seconds N] [--jobs J] [target...]     (default: every target, 60 s each)
#
# A crash, a hang (-timeout) or an allocation over -malloc_limit_mb stops the run and leaves the
# input in fuzz/artifacts/<target>/; the script then exits 1. Corpora grow in fuzz/corpus/
# (not committed). Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"

seconds=60 jobs=1 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -*) echo "usage: $0 [--seconds N] [--jobs J] [target...]" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(hls_media hls_master sniff key_file sealed range vod_answer stored_json mpd sidx)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is required: cargo install cargo-fuzz" >&2; exit 1; }
rustup run nightly rustc --version >/dev/null 2>&1 || { echo "the nightly toolchain is required" >&2; exit 1; }

repo=$PWD/..
seed() { # target files...
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] || continue
    # Named by content, so seeding twice adds nothing; media is cut to its first 16 KiB.
    local name; name=$(head -c 16384 "$f" | sha1sum | cut -c1-16)
    head -c 16384 "$f" > "$dir/seed-$name"
  done
}
playlists=("$repo"/tests/corpus/hls/* $(find "$repo/tests/fixtures" "$repo/cli/demo" -name '*.m3u8'))
seed hls_media "${playlists[@]}"
seed hls_master "${playlists[@]}"
seed sniff $(find "$repo/tests/fixtures" -type f \( -name '*.ts' -o -name '*.m4s' -o -name '*.mp4' -o -name '*.jpg' -o -name '*.vtt' -o -name '*.key' \) | head -40) \
  "$repo"/tests/corpus/dash/* "${playlists[@]:0:10}"
seed mpd "$repo"/tests/corpus/dash/* $(find "$repo/tests/fixtures/dash" -name '*.mpd')
seed sidx $(find "$repo/tests/fixtures/dash/base" -name '*.mp4')
seed sealed $(find "$repo/tests/fixtures" -type f \( -name '*.ts' -o -name '*.vtt' \) | head -20) "$repo/core/tests/vectors/seal-v1.json"
# Hand-written seeds, and every input a target once failed on (regressions: fixed, kept).
for t in "${targets[@]}"; do [ -d "seeds/$t" ] && seed "$t" seeds/"$t"/*; done
if [ ! -f corpus/key_file/com.example.fuzz.vvkey ]; then
  mkdir -p corpus/key_file
  keytool="$repo/target/debug/vodvault-keytool"
  [ -x "$keytool" ] || (cd "$repo" && cargo build --quiet -p vodvault-keytool)
  for app in com.example.fuzz com.example.other; do
    "$keytool" generate --app-id "$app" --out "corpus/key_file/$app.vvkey" --force >/dev/null 2>&1
  done
fi

status=0
parallel=()
[ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
for t in "${targets[@]}"; do
  echo "== $t: $seconds s" >&2
  # -timeout: one input taking over 10 s is a hang; -malloc_limit_mb: one allocation over 512 MiB
  # is unbounded (the parsers bound what they read); -max_len: playlists of real size.
  if ! cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -timeout=10 \
    -malloc_limit_mb=512 -rss_limit_mb=2048 -max_len=262144 "${parallel[@]}" \
    -print_final_stats=1 2> "corpus/$t.log"; then
    echo "$t: FAILED (input in fuzz/artifacts/$t/; log: fuzz/corpus/$t.log)" >&2
    tail -40 "corpus/$t.log" >&2
    status=1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "corpus/$t.log" | sed "s/^/$t /" >&2 || true
done
exit $status
