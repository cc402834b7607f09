#!/usr/bin/env bash
# Renders an `mmfuzz replay --report DIR` report in headless Chromium and
# checks that every section made it into the DOM the browser built: a
# section the renderer dropped, or markup the browser could not parse, shows
# up here and not in a string search of the file. Run by hand or nightly;
# not part of `make test` (it needs a browser).
#
#   scripts/check_html_report.sh DIR|DIR/index.html
#   scripts/check_html_report.sh --replay [MMFUZZ [TRACE]]
#       replays TRACE (default: the bundled boot trace) with MMFUZZ (default:
#       build/default/bin/mmfuzz) into a temporary --report DIR, then checks it.
#
# Exit 0: every section is there; 1: one is missing (one line says which);
# 2: bad usage, no report, no browser.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "check_html_report: $2" >&2
  exit "$1"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "${1:-}" = "--replay" ]; then
  mmfuzz=${2:-build/default/bin/mmfuzz}
  trace=${3:-corpus/traces/arm64-6.1-boot-shell.trace.zst}
  [ -x "$mmfuzz" ] || die 2 "$mmfuzz missing: build it first (cmake --build build/default --target mmfuzz)"
  [ -r "$trace" ] || die 2 "cannot read trace $trace"
  # Exit 1 is a replay that found violations: the report is still written.
  rc=0
  "$mmfuzz" replay "$trace" --quiet --report "$tmp/report" || rc=$?
  [ "$rc" -le 1 ] || die 2 "mmfuzz replay $trace failed (exit $rc)"
  report=$tmp/report/index.html
else
  [ $# -eq 1 ] || die 2 "usage: check_html_report.sh DIR|DIR/index.html | --replay [MMFUZZ [TRACE]]"
  report=$1
  [ -d "$report" ] && report=$report/index.html
fi
[ -r "$report" ] || die 2 "no report at $report"

browser=
find_browser() {
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null; then
      browser=$b
      return 0
    fi
  done
  return 1
}
if ! find_browser; then
  # Debian's package; sudo only when not root.
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "check_html_report: installing chromium" >&2
  $sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null 2>&1 &&
      $sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } ||
    die 2 "chromium is not installed and apt-get could not install it"
  find_browser || die 2 "chromium installed but not on PATH"
fi

# --no-sandbox: containers and root, where Chromium's sandbox cannot start.
dom=$tmp/dom.html
"$browser" --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir="$tmp/profile" \
  --dump-dom "file://$(realpath "$report")" >"$dom" 2>"$tmp/browser.log" ||
  die 2 "$browser could not render $report: $(tail -n 1 "$tmp/browser.log")"
[ -s "$dom" ] || die 2 "$browser rendered nothing for $report"

# Every section, figure and table the report promises (analysis/html_report.h).
for id in summary timeline plot-1 plot-2 plot-3 plot-4 trace-markers kmem-stat top-callsites \
  live-callsites stat-tables violations fidelity final-state; do
  grep -q "id=\"$id\"" "$dom" || die 1 "section '$id' missing from the rendered $report"
done
# The four timeline plots are inline SVG the browser parsed as such.
svgs=$(grep -o '<svg' "$dom" | wc -l)
[ "$svgs" -ge 4 ] || die 1 "only $svgs <svg> plots in the rendered $report (want at least 4)"
echo "check_html_report: $report: all sections present ($svgs plots)"
