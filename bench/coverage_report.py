#!/usr/bin/env python3
"""docs/coverage.md from two `llvm-cov export` JSON files (bench/coverage.sh):
the campaign corpus as found (ALL) and the same inputs on the 16 MiB
single-zone machine only (FUZZ_ONLY).

    coverage_report.py ALL.json FUZZ_ONLY.json --command CMD --seconds S
                       --inputs N --on-machines M
"""
import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict

# Why whole files are out of a fuzz campaign's reach: the model's parts that
# only boot, print or snapshot run there once or not at all.
FILE_REASONS = {
    "mm/procfs/": "the /proc views: printed by `mmfuzz info`, replay reports and tests, never by a fuzz input",
    "mm/snapshot.cpp": "snapshots are taken once per harness at boot, restored by every input (restore paths are reached)",
    "mm/planted.cpp": "planted defects are off in this build (the unmodified model)",
    "mm/profile.cpp": "kernel profiles: one is chosen at boot",
}


# Why single functions are not reached: (pattern in the short name, why).
# The first match wins; unmatched ones are listed as not yet explained.
FUNC_REASONS = [
    (r"purge_vmap_area_lazy",
     "gap: the lazy purge needs lazy_max_pages() pages freed lazily; the vmalloc targets "
     "scale it to 32 (`lazy_max_pages` in their header), so this should not be listed: "
     "check that the scaled threshold still reaches the Program header"),
    (r"reserve_highatomic_pageblock",
     "gap: needs an order > 0 ALLOC_HARDER (GFP_ATOMIC) allocation to succeed in the slow "
     "path, with the zone already at its low watermark: the tables' GFP_ATOMIC, order 9-10 "
     "and 1-4 MiB kmalloc rows reached it in 60 s campaigns, not every time (the `pressure` "
     "properties reach it with their ballast: docs/properties.md)"),
    (r"^~|::~", "destructors: the harness's models live as long as the process"),
    (r"parse_|_name$|name$|format_|display_name|finding_line|slabinfo|load_machine_file|"
     r"read_machine_file|apply_machine_line|validate_machine|capture_iomem|list_name|"
     r"MachineLine::operator==",
     "text in or out: the CLI, replay and reports use it, a fuzz input's ops do not"),
    (r"kcalloc|kmem_cache_zalloc|kmemdup|kstrdup|__get_free_page|alloc_page$|get_zeroed_page|"
     r"__free_page$|kvzalloc|kvmalloc$|__vmalloc|vmalloc_to_page|find_vm_area|"
     r"mempool_create_\w+_pool|::fill$|SlabAllocator::kmalloc|SlabAllocator::kfree",
     "a wrapper no Op calls: the Ops call what it wraps (docs/program-format.md lists them)"),
    (r"MmObserver::|Mm::notify|Mm::events|VmEvents::operator",
     "observer hooks and counters no fuzz harness subscribes to (replay and props do)"),
    (r"length|nr_heads|nr_list_heads|list_length|dirty_pages|page_bytes|page_dirty|written_pages|"
     r"for_each|nr_present_sections|nr_section_roots|sections_per_root|boot_tables|"
     r"nr_boot_tables|kmap_counts|kmap_stack|orphans|objects_per_page|minalign|kernel_va",
     "accessors for checkers, /proc views and tests, not on an op's path"),
]


def func_reason(name):
    import re
    for pat, why in FUNC_REASONS:
        if re.search(pat, name):
            return why
    return None


def load(path):
    try:
        with open(path) as f:
            d = json.load(f)["data"][0]
    except (OSError, ValueError, KeyError, IndexError) as e:
        sys.exit(f"coverage_report: {path}: {e}")
    files = {}
    for fi in d["files"]:
        name = rel(fi["filename"])
        if name.startswith("mm/"):
            files[name] = fi["summary"]
    funcs = defaultdict(int)  # (file, mangled name) -> max count over the targets
    for fn in d["functions"]:
        fname = rel(fn["filenames"][0]) if fn.get("filenames") else ""
        if fname.startswith("mm/"):
            key = (fname, fn["name"])
            funcs[key] = max(funcs[key], fn["count"])
    return files, funcs


