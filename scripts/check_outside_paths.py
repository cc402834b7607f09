#!/usr/bin/env python3
"""Fail when a tracked file names a path outside the repository.

Tests, benchmarks, scripts and docs may only read (or point readers at) what
the repository holds: a path that exists only on the machines where mmfuzz is
developed passes there and fails on a fresh clone. Flags absolute paths into
development directories and bare relative paths that start with ../ (paths in
this tree are written from the repository root; ${dir}/.. forms are fine). Exit 1 with one line per hit.
"""
import os
import re
import subprocess
import sys

# Absolute locations that are never part of a clone.
ABSOLUTE = re.compile(r"(?<![\w.~/-])/(?:work|home|root|Users|mnt|srv)/[\w.-]")
# A bare run of ../ followed by a name.
RELATIVE = re.compile(r"(?<![\w.~/-])((?:\.\./)+)[\w-]")
SKIP_SUFFIXES = (".zst", ".gz", ".dat", ".png", ".bin")


def tracked(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "-z"], check=True,
                         capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def scan(root, path):
    hits = []
    try:
        with open(os.path.join(root, path), "rb") as f:
            data = f.read()
    except OSError:
        return hits
    if b"\0" in data[:8192]:
        return hits
    text = data.decode("utf-8", "replace")
    for n, line in enumerate(text.splitlines(), 1):
        if ABSOLUTE.search(line):
            hits.append(f"{path}:{n}: {line.strip()}")
            continue
        if RELATIVE.search(line):
            hits.append(f"{path}:{n}: {line.strip()}")
    return hits


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    me = os.path.relpath(os.path.abspath(__file__), root)
    hits = []
    for path in tracked(root):
        if path == me or path.endswith(SKIP_SUFFIXES):
            continue
        hits += scan(root, path)
    for h in hits:
        print(f"outside the repository: {h}")
    if hits:
        print(f"check_outside_paths: {len(hits)} reference(s) to paths outside the repository",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
