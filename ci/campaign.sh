#!/usr/bin/env bash
# Fuzz campaign front end: builds what is missing, fuzzes every target in
# parallel, merges the corpus, deduplicates and minimizes crashes, and writes
# summary.md, junit.xml and results.sarif. The work is done by campaign.py;
# `ci/campaign.sh --help` lists the flags. Exit: 0 clean, 1 new violation
# (with --expect: the expected one not found), 2 usage/build error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v python3 >/dev/null 2>&1; then
  echo "campaign: error: python3 not found (scripts/deps.sh installs it)" >&2
  exit 2
fi
exec python3 "$here/campaign.py" "$@"
