#!/usr/bin/env bash
# Builds the benchmark programs (bench_page_alloc, bench_slab, bench_vm,
# bench_trace_parse, bench_replay, bench_fuzz) and mmfuzz with the `default` preset, runs
# each benchmark program (5 repetitions of at least 0.5 s, medians; the replay
# benchmarks fix 2 replays per repetition), measures replay memory with
# bench/replay_rss.sh, and regenerates docs/performance.md from their output.
#
#   bench/run.sh                               # the documented run
#   bench/run.sh --benchmark_min_time=0.1      # extra arguments go to every benchmark binary
#
# docs/performance.md is replaced atomically, and only when every run succeeded.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build_dir="$root/build/default"
out="$root/docs/performance.md"
benches=(bench_page_alloc bench_slab bench_vm bench_trace_parse bench_replay bench_fuzz)

die() {
  echo "bench/run.sh: error: $*" >&2
  exit 1
}

command -v python3 >/dev/null || die "python3 not found (needed to write docs/performance.md)"

cmake --preset default >/dev/null || die "cmake --preset default failed"
cmake --build --preset default --target "${benches[@]}" mmfuzz ||
  die "building ${benches[*]} mmfuzz failed"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mmfuzz-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

bench_args=(--benchmark_repetitions=5 --benchmark_min_time=0.5
  --benchmark_format=json "$@")
json_args=()
runs=()
for b in "${benches[@]}"; do
  bin="$build_dir/bin/$b"
  [[ -x "$bin" ]] || die "$bin was not built"
  echo "bench/run.sh: running ${bin#"$root"/} ${bench_args[*]}" >&2
  status=0
  "$bin" "${bench_args[@]}" >"$tmp/$b.json" || status=$?
  if ((status != 0)); then
    die "$b failed (exit status $status); docs/performance.md left unchanged"
  fi
  json_args+=(--json "$tmp/$b.json")
  runs+=("build/default/bin/$b ${bench_args[*]}")
done

# Replay memory: peak RSS of mmfuzz replay on 0.42 M and 10.2 M events.
echo "bench/run.sh: running bench/replay_rss.sh" >&2
status=0
"$root/bench/replay_rss.sh" --json "$tmp/replay_rss.json" >"$tmp/replay_rss.txt" || status=$?
((status == 0)) || die "bench/replay_rss.sh failed (exit status $status); docs/performance.md left unchanged"
cat "$tmp/replay_rss.txt" >&2

command="cmake --preset default && cmake --build --preset default --target ${benches[*]} mmfuzz"
for r in "${runs[@]}"; do command+=" && $r"; done
command+=" && bench/replay_rss.sh"
python3 "$root/bench/perf_report.py" \
  "${json_args[@]}" \
  --rss-json "$tmp/replay_rss.json" \
  --rss-output "$tmp/replay_rss.txt" \
  --build-dir "$build_dir" \
  --source-dir "$root" \
  --out "$out" \
  --command "$command"
echo "bench/run.sh: wrote ${out#"$root"/}" >&2
