#!/usr/bin/env bash
# Builds bench_page_alloc with the `default` preset, runs it (5 repetitions of at least 0.5 s,
# medians) and regenerates docs/performance.md from its JSON output.
#
#   bench/run.sh                               # the documented run
#   bench/run.sh --benchmark_min_time=0.1      # extra arguments go to the benchmark binary
#
# docs/performance.md is replaced atomically, and only when the run succeeded.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build_dir="$root/build/default"
bin="$build_dir/bin/bench_page_alloc"
out="$root/docs/performance.md"

die() {
  echo "bench/run.sh: error: $*" >&2
  exit 1
}

command -v python3 >/dev/null || die "python3 not found (needed to write docs/performance.md)"

cmake --preset default >/dev/null || die "cmake --preset default failed"
cmake --build --preset default --target bench_page_alloc || die "building bench_page_alloc failed"
[[ -x "$bin" ]] || die "$bin was not built"

json="$(mktemp "${TMPDIR:-/tmp}/mmfuzz-bench.XXXXXX.json")"
trap 'rm -f "$json"' EXIT

bench_args=(--benchmark_repetitions=5 --benchmark_min_time=0.5
  --benchmark_format=json "$@")
echo "bench/run.sh: running ${bin#"$root"/} ${bench_args[*]}" >&2
status=0
"$bin" "${bench_args[@]}" >"$json" || status=$?
if ((status != 0)); then
  die "bench_page_alloc failed (exit status $status); docs/performance.md left unchanged"
fi

python3 "$root/bench/perf_report.py" \
  --json "$json" \
  --build-dir "$build_dir" \
  --source-dir "$root" \
  --out "$out" \
  --command "cmake --preset default && cmake --build --preset default --target bench_page_alloc && build/default/bin/bench_page_alloc ${bench_args[*]}"
echo "bench/run.sh: wrote ${out#"$root"/}" >&2
