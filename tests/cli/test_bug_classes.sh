#!/usr/bin/env bash
# mmfuzz replay as a debugger (issue 16): every bug class a kmem trace shows
# is found, with one event injected into the bundled real trace and in a tiny
# hand-written trace: exit 1, the expected signature, and a report whose
# "Allocated by" / "Freed by" / "The faulting op" blocks name the trace lines
# of the allocation, the earlier free and the faulting event (stdout and
# --json).
#   test_bug_classes.sh MMFUZZ SOURCE_DIR WORK_DIR CASE
# CASE double_kfree | wrong_cache | double_alloc | unknown_free | wrong_order |
#   compound_order | invalid_order | kmalloc_too_large: that class, injected
#   by tests/cli/inject_bug.py, then hand-written.
# CASE leak: --leaks lists the objects still allocated (kmemleak style).
# CASE clean: the bundled trace and a tiny clean trace replay with exit 0.
# CASE garbage: inputs with no kmem events exit 2 with one line; an unwritable
#   --json path exits 2 before reading.
set -u
mmfuzz=${1:?usage: test_bug_classes.sh MMFUZZ SOURCE_DIR WORK_DIR CASE}
src=${2:?}
work=${3:?}
case=${4:?}
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The signature lines a replay of CASE prints, sorted.
expect_sigs() {
  case $1 in
  double_kfree) printf '%s\n' 'slab.double_free|kfree|slab' 'trace.double_free|kfree|trace' ;;
  wrong_cache) echo 'slab.wrong_cache|kmem_cache_free|slab' ;;
  double_alloc) echo 'trace.double_alloc|kmalloc|trace' ;;
  unknown_free) echo 'trace.unknown_free|kfree|trace' ;;
  wrong_order | compound_order) echo 'page_alloc.wrong_order|free_pages|page_alloc' ;;
  invalid_order) echo 'trace.invalid|alloc_pages|trace' ;;
  kmalloc_too_large) echo 'trace.invalid|kmalloc|trace' ;;
  esac
}
# The signature of the finding at the faulting line.
main_sig() { expect_sigs "$1" | grep '^trace\.' || expect_sigs "$1"; }

opts_for() {
  case $1 in
  unknown_free) echo --strict-frees ;;
  leak) echo --leaks ;;
  esac
}

# in_block OUT HEADER LINE: a block of OUT starting with HEADER (up to the
# next empty line) names "trace line LINE:".
in_block() {
  awk -v h="$2" -v n="trace line $3:" '
    index($0, h) == 1 { inb = 1; next }
    $0 == "" { inb = 0 }
    inb && index($0, n) { found = 1 }
    END { exit !found }' "$1"
}

# check_json JSON SIG ALLOC FREE FAULT NFINDINGS: the finding with SIG at
# trace line FAULT has target.allocated.line ALLOC and target.freed.line FREE
# (null when 0); NFINDINGS findings in all ('-': any).
check_json() {
  python3 - "$@" <<'EOF'
import json, sys
path, sig, alloc, free, fault, n = sys.argv[1:7]
alloc, free, fault = int(alloc), int(free), int(fault)
errs = []
try:
    d = json.load(open(path))
except Exception as e:
    print(f"{path}: not JSON: {e}")
    sys.exit(1)
if sig not in d.get("signatures", []):
    errs.append(f"signatures {d.get('signatures')} lack {sig}")
if d.get("interrupted") is not False:
    errs.append(f"interrupted is {d.get('interrupted')!r}, want false")
fs = [f for f in d.get("findings", [])
      if f.get("signature") == sig and (f.get("op") or {}).get("line") == fault]
if len(fs) != 1:
    errs.append(f"{len(fs)} findings {sig} at op.line {fault}, want 1")
else:
    t = fs[0].get("target") or {}
    for key, want in (("allocated", alloc), ("freed", free)):
        got = (t.get(key) or {}).get("line", 0)
        if got != want:
            errs.append(f"target.{key}.line {got}, want {want}")
if n != "-" and len(d.get("findings", [])) != int(n):
    errs.append(f"{len(d.get('findings', []))} findings, want {n}")
print("; ".join(errs))
sys.exit(1 if errs else 0)
EOF
}

split_pages() { grep -o 'split_page [0-9]*' "$1" | head -1; }

