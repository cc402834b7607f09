#!/usr/bin/env bash
# The mmfuzz command's contract: exit 0 ok, 1 violations, 2 bad usage or
# input with exactly one line on stderr; never a crash or a partial file.
set -u
MMFUZZ=${1:?usage: test_cli.sh path/to/mmfuzz}
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

expect 0 -- workload --small --ops 3000 --seed 5 --json "$tmp/v.json"
contains "$tmp/out" "verdict: clean"
contains "$tmp/v.json" '"verdict": "clean"'
expect 2 -- workload --small --checks nosuch.check
expect 2 -- workload --small --ops 0
expect 2 -- workload --small --ops 10 --json "$tmp/no/such/dir/v.json"
if ls "$tmp"/no 2>/dev/null | grep -q .; then echo "FAIL: partial output left behind"; fails=$((fails + 1)); fi
expect 0 -- workload --small --ops 500 --quiet
[ -s "$tmp/out" ] && { echo "FAIL: --quiet printed"; fails=$((fails + 1)); }

echo "$fails failure(s)"
[ "$fails" = 0 ]
