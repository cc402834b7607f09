#!/usr/bin/env bash
# The mmfuzz command's contract: exit 0 ok, 1 violations, 2 bad usage or
# input with exactly one line on stderr; never a crash or a partial file.
set -u
MMFUZZ=${1:?usage: test_cli.sh path/to/mmfuzz}
case $MMFUZZ in */*) MMFUZZ=$(cd "$(dirname "$MMFUZZ")" && pwd)/$(basename "$MMFUZZ") ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect CODE -- ARGS...: run mmfuzz, check the exit code and, for 2, that
# stderr is exactly one line.
expect() {
  local want=$1; shift; shift
  "$MMFUZZ" "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  local lines
  lines=$(wc -l <"$tmp/err")
  if [ "$got" != "$want" ]; then
    echo "FAIL: mmfuzz $* exited $got, want $want"; sed 's/^/  stderr: /' "$tmp/err" | head -5; fails=$((fails + 1))
  elif [ "$want" = 2 ] && [ "$lines" != 1 ]; then
    echo "FAIL: mmfuzz $* printed $lines stderr lines, want 1"; sed 's/^/  stderr: /' "$tmp/err" | head -5; fails=$((fails + 1))
  else
    echo "ok:   mmfuzz $* -> $got"
  fi
}
contains() {  # contains FILE TEXT
  if ! grep -qF -- "$2" "$1"; then echo "FAIL: $(basename "$1") lacks '$2'"; fails=$((fails + 1)); fi
}

expect 0 -- --help
contains "$tmp/out" "info"
contains "$tmp/out" "workload"
expect 2 --
expect 2 -- --bogus
expect 2 -- nosuchcommand
expect 2 -- info --bogus-flag
expect 2 -- info --profile linux-4.4-x86
contains "$tmp/err" "unknown kernel profile"
expect 2 -- info --ram 1X
expect 2 -- info --ram 8M
expect 2 -- info --ram 1000001K
expect 2 -- info --cpus 0
expect 2 -- info --ram 128G
contains "$tmp/err" "more than the model supports"
expect 2 -- info --nodes 64
expect 2 -- info --view nosuchview
expect 2 -- info --machine "$tmp/does-not-exist"
printf 'ram_size = 512M\nthis line is wrong\n' >"$tmp/bad.machine"
expect 2 -- info --machine "$tmp/bad.machine"
contains "$tmp/err" "bad.machine:2:"
printf 'ram_size = 512M\ncpus = 4\nnodes = 2\nhole = 0x50000000+64M\n' >"$tmp/good.machine"
expect 0 -- info --machine "$tmp/good.machine" --view buddyinfo --no-headers
contains "$tmp/out" "Node 1, zone      DMA"

expect 0 -- info
contains "$tmp/out" "==> /proc/buddyinfo <=="
contains "$tmp/out" "Node 0, zone      DMA "
contains "$tmp/out" "        min      5632"
contains "$tmp/out" "40000000-7fffffff : System RAM"
expect 0 -- info --profile linux-5.10-arm64 --ram 2G --cpus 4 --view zoneinfo
contains "$tmp/out" "batch: 63"

expect 0 -- info --small --slab slab --view slabinfo --no-headers
contains "$tmp/out" "kmalloc-4M"
contains "$tmp/out" ": tunables"
expect 0 -- info --small --slub-debug FZPU --view slabinfo --no-headers
contains "$tmp/out" "kmalloc-128"
expect 0 -- info --small --slab slob --view slabinfo,slabtop
contains "$tmp/out" "kmem_cache"
expect 2 -- info --slab slub2
expect 0 -- info --small --kmalloc-min 8 --view slabinfo --no-headers
contains "$tmp/out" "kmalloc-96 "
expect 2 -- info --kmalloc-min 12
expect 2 -- info --slub-debug Q

expect 0 -- info --ptdump
contains "$tmp/out" "==> /sys/kernel/debug/kernel_page_tables <=="
contains "$tmp/out" "---[ vmalloc() area ]---"
contains "$tmp/out" "BLK UXN"
expect 0 -- info --vmallocinfo
contains "$tmp/out" "==> /proc/vmallocinfo <=="
contains "$tmp/out" "paging_init"
expect 0 -- info --small --view vmstat
contains "$tmp/out" "==> /proc/vmstat <=="
contains "$tmp/out" "buddy_split_order10 "
contains "$tmp/out" "slub_alloc_fastpath "
expect 0 -- info --rodata full --view ptdump --no-headers
contains "$tmp/out" "---[ Linear Mapping start ]---"
if sed -n '/Linear Mapping start/,/Linear Mapping end/p' "$tmp/out" | grep ' RW ' | grep -q BLK; then
  echo "FAIL: --rodata full left block mappings in the linear map"; fails=$((fails + 1))
fi
expect 2 -- info --rodata bogus
contains "$tmp/err" "--rodata"
expect 0 -- workload --small --slab slab --ops 3000 --seed 9
contains "$tmp/out" "verdict: clean"
expect 0 -- workload --small --slab slob --ops 3000 --seed 9
contains "$tmp/out" "verdict: clean"

expect 0 -- checks
contains "$tmp/out" "buddy.coalesced"
contains "$tmp/out" "page_alloc.double_free"
# The trace family is in the same registry, each with its line.
for id in trace.unknown_free trace.double_alloc trace.double_free trace.page_double_alloc; do
  grep -qE "^$id +trace: " "$tmp/out" || { echo "FAIL: mmfuzz checks lacks $id and its description"; fails=$((fails + 1)); }
done

expect 0 -- workload --small --ops 3000 --seed 5 --json "$tmp/v.json"
contains "$tmp/out" "verdict: clean"
contains "$tmp/v.json" '"verdict": "clean"'
expect 2 -- workload --small --checks nosuch.check
expect 2 -- workload --small --ops 0
expect 2 -- workload --small --ops 10 --json "$tmp/no/such/dir/v.json"
if ls "$tmp"/no 2>/dev/null | grep -q .; then echo "FAIL: partial output left behind"; fails=$((fails + 1)); fi
expect 0 -- workload --small --ops 500 --quiet
[ -s "$tmp/out" ] && { echo "FAIL: --quiet printed"; fails=$((fails + 1)); }
# The workload is a seeded Program: -o writes it, replay runs it to the same
# verdict, the same seed writes the same file, --no-run only writes it.
expect 0 -- workload --small --ops 3000 --seed 5 -o "$tmp/w1.trace" -q
contains "$tmp/w1.trace" "# mmfuzz program v2"
contains "$tmp/w1.trace" "# machine: small"
contains "$tmp/w1.trace" "mmfuzz_mempool_create:"
expect 0 -- workload --small --ops 3000 --seed 5 -o "$tmp/w2.trace" --no-run
contains "$tmp/out" "written to"
cmp -s "$tmp/w1.trace" "$tmp/w2.trace" || { echo "FAIL: one seed wrote two Programs"; fails=$((fails + 1)); }
expect 0 -- workload --small --ops 3000 --seed 6 -o "$tmp/w3.trace" --no-run
cmp -s "$tmp/w1.trace" "$tmp/w3.trace" && { echo "FAIL: two seeds wrote one Program"; fails=$((fails + 1)); }
expect 0 -- replay "$tmp/w1.trace"
contains "$tmp/out" "(mmfuzz program)"
contains "$tmp/out" "verdict: clean (0 violations)"
expect 2 -- workload --small --no-run
contains "$tmp/err" "--output"
expect 2 -- workload --small --ops 10 -o "$tmp/no/such/dir/w.trace"
expect 2 -- workload --small --checks nosuch.check -o "$tmp/w4.trace"
[ -e "$tmp/w4.trace" ] && { echo "FAIL: workload wrote a Program after a usage error"; fails=$((fails + 1)); }
expect 2 -- workload --small --plant nosuch_defect
# A failing workload leaves its Program (workload-seedN.trace without -o);
# replaying it with the same machine options gives the same verdict.
if "$MMFUZZ" info --small --plant buddy_skip_merge --view buddyinfo >/dev/null 2>&1; then
  cd "$tmp"
  expect 1 -- workload --small --ops 3000 --seed 9 --plant buddy_skip_merge
  cd - >/dev/null
  contains "$tmp/out" "buddy.coalesced"
  contains "$tmp/out" "reproduce with: mmfuzz replay workload-seed9.trace"
  grep '^verdict:' "$tmp/out" >"$tmp/verdict.workload"
  expect 1 -- replay "$tmp/workload-seed9.trace"
  grep '^verdict:' "$tmp/out" >"$tmp/verdict.replay"
  cmp -s "$tmp/verdict.workload" "$tmp/verdict.replay" ||
    { echo "FAIL: the replayed workload's verdict differs: $(cat "$tmp/verdict.replay")"; fails=$((fails + 1)); }
else
  echo "skip: built without MMFUZZ_PLANTED_DEFECTS"
fi

# ---- mmfuzz profile (cli/cmd_profile.cpp, analysis/workload_profile, analysis/kmem_stat) ----
traces="$(cd "$(dirname "$0")/../../corpus/traces" && pwd)"
real="$traces/arm64-6.1-boot-shell.trace.zst"
expect 2 -- profile "$tmp/no-such.trace" -o "$tmp/prof.json"
contains "$tmp/err" "no-such.trace"
[ -e "$tmp/prof.json" ] && { echo "FAIL: profile wrote output for a missing trace"; fails=$((fails + 1)); }
expect 2 -- profile "$real"
contains "$tmp/err" "--output"
expect 2 -- profile "$real" -o "$tmp/no/such/dir/prof.json"
contains "$tmp/err" "no/such/dir"
if ls "$tmp"/no "$tmp"/no/such/dir 2>/dev/null | grep -q .; then echo "FAIL: profile left a partial file"; fails=$((fails + 1)); fi
expect 2 -- profile "$real" -o "$tmp/prof.json" --top 0
expect 0 -- profile "$real" -o "$tmp/prof.json"
contains "$tmp/prof.json" '"format": "mmfuzz-profile-2"'
contains "$tmp/prof.json" '"mm_page_free_batched": 21015'
contains "$tmp/out" "423632 events"
contains "$tmp/out" "5784 kfree(NULL)"
ls "$tmp"/prof.json?* 2>/dev/null | grep -q . && { echo "FAIL: profile left a temporary file"; fails=$((fails + 1)); }
expect 0 -- profile "$real" -o "$tmp/prof2.json" --quiet
[ -s "$tmp/out" ] && { echo "FAIL: profile --quiet printed"; fails=$((fails + 1)); }
cmp -s "$tmp/prof.json" "$tmp/prof2.json" || { echo "FAIL: two profiles of one trace differ"; fails=$((fails + 1)); }
expect 0 -- profile "$real" -o "$tmp/prof3.json" --quiet --kmem-stat --top 5
contains "$tmp/out" "SUMMARY (SLAB allocator)"
contains "$tmp/out" "Total bytes requested: 155,332,246"
contains "$tmp/out" "Total free-only requests      :            5,968"
contains "$tmp/out" " Callsite                           | Total_alloc/Per | Total_req/Per   | Hit      | Ping-pong | Frag"
printf '  sh-1 [000] ..... 1.000000: kmalloc: call_site=f+0x1/0x2 ptr=zz bytes_req=8\n' >"$tmp/bad.trace"
expect 2 -- profile --strict "$tmp/bad.trace" -o "$tmp/bad.json"
contains "$tmp/err" "bad.trace:1:"
[ -e "$tmp/bad.json" ] && { echo "FAIL: profile --strict wrote output for a bad trace"; fails=$((fails + 1)); }
expect 0 -- profile "$tmp/bad.trace" -o "$tmp/bad.json"
contains "$tmp/out" "1 malformed lines skipped"
# ---- end mmfuzz profile ----

# ---- mmfuzz replay and convert (cli/cmd_replay.cpp, cli/cmd_convert.cpp) ----
tc="$traces/trace-cmd"
expect 0 -- replay --quiet
[ -s "$tmp/out" ] && { echo "FAIL: replay --quiet printed"; fails=$((fails + 1)); }
expect 0 -- replay --json "$tmp/r.json" --report "$tmp/report" --stat --top 3
contains "$tmp/out" "verdict: clean (0 violations)"
contains "$tmp/out" "kmalloc size class (bytes_alloc)"
contains "$tmp/out" "slabinfo - version: 2.1"
contains "$tmp/out" "Node 0, zone      DMA"
contains "$tmp/out" "SUMMARY (SLAB allocator)"
contains "$tmp/r.json" '"verdict": "clean"'
contains "$tmp/r.json" '"kfree_null": 5784'
contains "$tmp/report/index.html" "<svg"
expect 2 -- replay "$tmp/no-such.trace"
contains "$tmp/err" "no-such.trace"
expect 2 -- replay "$tmp"
expect 2 -- replay --check sometimes
expect 2 -- replay --checks nosuch.invariant
# Selections run on a small real trace (the whole one above is slow under ASan).
expect 0 -- replay --quiet --checks 'trace.*' "$tc/arm64-6.1-small.report.txt.zst"
expect 0 -- replay --quiet --checks 'all,-trace.*' "$tc/arm64-6.1-small.report.txt.zst"
expect 2 -- replay --checks 'trace.nosuch'
# A free of a pointer the trace never allocated, on purpose: under
# --strict-frees a trace.unknown_free finding, through the normal channel.
printf '  sh-1 [002] ..... 1.000000: kfree: call_site=g+0x1/0x2 ptr=ffff000001000040\n' >"$tmp/uf.trace"
expect 0 -- replay "$tmp/uf.trace"
expect 1 -- replay --strict-frees --json "$tmp/uf.json" "$tmp/uf.trace"
contains "$tmp/out" "BUG: trace: kfree() of 0xffff000001000040"
contains "$tmp/out" "at op #0, trace line 1: sh-1"
contains "$tmp/out" "verdict: VIOLATIONS (1 violation)"
contains "$tmp/uf.json" '"invariant": "trace.unknown_free"'
contains "$tmp/uf.json" '"signature": "trace.unknown_free|kfree|trace"'
contains "$tmp/uf.json" '"schema": "mmfuzz-verdict-1"'
expect 1 -- replay --quiet --strict-frees --checks trace.unknown_free "$tmp/uf.trace"
expect 0 -- replay --quiet --strict-frees --checks 'all,-trace.*' "$tmp/uf.trace"
head -c 300000 "$real" >"$tmp/cut.trace.zst"
expect 2 -- replay "$tmp/cut.trace.zst"
contains "$tmp/err" "truncated"
expect 2 -- replay --stat-sort bogus "$tmp/bad.trace"
expect 2 -- replay --strict "$tmp/bad.trace"
contains "$tmp/err" "bad.trace:1:"
# Malformed lines only: no kmem event to replay.
expect 2 -- replay "$tmp/bad.trace"
contains "$tmp/err" "no kmem events in"
cat "$tmp/bad.trace" >"$tmp/bad2.trace"
printf '  sh-1 [000] ..... 1.000001: kfree: call_site=f+0x1/0x2 ptr=0000000000000000\n' >>"$tmp/bad2.trace"
expect 0 -- replay "$tmp/bad2.trace"
contains "$tmp/out" "1 malformed"
expect 2 -- replay --json "$tmp/no/such/dir/r.json" "$tmp/bad.trace"
if ls "$tmp"/no 2>/dev/null | grep -q .; then echo "FAIL: replay left a partial file"; fails=$((fails + 1)); fi
# A double free in a hand-written trace: exit 1 with SLUB's report.
{
  echo '  sh-1 [000] ..... 1.000000: kmalloc: call_site=f+0x1/0x2 ptr=ffff000001000000 bytes_req=64 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false'
  echo '  sh-1 [000] ..... 1.000001: kfree: call_site=g+0x1/0x2 ptr=ffff000001000000'
  echo '  sh-1 [001] ..... 1.000002: kfree: call_site=h+0x1/0x2 ptr=ffff000001000000'
} >"$tmp/df.trace"
expect 1 -- replay "$tmp/df.trace"
contains "$tmp/out" "Object already free"
contains "$tmp/out" "trace line 3"
gzip -c "$tmp/df.trace" >"$tmp/df.trace.gz"
expect 1 -- replay --quiet "$tmp/df.trace.gz"
zstd -q -c "$tmp/df.trace" >"$tmp/df.bin"  # compression by magic, not extension
expect 1 -- replay --quiet "$tmp/df.bin"
if "$MMFUZZ" replay --quiet - <"$tmp/df.trace" >/dev/null 2>&1; then echo "FAIL: stdin replay missed the double free"; fails=$((fails + 1)); else echo "ok:   mmfuzz replay - <df.trace -> 1"; fi
expect 0 -- replay --quiet "$tc/arm64-6.1-small.trace.dat"
expect 0 -- replay --quiet "$tc/arm64-6.1-small.report.txt.zst"
expect 0 -- replay --quiet "$tc/arm64-6.1-perf-script-sample.txt.zst"
expect 2 -- convert "$real"
expect 2 -- convert "$tmp/no-such.trace" -o "$tmp/p.trace"
[ -e "$tmp/p.trace" ] && { echo "FAIL: convert wrote output for a missing trace"; fails=$((fails + 1)); }
expect 0 -- convert "$tmp/df.trace" -o "$tmp/p.trace"
contains "$tmp/p.trace" "# mmfuzz program v2"
contains "$tmp/p.trace" "# machine: qemu-virt"
expect 1 -- replay "$tmp/p.trace"
contains "$tmp/out" "(mmfuzz program)"
expect 0 -- convert "$real" -o "$tmp/seed.trace" --max-ops 2000 --quiet
expect 0 -- replay --quiet "$tmp/seed.trace"
# ---- end mmfuzz replay and convert ----

# ---- Program headers (program/header.cpp): the Program says how to run it ----
expect 0 -- convert --small --slab slob --cpus 4 "$tmp/df.trace" -o "$tmp/h.program"
contains "$tmp/h.program" "# machine: small"
contains "$tmp/h.program" "# slab: slob"
contains "$tmp/h.program" "# cpus: 4"
expect 1 -- replay --json "$tmp/h.json" "$tmp/h.program"
contains "$tmp/out" "machine small (16 MiB, 4 CPUs), slab slob"
contains "$tmp/out" "signature: slab.double_free|kfree|slab"
contains "$tmp/h.json" '"signature": "slab.double_free|kfree|slab"'
[ -s "$tmp/err" ] && { echo "FAIL: replay of a v2 program without flags printed on stderr"; fails=$((fails + 1)); }
# A flag over a value the header states: applied, one line on stderr each.
expect 1 -- replay --slab slab "$tmp/h.program"
contains "$tmp/err" "mmfuzz replay: --slab slab overrides the program's slab: slob"
contains "$tmp/out" "slab slab"
expect 1 -- replay --ram 32M --check full --checks 'slab.*' "$tmp/h.program"
contains "$tmp/err" "mmfuzz replay: --ram 32M overrides the program's ram: 16M"
contains "$tmp/err" "mmfuzz replay: --check full overrides the program's check: incremental"
contains "$tmp/err" "mmfuzz replay: --checks slab.* overrides the program's checks: all"
[ "$(wc -l <"$tmp/err")" = 3 ] || { echo "FAIL: want 3 override lines"; cat "$tmp/err"; fails=$((fails + 1)); }
expect 1 -- replay --machine "$tmp/good.machine" "$tmp/h.program"
contains "$tmp/err" "mmfuzz replay: --machine $tmp/good.machine overrides the program's machine: small"
contains "$tmp/out" "machine qemu-virt (512 MiB, 4 CPUs)"
# The same value is no override; a trace without a header has nothing to override.
expect 1 -- replay --slab slob "$tmp/h.program"
[ -s "$tmp/err" ] && { echo "FAIL: --slab equal to the header reported an override"; fails=$((fails + 1)); }
expect 1 -- replay --slab slab "$tmp/df.trace"
[ -s "$tmp/err" ] && { echo "FAIL: an override reported for a plain trace"; fails=$((fails + 1)); }
# The expected signatures (# expect:) are checked and reported.
sed 's/^# planted: none$/# planted: none\n# expect: slab.double_free|kfree|slab\n# expect: buddy.coalesced|free_pages|page_alloc/' "$tmp/h.program" >"$tmp/e.program"
expect 1 -- replay --json "$tmp/e.json" "$tmp/e.program"
contains "$tmp/out" "expected signature slab.double_free|kfree|slab: seen"
contains "$tmp/out" "expected signature buddy.coalesced|free_pages|page_alloc: NOT SEEN"
contains "$tmp/e.json" '"seen": false'
# Convert keeps a Program's header (and applies its flags).
expect 0 -- convert --cpus 3 "$tmp/e.program" -o "$tmp/e2.program"
contains "$tmp/e2.program" "# slab: slob"
contains "$tmp/e2.program" "# cpus: 3"
contains "$tmp/e2.program" "# expect: slab.double_free|kfree|slab"
# v1 and header-less Programs still read, with replay's defaults.
grep -v '^#' "$tmp/h.program" >"$tmp/ops.txt"
{ echo "# mmfuzz program v1"; cat "$tmp/ops.txt"; } >"$tmp/v1.program"
expect 1 -- replay "$tmp/v1.program"
contains "$tmp/out" "machine qemu-virt (1024 MiB, 2 CPUs), slab slub"
# Bad headers: one line on stderr, exit 2, naming what is wrong.
bad_header() {  # bad_header 'KEY: VALUE' TEXT-IN-ERROR
  { echo "# mmfuzz program v2"; printf '%b\n' "$1"; cat "$tmp/ops.txt"; } >"$tmp/bad.program"
  expect 2 -- replay "$tmp/bad.program"
  contains "$tmp/err" "$2"
}
bad_header "# profile: linux-4.4-x86" "unknown kernel profile"
bad_header "# slab: slub2" "unknown value 'slub2'"
bad_header "# machine: pdp11" "unknown value 'pdp11'"
bad_header "# checks: nosuch.invariant" "matches no invariant"
bad_header "# planted: no_such_bug" "unknown planted defect"
bad_header "# cpus: many" "cpus"
bad_header "# ram: 1X" "ram"
bad_header "# rodata: maybe" "rodata"
bad_header "# check: sometimes" "sometimes"
bad_header "# colour: blue" "unknown header key 'colour'"
bad_header "# slab: slob\n# slab: slub" "given twice"
bad_header "# machine_line: warp = 9" "warp"
{ echo "# mmfuzz program v9"; cat "$tmp/ops.txt"; } >"$tmp/bad.program"
expect 2 -- replay "$tmp/bad.program"
contains "$tmp/err" "v9"
# A planted defect boots only in a build with them (MMFUZZ_PLANTED_DEFECTS).
{ echo "# mmfuzz program v2"; echo "# planted: buddy_skip_merge"; cat "$tmp/ops.txt"; } >"$tmp/plant.program"
"$MMFUZZ" replay --quiet "$tmp/plant.program" >"$tmp/out" 2>"$tmp/err"
rc=$?
case $rc in
  2) contains "$tmp/err" "MMFUZZ_PLANTED_DEFECTS"
     [ "$(wc -l <"$tmp/err")" = 1 ] || { echo "FAIL: planted error not one line"; fails=$((fails + 1)); } ;;
  1) echo "ok:   planted program runs in this build" ;;
  *) echo "FAIL: planted program exited $rc"; fails=$((fails + 1)) ;;
esac
# ---- end Program headers ----

# ---- mmfuzz campaign (cli/cmd_campaign.cpp, ci/campaign.sh) ----
expect 0 -- campaign --help
contains "$tmp/out" "--engine"
contains "$tmp/out" "--expect"
expect 2 -- campaign --engine bogus
contains "$tmp/err" "--engine"
expect 2 -- campaign --targets slub,nosuch
contains "$tmp/err" "nosuch"
expect 2 -- campaign --time 0
expect 2 -- campaign --plant nosuch_defect
# Through to the script: its own one-line errors, exit 2, nothing written.
expect 2 -- campaign --no-build --corpus "$tmp/no-such-corpus" --out "$tmp/camp"
contains "$tmp/err" "no-such-corpus"
[ -e "$tmp/camp" ] && { echo "FAIL: campaign wrote output after a usage error"; fails=$((fails + 1)); }
expect 2 -- campaign --no-build --build-dir "$tmp" --targets slub --out "$tmp/camp"
contains "$tmp/err" "fuzz_slub"
MMFUZZ_SOURCE_DIR="$tmp" expect 2 -- campaign --targets slub
contains "$tmp/err" "campaign.sh"
# ---- end mmfuzz campaign ----

echo "$fails failure(s)"
[ "$fails" = 0 ]
