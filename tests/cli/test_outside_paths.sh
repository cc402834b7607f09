#!/usr/bin/env bash
# check_outside_paths.py must fire on a tracked file that names a path
# outside the repository, and pass on one that does not.
set -euo pipefail
py=$1 script=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$tmp" init -q
echo 'const char* p = "corpus/traces/x.zst";' >"$tmp/ok.cpp"
git -C "$tmp" add ok.cpp
"$py" "$script" "$tmp" >/dev/null || { echo "FAIL: clean tree flagged"; exit 1; }
# Built from pieces so that this file does not name them itself.
up=.. w=work h=home
for bad in "\"/$w/shared/traces/x\"" "\"$up/shared/traces/x\"" "\"/$h/dev/x\""; do
  echo "const char* p = $bad;" >"$tmp/bad.cpp"
  git -C "$tmp" add bad.cpp
  if "$py" "$script" "$tmp" >/dev/null 2>&1; then echo "FAIL: $bad not flagged"; exit 1; fi
done
echo "ok"
