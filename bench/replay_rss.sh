#!/usr/bin/env bash
# Replay memory (DESIGN.md budget: "bounded by live objects, not by trace
# length"): peak RSS of `mmfuzz replay --quiet` on
#   (a)  the real trace, corpus/traces/arm64-6.1-boot-shell.trace.zst
#        (0.42 M events; a file: two passes, cache names learned first),
#   (a1) the same trace once through standard input (one pass, as (b)),
#   (b)  the trace decompressed and concatenated COPIES times (default 24,
#        10.2 M events) through a pipe into `mmfuzz replay - --quiet`.
# Timestamps restart with each copy and pointers repeat, so the objects still
# live at the end of one copy are allocated again by the next: the replay
# counts those as double allocations in the trace (and frees the old object
# first), which keeps the model's live set the same from copy to copy. If
# replay memory grew with the trace, (b) would need many times (a1)'s RSS.
#
#   bench/replay_rss.sh                   # prints a table
#   bench/replay_rss.sh --json FILE       # also writes the numbers as JSON (bench/run.sh)
#   COPIES=4 bench/replay_rss.sh          # a quicker, smaller (b)
#
# Uses build/default/bin/mmfuzz (build it first: cmake --build --preset default
# --target mmfuzz; MMFUZZ=PATH picks another binary). Exit status 1 with one
# line on stderr when anything fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mmfuzz="${MMFUZZ:-$root/build/default/bin/mmfuzz}"
trace="$root/corpus/traces/arm64-6.1-boot-shell.trace.zst"
copies="${COPIES:-24}"
json_out=""

die() {
  echo "bench/replay_rss.sh: error: $*" >&2
  exit 1
}

while (($#)); do
  case "$1" in
    --json)
      (($# >= 2)) || die "--json needs a FILE"
      json_out="$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ "$copies" =~ ^[1-9][0-9]*$ ]] || die "COPIES must be a positive integer, not '$copies'"
[[ -x "$mmfuzz" ]] ||
  die "${mmfuzz#"$root"/} not found: build it first (cmake --preset default && cmake --build --preset default --target mmfuzz)"
[[ -r "$trace" ]] || die "${trace#"$root"/} not found"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian package 'time'): needed for the peak RSS"
command -v zstd >/dev/null || die "zstd not found (Debian package 'zstd'): needed to decompress the trace"
command -v python3 >/dev/null || die "python3 not found (reads the replay's --json output)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mmfuzz-replay-rss.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
zstd -q -dc "$trace" >"$tmp/trace.txt" || die "cannot decompress ${trace#"$root"/}"

# The replay's exit status: 0 clean, 1 violations (both are a finished
# replay; this script measures memory, not the verdict), anything else fails.
# (b) is expected to end with violations: from the second copy on, the boot's
# frees of pages allocated before tracing (order-9 frees by pgdatinit) meet
# pages the previous copy allocated at order 0 (page_alloc.wrong_order).
check_status() { # label status
  (($2 == 0 || $2 == 1)) || die "$1: mmfuzz replay failed (exit status $2)"
}

# One run; with a copy count the decompressed trace is piped that many times
# into `mmfuzz replay -`, else the trace file is replayed by name.
results=()
measure() { # name label input-description trace-arg [copies-through-stdin]
  local name="$1" label="$2" input="$3" arg="$4" n="${5:-0}" status=0
  if ((n == 0)); then
    /usr/bin/time -f '%e %M' -o "$tmp/$name.time" \
      "$mmfuzz" replay "$arg" --quiet --json "$tmp/$name.json" || status=$?
  else
    local i
    set +o pipefail
    for ((i = 0; i < n; ++i)); do cat "$tmp/trace.txt"; done |
      /usr/bin/time -f '%e %M' -o "$tmp/$name.time" \
        "$mmfuzz" replay - --quiet --json "$tmp/$name.json" || status=$?
    set -o pipefail
  fi
  check_status "$label" "$status"
  [[ -s "$tmp/$name.json" ]] || die "$label: mmfuzz replay wrote no --json output"
  local wall rss events verdict live
  # The last line: /usr/bin/time puts "Command exited with non-zero status N" first.
  read -r wall rss < <(tail -n 1 "$tmp/$name.time") || die "$label: no /usr/bin/time output"
  read -r events verdict live < <(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print(j["events"], j["verdict"], j["live"]["objects"])' "$tmp/$name.json") ||
    die "$label: cannot read the replay JSON"
  results+=("$name|$label|$input|$events|$wall|$rss|$verdict|$live|$status")
}

echo "bench/replay_rss.sh: ${mmfuzz#"$root"/} replay --quiet, peak RSS by /usr/bin/time -f %M" >&2
measure file "(a) real trace, file" "${trace#"$root"/}" "$trace"
measure stdin1 "(a1) real trace, stdin" "1 copy, decompressed, through a pipe" - 1
measure stdinN "(b) ${copies} copies, stdin" "${copies} copies, decompressed, through a pipe" - "$copies"

printf '%-26s %12s %9s %12s %14s %10s %12s\n' run events wall events/s "peak RSS" verdict "live objs"
for r in "${results[@]}"; do
  IFS='|' read -r name label input events wall rss verdict live status <<<"$r"
  rate="$(python3 -c 'import sys; e, w = float(sys.argv[1]), float(sys.argv[2]); print(f"{e / w / 1e6:.2f} M/s" if w > 0 else "-")' "$events" "$wall")"
  printf '%-26s %12s %8ss %12s %11s MiB %10s %12s\n' "$label" "$events" "$wall" "$rate" \
    "$(python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1024:.1f}")' "$rss")" "$verdict" "$live"
done
python3 - "${results[@]}" <<'EOF'
import sys
runs = {r.split("|")[0]: r.split("|") for r in sys.argv[1:]}
a, b = runs["stdin1"], runs["stdinN"]
ev = int(b[3]) / int(a[3])
rss = int(b[5]) / int(a[5])
print(f"(b)/(a1): {ev:.1f}x the events, {rss:.2f}x the peak RSS")
EOF

if [[ -n "$json_out" ]]; then
  python3 - "$json_out" "$copies" "${results[@]}" <<'EOF' || die "cannot write $json_out"
import json, os, sys
out, copies = sys.argv[1], int(sys.argv[2])
runs = []
for r in sys.argv[3:]:
    name, label, inp, events, wall, rss, verdict, live, status = r.split("|")
    runs.append(dict(name=name, label=label, input=inp, events=int(events),
                     wall_s=float(wall), peak_rss_kib=int(rss), verdict=verdict,
                     live_objects=int(live), exit_status=int(status)))
doc = dict(tool="bench/replay_rss.sh", command="mmfuzz replay --quiet", copies=copies,
           runs=runs)
tmp = out + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
os.replace(tmp, out)
EOF
fi