# found WHAT KIND TRACE ALLOC FREE FAULT NFINDINGS: replaying TRACE finds
# KIND and the report names the lines.
found() {
  local what=$1 kind=$2 trace=$3 alloc=$4 free=$5 fault=$6 n=$7
  local f="$work/${what// /_}"
  local out="$f.out" json="$f.json" sig
  sig=$(main_sig "$kind")
  rm -f "$json"
  # shellcheck disable=SC2046
  "$mmfuzz" replay "$trace" $(opts_for "$kind") --json "$json" >"$out" 2>"$f.err"
  local rc=$?
  [ $rc -eq 1 ] || { fail "$what: exit $rc, want 1: $(head -3 "$f.err")"; return; }
  local got want
  got=$(grep '^signature: ' "$out" | sed 's/^signature: //' | sort -u)
  want=$(expect_sigs "$kind" | sort)
  [ "$got" = "$want" ] || fail "$what: signatures [$got], want [$want]"
  if [ "$alloc" -gt 0 ]; then
    in_block "$out" "Allocated by task " "$alloc" || fail "$what: no 'Allocated by' block naming trace line $alloc"
  else
    ! grep -q '^Allocated by' "$out" || fail "$what: an 'Allocated by' block, want none"
  fi
  if [ "$free" -gt 0 ]; then
    in_block "$out" "Freed by task " "$free" || fail "$what: no 'Freed by' block naming trace line $free"
  else
    ! grep -q '^Freed by' "$out" || fail "$what: a 'Freed by' block, want none"
  fi
  in_block "$out" "The faulting op, by task " "$fault" ||
    fail "$what: no 'The faulting op' block naming trace line $fault"
  # The trace's own text of the faulting line, as the file has it.
  local raw
  raw=$(sed -n "${fault}p" "$trace" | sed 's/^ *//')
  grep -qF "trace line $fault: $raw" "$out" || fail "$what: trace line $fault not quoted as the trace has it: $raw"
  local err
  err=$(check_json "$json" "$sig" "$alloc" "$free" "$fault" "$n") || fail "$what: JSON: $err"
}

# clean WHAT TRACE [OPTS...]: exit 0, no findings.
clean() {
  local what=$1 trace=$2 f="$work/${1// /_}"
  shift 2
  "$mmfuzz" replay "$trace" "$@" --json "$f.json" >"$f.out" 2>"$f.err"
  local rc=$?
  [ $rc -eq 0 ] || fail "$what: exit $rc, want 0: $(grep -h -m3 '^signature\|error' "$f.out" "$f.err")"
  grep -qx 'verdict: clean (0 violations)' "$f.out" || fail "$what: verdict is not clean"
  ! grep -q '^signature: ' "$f.out" || fail "$what: prints a signature"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(len(d["findings"]) != 0)' \
    "$f.json" 2>/dev/null || fail "$what: JSON missing or has findings"
}

# A tiny trace: each argument is one event, at 1.000001 s, 1.000002 s, ...
P='            bash-100     [000] .....     1.'
tiny() {
  local i=0 e
  for e in "$@"; do
    i=$((i + 1))
    printf '%s%06d: %s\n' "$P" "$i" "$e"
  done
}
KMALLOC='kmalloc: call_site=foo+0x10/0x40 ptr=ffff1516c5000100 bytes_req=32 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false'
KFREE='kfree: call_site=bar+0x20/0x40 ptr=ffff1516c5000100'
page_alloc() { echo "mm_page_alloc: page=fffffc545b140000 pfn=0x45000 order=$1 migratetype=0 gfp_flags=$2"; }
page_free() { echo "mm_page_free: page=fffffc545b140000 pfn=0x45000 order=$1"; }

