#!/usr/bin/env python3
"""Writes a trace with one bug inserted near its end, for the shrinker's
tests and benchmark:

    inject_bug.py BASE.trace KIND OUT.trace [REPEAT]

KIND: double_kfree (a kfree repeated), wrong_cache (a kmem_cache_free of a
names_cache object sent to filp), redzone (a client write just past a
kmalloc object's requested size), wrong_order (an order-0 page freed as
order 2). REPEAT > 1 first repeats the trace's event lines that many times
(timestamps shifted), the bug then goes near the end of the last copy.
"""
import re
import sys


def events(lines):
    return [i for i, l in enumerate(lines) if not l.startswith("#")]


def last(lines, pat, before):
    rx = re.compile(pat)
    for i in range(before, 0, -1):
        if rx.search(lines[i]):
            return i
    sys.exit(f"inject_bug: no line matches {pat}")


TS = re.compile(r"(\]\s+\S+\s+)(\d+\.\d+)(:)")


PTR = re.compile(r"\b(ptr|addr)=([0-9a-f]{16})\b")
PFN = re.compile(r"\bpfn=0x([0-9a-f]+)\b")


def moved(line, k):
    """Copy k of a line: its pointers and pfns moved by k TiB of physical
    memory (ptr - PA stays the linear-map offset), so that no copy frees or
    reuses another copy's objects."""
    def ptr(m):
        v = int(m.group(2), 16)
        return m.group(0) if v == 0 else f"{m.group(1)}={(v + (k << 40)) % (1 << 64):016x}"
    line = PTR.sub(ptr, line)
    return PFN.sub(lambda m: f"pfn={int(m.group(1), 16) + (k << 28):#x}", line)


def repeated(lines, n):
    head = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if not l.startswith("#") and l]
    m = TS.search(body[-1])
    span = float(m.group(2)) + 1.0 if m else 0.0
    out = list(head)
    for k in range(n):
        if k == 0:
            out += body
            continue
        shift = span * k
        out += [moved(TS.sub(lambda m: f"{m.group(1)}{float(m.group(2)) + shift:.6f}{m.group(3)}",
                             l, 1), k)
                for l in body]
    return out


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    base, kind, out = sys.argv[1:4]
    lines = open(base, encoding="utf-8", errors="replace").read().split("\n")
    if len(sys.argv) == 5 and int(sys.argv[4]) > 1:
        lines = repeated(lines, int(sys.argv[4]))
    end = len(lines) - 200
    if kind == "double_kfree":
        i = last(lines, r"kfree: .*ptr=(?!0000000000000000)", end)
        lines.insert(i + 1, lines[i])
    elif kind == "wrong_cache":
        i = last(lines, r"kmem_cache_free: .*name=names_cache", end)
        lines[i] = lines[i].replace("name=names_cache", "name=filp")
    elif kind == "redzone":
        rx = re.compile(r"kmalloc: call_site=\S+ ptr=(\w+) bytes_req=(\d+) bytes_alloc=(\d+)")
        for i in range(end, 0, -1):
            m = rx.search(lines[i])
            if m and int(m.group(2)) < int(m.group(3)):
                break
        else:
            sys.exit("inject_bug: no kmalloc with slack")
        pre = lines[i].split("kmalloc:")[0]
        lines.insert(i + 1, f"{pre}mmfuzz_write: ptr={m.group(1)} offset={m.group(2)} len=8 byte=0x41")
    elif kind == "wrong_order":
        i = last(lines, r"mm_page_free: .*order=0", end)
        lines[i] = lines[i].replace("order=0", "order=2")
    else:
        sys.exit(f"inject_bug: unknown kind {kind}")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
