#!/usr/bin/env bash
# mmfuzz replay as a live debugger (issue 16): on a pipe each finding prints
# as it happens, and SIGINT / SIGTERM end the reading with the summary, the
# --json and exit 1 if anything was found.
#   test_replay_live.sh MMFUZZ WORK_DIR
# 1. A FIFO held open by the test: kmalloc, kfree, kfree (a double free); the
#    finding shows on stdout while the pipe is still open; SIGINT; exit 1,
#    "interrupted after 3 events", the JSON says interrupted with 2 findings.
# 2. The same with one kmalloc and SIGTERM: exit 0, interrupted.
# 3. A plain pipe whose writer closes: EOF as usual, exit 1, not interrupted.
# Every wait has a timeout; leftovers are killed on exit.
set -u
mmfuzz=${1:?usage: test_replay_live.sh MMFUZZ WORK_DIR}
work=${2:?}
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

pid=
cleanup() {
  exec 3>&- 2>/dev/null
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -f "$work/live.fifo"
}
trap cleanup EXIT
# A reader that died must fail the checks below, not kill the test.
trap '' PIPE

P='            bash-100     [000] .....     1.'
ev() { printf '%s%06d: %s\n' "$P" "$1" "$2"; }
KMALLOC='kmalloc: call_site=foo+0x10/0x40 ptr=ffff1516c5000100 bytes_req=32 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1 accounted=false'
KFREE='kfree: call_site=bar+0x20/0x40 ptr=ffff1516c5000100'

# wait_for SECONDS CMD...: polls CMD every 0.1 s; false on timeout.
wait_for() {
  local n=$(($1 * 10))
  shift
  while [ $n -gt 0 ]; do
    "$@" && return 0
    sleep 0.1
    n=$((n - 1))
  done
  return 1
}
alive() { kill -0 "$pid" 2>/dev/null; }
dead() { ! alive; }

# check_json J INTERRUPTED NFINDINGS
check_json() {
  python3 - "$@" <<'EOF'
import json, sys
path, interrupted, n = sys.argv[1], sys.argv[2] == "true", int(sys.argv[3])
try:
    d = json.load(open(path))
except Exception as e:
    print(f"not JSON: {e}")
    sys.exit(1)
errs = []
if d.get("interrupted") is not interrupted:
    errs.append(f"interrupted is {d.get('interrupted')!r}, want {interrupted}")
if len(d.get("findings", [])) != n:
    errs.append(f"{len(d.get('findings', []))} findings, want {n}")
print("; ".join(errs))
sys.exit(1 if errs else 0)
EOF
}

# mmfuzz waits in a read of the empty pipe (it has read what was written).
blocked_on_pipe() {
  case "$(cat "/proc/$pid/wchan" 2>/dev/null)" in
    *pipe_read* | *pipe_wait*) return 0 ;;
  esac
  return 1
}

# live NAME SIGNAL WANT_RC WANT_FINDINGS EVENT...: writes the events into a
# FIFO mmfuzz reads as stdin, keeps it open, waits for the findings (if any)
# to print, sends SIGNAL and checks the exit, the summary and the JSON.
live() {
  local name=$1 sig=$2 want_rc=$3 nfind=$4
  shift 4
  local out="$work/$name.out" err="$work/$name.err" json="$work/$name.json"
  rm -f "$work/live.fifo" "$json" "$out"
  mkfifo "$work/live.fifo" || { fail "$name: mkfifo"; return; }
  # mmfuzz itself is the background job ($! is its pid): the redirections
  # open the FIFO in the child before it execs.
  "$mmfuzz" replay - --json "$json" <"$work/live.fifo" >"$out" 2>"$err" &
  pid=$!
  exec 3>"$work/live.fifo"
  local i=0 e
  for e in "$@"; do
    i=$((i + 1))
    ev $i "$e" >&3
  done
  if [ "$nfind" -gt 0 ]; then
    # The finding prints as it happens, while the pipe is still open.
    wait_for 20 grep -q 'trace\.double_free' "$out" ||
      fail "$name: no trace.double_free on stdout within 20 s of writing, pipe open: $(head -5 "$out")"
  else
    # Nothing prints: wait until it has read the events and blocks on the
    # empty pipe again (its wchan; a loaded machine boots the model slowly),
    # or, where /proc hides wchan, a few seconds.
    if [ -r "/proc/$pid/wchan" ] && [ "$(cat "/proc/$pid/wchan" 2>/dev/null)" != 0 ]; then
      wait_for 60 blocked_on_pipe || fail "$name: mmfuzz never blocked on the pipe within 60 s"
    else
      sleep 3
    fi
  fi
  alive || fail "$name: mmfuzz ended before the signal, with the pipe open"
  kill -s "$sig" "$pid" 2>/dev/null
  wait_for 20 dead || fail "$name: mmfuzz still running 20 s after SIG$sig"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid"
  local rc=$?
  pid=
  exec 3>&-
  rm -f "$work/live.fifo"
  [ $rc -eq "$want_rc" ] || fail "$name: exit $rc after SIG$sig, want $want_rc: $(cat "$err")"
  grep -Eq "^interrupted after $# events?:" "$out" || fail "$name: no 'interrupted after $# event(s)'"
  if [ "$nfind" -gt 0 ]; then
    grep -qF 'printed above as they happened' "$out" || fail "$name: no 'printed above as they happened'"
    grep -qx "verdict: VIOLATIONS ($nfind violations)" "$out" || fail "$name: verdict: $(grep '^verdict' "$out")"
  else
    grep -qx 'verdict: clean (0 violations)' "$out" || fail "$name: verdict: $(grep '^verdict' "$out")"
  fi
  [ -s "$json" ] || { fail "$name: no JSON written"; return; }
  local e2
  e2=$(check_json "$json" true "$nfind") || fail "$name: JSON: $e2"
}

live "sigint" INT 1 2 "$KMALLOC" "$KFREE" "$KFREE"
live "sigterm" TERM 0 0 "$KMALLOC"

# A plain pipe: the writer sleeps, then closes; EOF ends the replay.
out="$work/pipe.out"
rm -f "$work/pipe.json"
{
  ev 1 "$KMALLOC"
  ev 2 "$KFREE"
  ev 3 "$KFREE"
  sleep 1
} | timeout 60 "$mmfuzz" replay - --json "$work/pipe.json" >"$out" 2>"$work/pipe.err"
rc=$?
[ $rc -eq 1 ] || fail "pipe: exit $rc, want 1: $(cat "$work/pipe.err")"
! grep -q 'interrupted' "$out" || fail "pipe: says interrupted: $(grep interrupted "$out")"
grep -qx 'verdict: VIOLATIONS (2 violations)' "$out" || fail "pipe: verdict: $(grep '^verdict' "$out")"
grep -q '^signature: trace.double_free|kfree|trace$' "$out" || fail "pipe: no trace.double_free signature"
e2=$(check_json "$work/pipe.json" false 2) || fail "pipe: JSON: $e2"

[ $fails -eq 0 ] && echo "replay live: ok"
exit $((fails > 0))
