#!/usr/bin/env python3
"""Fail when a front end (cli/, props/, fuzz/) drives the model or the
checkers itself instead of going through the Executor.

Front ends make Programs; only the Executor (program/) calls the model's
allocation API and owns a CheckEngine. Front ends may still read the model's
state (sizes, views, translations) for display and post-conditions: those
accessors are listed in READS. Exit 1 with one line per offending call.
"""
import pathlib
import re
import sys

FRONT_ENDS = ("cli", "props", "fuzz", "shrink")
# m.slab.kmalloc(...), mm().page_alloc.alloc_pages(...), x->vmalloc.vfree(...)
CALL = re.compile(r"(?:\.|->)(slab|page_alloc|vmalloc|mempools|pgtable)(?:\.|->)(\w+)\s*\(")
ENGINE = re.compile(r"\bCheckEngine\b")
READS = {
    "max_order", "initialized", "kmalloc_max_cache_size", "kmem_cache_size", "find_cache",
    "busy", "free_ranges", "device_at", "translate", "find_vm_area", "is_vmalloc_addr",
    "purge_list", "slabinfo", "cache", "caches", "zone_names",
}


def scan(root):
    hits = []
    for d in FRONT_ENDS:
        for path in sorted((root / d).rglob("*")):
            if path.suffix not in (".cpp", ".h", ".cc", ".hpp"):
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                code = line.split("//", 1)[0]
                rel = path.relative_to(root)
                if ENGINE.search(code):
                    hits.append(f"{rel}:{n}: uses the CheckEngine: {line.strip()}")
                for m in CALL.finditer(code):
                    if m.group(2) not in READS:
                        hits.append(f"{rel}:{n}: calls {m.group(1)}.{m.group(2)}(): {line.strip()}")
    return hits


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    hits = scan(root)
    for h in hits:
        print(f"not through the Executor: {h}")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