def rel(path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/"
    path = os.path.normpath(path)
    return path[len(root):] if path.startswith(root) else path


def group(name):
    parts = name.split("/")
    return "/".join(parts[:2]) + "/" if len(parts) > 2 else name


def pct(c, n):
    return f"{100.0 * c / n:.1f} %" if n else "—"


def totals(files, by):
    t = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for name, s in files.items():
        for kind in ("lines", "branches", "functions"):
            t[by(name)][kind][0] += s[kind]["covered"]
            t[by(name)][kind][1] += s[kind]["count"]
    return t


def demangle(names):
    if not names:
        return {}
    bare = [n.split(":", 1)[1] if ":" in n and not n.startswith("_Z") else n for n in names]
    try:
        out = subprocess.run(["c++filt"], input="\n".join(bare), capture_output=True, text=True,
                             check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        out = bare
    return dict(zip(names, out))


def short(sig):
    # "mmfuzz::mm::PageAlloc::foo(unsigned long, ...)" -> "PageAlloc::foo"
    s = sig.split("(", 1)[0]
    for p in ("mmfuzz::mm::", "(anonymous namespace)::"):
        s = s.replace(p, "")
    return s


def reason(fname):
    for prefix, why in FILE_REASONS.items():
        if fname.startswith(prefix):
            return why
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("all")
    ap.add_argument("fuzz_only")
    ap.add_argument("--command", required=True)
    ap.add_argument("--seconds", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--on-machines", required=True)
    a = ap.parse_args()
    files, funcs = load(a.all)
    files0, funcs0 = load(a.fuzz_only)
    t, t0 = totals(files, group), totals(files0, group)
    all_t, all_t0 = totals(files, lambda n: "mm/"), totals(files0, lambda n: "mm/")

    o = []
    o.append("# What a fuzz campaign reaches of the model")
    o.append("")
    o.append("<!-- Generated by bench/coverage.sh (bench/coverage_report.py). Do not edit by hand. -->")
    o.append("")
    o.append(f"`{a.command}`: a libFuzzer campaign of {a.seconds} s over the six model targets "
             "(page_alloc, slub, slab, slob, vm, mm; equal shares, seed 1, from corpus/seeds/), "
             "then its corpus replayed once by a build with clang's source-based coverage "
             "(preset `coverage`, the unmodified model). The column *fuzz machine only* "
             "replays the same inputs with their machine prefix cut (docs/fuzzing.md, "
             "\"Machines\"): what the 16 MiB single-zone machine alone reaches. "
             f"{a.inputs} corpus inputs, {a.on_machines} of them on another machine.")
    o.append("")
    o.append("| mm/ | lines | branches | functions | lines, fuzz machine only | branches, fuzz machine only |")
    o.append("|---|---:|---:|---:|---:|---:|")
    for g in sorted(t) + ["mm/"]:
        s = all_t["mm/"] if g == "mm/" else t[g]
        s0 = all_t0["mm/"] if g == "mm/" else t0.get(g, defaultdict(lambda: [0, 0]))
        label = "**all of mm/**" if g == "mm/" else f"`{g}`"
        o.append(f"| {label} | {pct(*s['lines'])} | {pct(*s['branches'])} | {pct(*s['functions'])} "
                 f"| {pct(*s0['lines'])} | {pct(*s0['branches'])} |")
    o.append("")

    gained = sorted(k for k, c in funcs.items() if c and not funcs0.get(k))
    never = sorted(k for k, c in funcs.items() if not c)
    names = demangle(sorted({k[1] for k in gained + never}))

    o.append("## Reached only on the other machines")
    o.append("")
    o.append(f"{len(gained)} functions run only when inputs choose zones, NUMA nodes or CMA:")
    o.append("")
    for fname, n in gained:
        o.append(f"- `{fname}`: `{short(names.get(n, n))}`")
    o.append("")
    o.append("## Never reached")
    o.append("")
    o.append(f"{len(never)} functions of mm/ ran in no corpus input. Whole files first, "
             "with why; then the rest by file.")
    o.append("")
    by_file = defaultdict(list)
    for fname, n in never:
        by_file[fname].append(short(names.get(n, n)))
    explained = {f: v for f, v in by_file.items() if reason(f)}
    for fname in sorted(explained):
        o.append(f"- `{fname}` ({len(explained[fname])}): {reason(fname)}")
    o.append("")
    by_why = defaultdict(list)
    for fname in sorted(set(by_file) - set(explained)):
        for f in sorted(set(by_file[fname])):
            by_why[func_reason(f) or "not yet explained"].append(f"`{f}` ({fname})")
    o.append("| why | functions never reached |")
    o.append("|---|---|")
    for why in sorted(by_why, key=lambda w: (w == "not yet explained", not w.startswith("gap"), w)):
        o.append(f"| {why} | {', '.join(by_why[why])} |")
    print("\n".join(o))


if __name__ == "__main__":
    main()