# The hand-written trace of KIND, and its lines as "alloc free fault".
tiny_trace() {
  case $1 in
  double_kfree) tiny "$KMALLOC" "$KFREE" "$KFREE" ;;
  wrong_cache)
    # kmem_cache_alloc with name= (6.2's format): both caches known by name.
    tiny 'kmem_cache_alloc: call_site=getname_flags.part.0+0x3c/0x1a0 ptr=ffff1516c5001000 name=names_cache bytes_req=4096 bytes_alloc=4096 gfp_flags=GFP_KERNEL node=-1 accounted=false' \
      'kmem_cache_alloc: call_site=__alloc_file+0x34/0x100 ptr=ffff1516c5002000 name=filp bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=true' \
      'kmem_cache_free: call_site=putname+0xa4/0xc0 ptr=ffff1516c5001000 name=filp' ;;
  double_alloc) tiny "$KMALLOC" "$KMALLOC" "$KFREE" ;;
  unknown_free) tiny "$KMALLOC" "$KFREE" 'kfree: call_site=bar+0x20/0x40 ptr=ffff1516deadbe00' ;;
  wrong_order) tiny "$(page_alloc 0 GFP_KERNEL)" "$(page_free 2)" ;;
  compound_order) tiny "$(page_alloc 2 'GFP_KERNEL|__GFP_COMP')" "$(page_free 0)" ;;
  compound_order.base) tiny "$(page_alloc 2 'GFP_KERNEL|__GFP_COMP')" "$(page_free 2)" ;;
  invalid_order) tiny "$(page_alloc 99 GFP_KERNEL)" ;;
  kmalloc_too_large) tiny 'kmalloc: call_site=foo+0x10/0x40 ptr=ffff1516c5000000 bytes_req=8388608 bytes_alloc=8388608 gfp_flags=GFP_KERNEL node=-1 accounted=false' ;;
  leak) tiny "$KMALLOC" ;;
  clean) tiny "$KMALLOC" "$KFREE" "$(page_alloc 0 GFP_KERNEL)" "$(page_free 0)" ;;
  esac
}
tiny_lines() {
  case $1 in
  double_kfree) echo 1 2 3 ;;
  wrong_cache) echo 1 0 3 ;;
  double_alloc) echo 1 0 2 ;;
  unknown_free) echo 0 0 3 ;;
  wrong_order | compound_order) echo 1 0 2 ;;
  invalid_order | kmalloc_too_large) echo 0 0 1 ;;
  esac
}
# Findings in all: the bundled trace's ('-' when it holds others of the
# class) and the tiny trace's.
nfindings() {
  case $1 in
  double_kfree) echo 2 ;;
  unknown_free) echo - ;;
  *) echo 1 ;;
  esac
}

base="$work/base.trace"
unpack() { zstdcat "$src/corpus/traces/arm64-6.1-boot-shell.trace.zst" >"$base" || exit 2; }

case $case in
garbage)
  # bad WHAT FILE [OPTS...]: exit 2, one stderr line (containing PATTERN
  # unless it is empty), nothing on stdout.
  bad() {
    local what=$1 pattern=$2 file=$3
    shift 3
    timeout 60 "$mmfuzz" replay "$file" "$@" >"$work/g.out" 2>"$work/g.err"
    local rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, want 2"
    [ "$(wc -l <"$work/g.err")" -eq 1 ] || fail "$what: stderr is not one line: $(head -5 "$work/g.err")"
    [ -z "$pattern" ] || grep -qF -- "$pattern" "$work/g.err" || fail "$what: stderr lacks '$pattern': $(cat "$work/g.err")"
    [ ! -s "$work/g.out" ] || fail "$what: printed on stdout: $(head -3 "$work/g.out")"
  }
  : >"$work/empty.trace"
  bad "empty file" "no kmem events in" "$work/empty.trace"
  head -c 102400 /dev/urandom >"$work/random.bin"
  bad "100 KB of random bytes" "no kmem events in" "$work/random.bin"
  bad "random bytes with --strict" "no kmem events in" "$work/random.bin" --strict
  head -c 102400 /dev/urandom >"$work/x.trace.zst"
  bad "random bytes named x.trace.zst" "" "$work/x.trace.zst"
  # --json into a missing directory: exit 2 before reading. The trace is a
  # FIFO nobody writes: reading it would block until the timeout.
  rm -f "$work/never.fifo"
  mkfifo "$work/never.fifo"
  t0=$(date +%s%N)
  bad "--json /nonexistent/dir/x.json" "--json" "$work/never.fifo" --json /nonexistent/dir/x.json
  ms=$((($(date +%s%N) - t0) / 1000000))
  [ $ms -lt 5000 ] || fail "--json /nonexistent/dir/x.json: returned after $ms ms, before reading is well under 5 s"
  [ ! -e /nonexistent/dir/x.json ] || fail "--json /nonexistent/dir/x.json: wrote it"
  rm -f "$work/never.fifo" "$work/random.bin" "$work/x.trace.zst"
  [ $fails -eq 0 ] && echo "replay garbage: ok (the unwritable --json returned in $ms ms)"
  exit $((fails > 0))
  ;;
