#!/usr/bin/env bash
# check_one_way_in.py must fire on a front end that calls the model's
# allocation API or the CheckEngine, and pass on one that only reads state.
set -euo pipefail
py=$1 script=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/cli" "$tmp/props" "$tmp/fuzz"
echo 'auto n = m.page_alloc.max_order();  // a read' >"$tmp/cli/ok.cpp"
"$py" "$script" "$tmp" >/dev/null || { echo "FAIL: a read was flagged"; exit 1; }
for bad in 'auto p = m.slab.kmalloc(64, GFP_KERNEL);' 'inv::CheckEngine e(m);' 'mm->page_alloc.__free_pages(p, 0);'; do
  echo "$bad" >"$tmp/props/bad.cpp"
  if "$py" "$script" "$tmp" >/dev/null; then echo "FAIL: '$bad' not flagged"; exit 1; fi
done
echo "ok"
