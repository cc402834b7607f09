#!/usr/bin/env python3
"""Writes a trace with one bug inserted near its end, for the shrinker's and
replay's tests and the shrinker's benchmark:

    inject_bug.py BASE.trace KIND OUT.trace [REPEAT] [--lines]

KIND: double_kfree (a kfree repeated), wrong_cache (a kmem_cache_free of a
names_cache object sent to filp), redzone (a client write just past a
kmalloc object's requested size), wrong_order (an order-0 page freed as
order 2), double_alloc (a kmalloc of a pointer freed later repeated right
after it: a second allocation of a live pointer), unknown_free (a kfree of a
pointer the trace never shows), compound_order (the order-0 free of an
order >= 1 __GFP_COMP page; an alloc+free pair of a fresh pfn is inserted if
the trace has no such pair), invalid_order (an mm_page_alloc of order 99),
kmalloc_too_large (a successful 8 MiB kmalloc). REPEAT > 1 first repeats
the trace's event lines that many times (timestamps shifted), the bug then
goes near the end of the last copy.

--lines prints the 1-based line numbers in OUT.trace of the object's
allocation, its earlier free and the faulting line as
`alloc=N free=M fault=K` (0 when there is none).
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


ALLOC = r"(?:kmalloc|kmalloc_node|kmem_cache_alloc|kmem_cache_alloc_node): .*ptr={}\b"
FRESH_PTR = "ffff1516deadbe00"


def alloc_of(lines, ptr, before):
    """The index of the last slab allocation of ptr before the line `before`,
    or None."""
    rx = re.compile(ALLOC.format(ptr))
    for i in range(before - 1, -1, -1):
        if rx.search(lines[i]):
            return i
    return None


def page_alloc_of(lines, pfn, before):
    rx = re.compile(rf"mm_page_alloc: .*pfn=0x{pfn}\s")
    for i in range(before - 1, -1, -1):
        if rx.search(lines[i]):
            return i
    return None


def fresh_pfn(lines, span):
    """A pfn aligned to span, inside the guest's RAM (pfn 0x40000 to 0x80000),
    whose span pages the trace never names."""
    seen = {int(p, 16) for p in set(re.findall(r"pfn=0x([0-9a-f]+)", "\n".join(lines)))}
    for p in range(0x7f000, 0x40000, -span):
        if not any(q in seen for q in range(p, p + span)):
            return p
    sys.exit("inject_bug: no fresh pfn")


def page_of(lines, pfn):
    """The struct page address of pfn, from the trace's own page= and pfn=
    pairs (vmemmap: page = base + 64 * pfn)."""
    rx = re.compile(r"page=([0-9a-f]{16}) pfn=0x([0-9a-f]+)")
    for l in lines:
        m = rx.search(l)
        if m:
            return f"{int(m.group(1), 16) - 64 * int(m.group(2), 16) + 64 * pfn:016x}"
    return "0000000000000000"


def prefix(line, event):
    """The task, CPU, flags and timestamp part of line, before ` event`."""
    return line.split(f" {event}")[0]


def inject(lines, kind, end):
    """Inserts the bug; returns (alloc, free, fault) as indexes into the new
    lines (None when there is none)."""
    if kind == "double_kfree":
        i = last(lines, r"kfree: .*ptr=(?!0000000000000000)", end)
        lines.insert(i + 1, lines[i])
        ptr = re.search(r"ptr=(\w+)", lines[i]).group(1)
        return alloc_of(lines, ptr, i), i, i + 1
    if kind == "wrong_cache":
        i = last(lines, r"kmem_cache_free: .*name=names_cache", end)
        lines[i] = lines[i].replace("name=names_cache", "name=filp")
        ptr = re.search(r"ptr=(\w+)", lines[i]).group(1)
        return alloc_of(lines, ptr, i), None, i
    if kind == "redzone":
        rx = re.compile(r"kmalloc: call_site=\S+ ptr=(\w+) bytes_req=(\d+) bytes_alloc=(\d+)")
        for i in range(end, 0, -1):
            m = rx.search(lines[i])
            if m and int(m.group(2)) < int(m.group(3)):
                break
        else:
            sys.exit("inject_bug: no kmalloc with slack")
        pre = lines[i].split("kmalloc:")[0]
        lines.insert(i + 1, f"{pre}mmfuzz_write: ptr={m.group(1)} offset={m.group(2)} len=8 byte=0x41")
        return i, None, i + 1
    if kind == "wrong_order":
        i = last(lines, r"mm_page_free: .*order=0", end)
        lines[i] = lines[i].replace("order=0", "order=2")
        pfn = PFN.search(lines[i]).group(1)
        return page_alloc_of(lines, pfn, i), None, i
    if kind == "double_alloc":
        # The last kmalloc whose pointer's next event is a kfree: the copy
        # allocates it again while it is live, and the trace's kfree stays.
        rx = re.compile(r"kmalloc: call_site=\S+ ptr=(?!0000000000000000)(\w+)")
        for i in range(end, 0, -1):
            m = rx.search(lines[i])
            if not m:
                continue
            ptr = m.group(1)
            nxt = next((l for l in lines[i + 1:] if f"ptr={ptr}" in l), "")
            if " kfree: " in nxt:
                break
        else:
            sys.exit("inject_bug: no kmalloc freed later")
        lines.insert(i + 1, lines[i])
        return i, None, i + 1
    if kind == "unknown_free":
        if any(FRESH_PTR in l for l in lines):
            sys.exit(f"inject_bug: the trace names {FRESH_PTR}")
        i = last(lines, r" kfree: ", end)
        lines.insert(i + 1, re.sub(r"ptr=\w+", f"ptr={FRESH_PTR}", lines[i]))
        return None, None, i + 1
    if kind == "compound_order":
        al = re.compile(r"mm_page_alloc: page=\S+ pfn=0x([0-9a-f]+) order=([1-9]\d*) .*__GFP_COMP")
        fr = re.compile(r"mm_page_free: page=\S+ pfn=0x([0-9a-f]+) order=([1-9]\d*)\b")
        # Slab pages and large kmalloc pages are the model's own (their
        # page events are left to its allocator): only a page no object of
        # the trace lies in is a page allocation the replay checks.
        off = linear_offset(lines)
        objs = {((int(p, 16) - off) % (1 << 64)) >> 12
                for p in set(re.findall(r"ptr=([0-9a-f]{16})", "\n".join(lines)))}
        live, pair = {}, None
        for i, l in enumerate(lines[:end]):
            m = al.search(l)
            if m:
                live[m.group(1)] = (i, m.group(2))
                continue
            m = fr.search(l)
            if m and m.group(1) in live:
                a, order = live.pop(m.group(1))
                pfn = int(m.group(1), 16)
                if order == m.group(2) and not any(
                        p in objs for p in range(pfn, pfn + (1 << int(order)))):
                    pair = (a, i)
        if pair:
            a, i = pair
            lines[i] = re.sub(r"order=\d+", "order=0", lines[i])
            return a, None, i
        # No such pair: a compound order-2 page of a fresh pfn, freed as order 0.
        pfn = fresh_pfn(lines, 4)
        i = last(lines, r"mm_page_alloc: ", end)
        pre = prefix(lines[i], "mm_page_alloc:")
        page = page_of(lines, pfn)
        lines.insert(i + 1, f"{pre} mm_page_alloc: page={page} pfn={pfn:#x} order=2 migratetype=0 "
                     "gfp_flags=GFP_KERNEL|__GFP_COMP")
        lines.insert(i + 2, f"{pre} mm_page_free: page={page} pfn={pfn:#x} order=0")
        return i + 1, None, i + 2
    if kind == "invalid_order":
        pfn = fresh_pfn(lines, 1)
        i = last(lines, r"mm_page_alloc: ", end)
        pre = prefix(lines[i], "mm_page_alloc:")
        lines.insert(i + 1, f"{pre} mm_page_alloc: page={page_of(lines, pfn)} pfn={pfn:#x} order=99 "
                     "migratetype=0 gfp_flags=GFP_KERNEL")
        return None, None, i + 1
    if kind == "kmalloc_too_large":
        pfn = fresh_pfn(lines, 2048)
        i = last(lines, r"kmalloc: ", end)
        # ptr = PA + the linear map's offset, learned from the trace's own
        # slab pages (page= and pfn= of an order-0 page a kmalloc lies in).
        ptr = f"{(pfn << 12) + linear_offset(lines):016x}"
        if any(ptr in l for l in lines):
            sys.exit(f"inject_bug: the trace names {ptr}")
        lines.insert(i + 1, re.sub(r"ptr=\w+ bytes_req=\d+ bytes_alloc=\d+",
                                   f"ptr={ptr} bytes_req=8388608 bytes_alloc=8388608", lines[i]))
        return None, None, i + 1
    sys.exit(f"inject_bug: unknown kind {kind}")


def linear_offset(lines):
    """ptr - PA of the linear map: the top bits every slab pointer of the
    trace shares, with the PA's bits (below 2^30 above the RAM base) cleared."""
    m = next(m for l in lines for m in [re.search(r"kmalloc: .*ptr=([0-9a-f]{16})", l)] if m)
    return (int(m.group(1), 16) - 0x40000000) & ~((1 << 30) - 1)


def main():
    args = [a for a in sys.argv[1:] if a != "--lines"]
    show = len(args) != len(sys.argv) - 1
    if len(args) not in (3, 4):
        sys.exit(__doc__)
    base, kind, out = args[:3]
    lines = open(base, encoding="utf-8", errors="replace").read().split("\n")
    if len(args) == 4 and int(args[3]) > 1:
        lines = repeated(lines, int(args[3]))
    end = len(lines) - 200
    at = inject(lines, kind, end)
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    if show:
        alloc, free, fault = (0 if i is None else i + 1 for i in at)
        print(f"alloc={alloc} free={free} fault={fault}")


if __name__ == "__main__":
    main()