clean)
  unpack
  clean "bundled clean" "$base"
  tiny_trace clean >"$work/tiny.trace"
  clean "tiny clean" "$work/tiny.trace"
  rm -f "$base"
  [ $fails -eq 0 ] && echo "replay clean: ok"
  exit $((fails > 0))
  ;;
leak)
  leaked() {
    local what=$1 trace=$2 f="$work/${1// /_}"
    "$mmfuzz" replay "$trace" --leaks --json "$f.json" >"$f.out" 2>"$f.err"
    local rc=$?
    [ $rc -eq 1 ] || fail "$what: exit $rc, want 1"
    grep -q '^signature: slab\.leak|' "$f.out" || fail "$what: no slab.leak signature"
    grep -q '^unreferenced: ' "$f.out" || fail "$what: no 'unreferenced: ' line"
    grep -q '^  first: op #[0-9]*, trace line [0-9]*: ' "$f.out" ||
      fail "$what: no 'first: op #N, trace line M' line"
    python3 - "$f.json" 2>/dev/null <<'EOF' || fail "$what: JSON has no slab.leak finding naming trace lines"
import json, sys
d = json.load(open(sys.argv[1]))
fs = [f for f in d["findings"] if f["invariant"] == "slab.leak"]
sys.exit(not (len(fs) == 1 and any(s.startswith("slab.leak|") for s in d["signatures"])
              and any("trace line" in x for x in fs[0]["details"])))
EOF
  }
  unpack
  leaked "bundled leak" "$base"
  # Without --leaks the same trace is clean.
  clean "bundled no --leaks" "$base"
  tiny_trace leak >"$work/tiny.trace"
  leaked "tiny leak" "$work/tiny.trace"
  grep -q '^  first: op #0, trace line 1: .*ptr=ffff1516c5000100' "$work/tiny_leak.out" ||
    fail "tiny leak: the first allocation is not trace line 1"
  rm -f "$base"
  [ $fails -eq 0 ] && echo "replay leak: ok"
  exit $((fails > 0))
  ;;
esac

[ -n "$(expect_sigs "$case")" ] || { echo "unknown case $case"; exit 2; }

# The bundled trace with the bug injected near its end.
unpack
lines=$(python3 "$src/tests/cli/inject_bug.py" "$base" "$case" "$work/$case.trace" --lines) || exit 2
eval "$lines" # alloc=N free=M fault=K
echo "injected $case: alloc=$alloc free=$free fault=$fault"
found "bundled $case" "$case" "$work/$case.trace" "$alloc" "$free" "$fault" "$(nfindings "$case")"
if [ "$case" = unknown_free ]; then
  clean "bundled $case without --strict-frees" "$work/$case.trace"
fi
if [ "$case" = compound_order ]; then
  # One report and no split_page the trace never did.
  clean "bundled unmodified" "$base"
  a=$(split_pages "$work/bundled_unmodified.out")
  b=$(split_pages "$work/bundled_$case.out")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "bundled $case: trace view '$b', unmodified '$a'"
fi
rm -f "$base" "$work/$case.trace"

# The same class in a hand-written trace.
tiny_trace "$case" >"$work/tiny.trace"
read -r alloc free fault <<<"$(tiny_lines "$case")"
found "tiny $case" "$case" "$work/tiny.trace" "$alloc" "$free" "$fault" \
  "$([ "$case" = double_kfree ] && echo 2 || echo 1)"
if [ "$case" = unknown_free ]; then
  clean "tiny $case without --strict-frees" "$work/tiny.trace"
fi
if [ "$case" = compound_order ]; then
  tiny_trace compound_order.base >"$work/tiny.base.trace"
  clean "tiny unmodified" "$work/tiny.base.trace"
  a=$(split_pages "$work/tiny_unmodified.out")
  b=$(split_pages "$work/tiny_$case.out")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "tiny $case: trace view '$b', unmodified '$a'"
fi

[ $fails -eq 0 ] && echo "replay $case: ok"
exit $((fails > 0))
