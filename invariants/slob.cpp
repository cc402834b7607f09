// SLOB structure checks: the three partial-page lists, PG_slob_free, each
// page's free block list as simulated RAM holds it, the model's shadow of
// live blocks, and the counters SLOB keeps (free units, NR_SLAB_*_B).
#include "mm/slab/slob.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "invariants/page_report.h"
#include "invariants/slab.h"
#include "mm/mm.h"

namespace mmfuzz::inv {

using mm::NO_PAGE;

namespace {

using namespace slab_inv;

// The free list of one SLOB page, walked in simulated RAM. Marks the units
// it covers (2) in cover, where live blocks already are (1). False when the
// list is broken (then cover is incomplete).
bool check_free_list(const mm::Mm& m, Reporter& r, const mm::SlobAllocator& a, std::uint64_t pfn,
                     std::vector<std::uint8_t>& cover) {
  const mm::page& p = m.pfn_to_page(pfn);
  const unsigned U = a.unit(), N = a.units_per_page();
  const std::uint64_t ps = m.profile.page_size();
  const std::uint64_t base = m.page_address(pfn);
  std::uint64_t cur = p.slab.freelist;
  if (cur < base || cur >= base + ps || (cur - base) % U) {
    bug(m, r, kFreelist, pfn,
        fmt::format("SLOB page pfn {:#x} has {} free units but its freelist 0x{:x} is not in it",
                    pfn, p.slab.inuse, cur));
    return false;
  }
  std::uint64_t sum = 0, blocks = 0;
  std::int64_t prev_end = -1;
  bool over_live = false;
  for (;;) {
    const std::uint64_t off = (cur - base) / U;
    const auto units = static_cast<std::uint64_t>(a.block_units(cur));
    const std::uint64_t next = a.block_next(cur);
    if (off + units > N) {
      bug(m, r, kFreelist, pfn,
          fmt::format("free block 0x{:x} of {} units runs past the end of pfn {:#x}", cur, units,
                      pfn));
      return false;
    }
    if (prev_end == static_cast<std::int64_t>(off))
      bug(m, r, kFreelist, pfn,
          fmt::format("free blocks of pfn {:#x} meet at 0x{:x} unmerged", pfn, cur));
    if (std::memchr(&cover[off], 1, units)) over_live = true;
    std::memset(&cover[off], 2, units);
    sum += units;
    prev_end = static_cast<std::int64_t>(off + units);
    if ((next & (ps - 1)) == 0) {  // slob_last()
      if (next != base + ps && next != base)
        bug(m, r, kFreelist, pfn,
            fmt::format("the last free block 0x{:x} of pfn {:#x} points to 0x{:x}, another page",
                        cur, pfn, next));
      break;
    }
    if (next <= cur || next < cur + units * U || next >= base + ps || (next - base) % U) {
      bug(m, r, kFreelist, pfn,
          fmt::format("free block 0x{:x} ({} units) of pfn {:#x} points to 0x{:x}: the list "
                      "must go up inside the page without overlap",
                      cur, units, pfn, next));
      return false;
    }
    if (++blocks > N) {
      bug(m, r, kFreelist, pfn, fmt::format("the free list of pfn {:#x} has a cycle", pfn));
      return false;
    }
    cur = next;
  }
  if (sum != p.slab.inuse)
    bug(m, r, kCounts, pfn,
        fmt::format("SLOB page pfn {:#x}: units says {} free, its free list holds {}", pfn,
                    p.slab.inuse, sum));
  if (over_live)
    bug(m, r, kOverlap, pfn, fmt::format("a free block of pfn {:#x} overlaps a live block", pfn));
  return true;
}

}  // namespace

void check_slob(const mm::Mm& m, Reporter& r) {
  const mm::SlobAllocator* a = mm::slob_allocator(m.slab);
  if (!a) return;
  const auto& sl = m.slab;
  const auto& pa = m.page_alloc;
  const std::uint64_t nr_pages = m.sparse.end_pfn() - m.sparse.base_pfn();
  const unsigned U = a->unit(), N = a->units_per_page();
  const std::uint64_t ps = m.profile.page_size();

  // The three lists: sound links, SLOB pages only, a page on one list.
  std::map<std::uint64_t, int> on_list;
  for (int l = 0; l < mm::slob::kNrLists; ++l) {
    const mm::page_list head = a->slob_list(l);
    std::uint64_t count = 0;
    for (std::uint32_t id = sl.lists.L(head).next; id != head; id = sl.lists.L(id).next) {
      if (!sl.lists.valid_id(id, nr_pages) || id >= mm::LIST_HEAD_BASE || ++count > nr_pages ||
          sl.lists.L(sl.lists.L(id).next).prev != id) {
        bug(m, r, kLists, NO_PAGE, fmt::format("{} is corrupt", mm::slob::list_name(l)));
        break;
      }
      const std::uint64_t pfn = sl.lists.pfn_of(id);
      if (!on_list.emplace(pfn, l).second)
        bug(m, r, kLists, pfn,
            fmt::format("pfn {:#x} is on {} and {}", pfn, mm::slob::list_name(on_list[pfn]),
                        mm::slob::list_name(l)));
      const mm::slob::PageShadow* sh = a->shadow_of(pfn);
      if (!mm::PageSlab(m.pfn_to_page(pfn)) || !sh || !sh->slob_page || sh->head != pfn)
        bug(m, r, kLists, pfn,
            fmt::format("{} holds pfn {:#x}, which is no SLOB page", mm::slob::list_name(l), pfn));
    }
  }

  // Every PG_slab page is a SLOB page the allocator knows.
  for (const auto& [s, e] : m.memory_pfn_ranges()) {
    for (std::uint64_t pfn = s; pfn < e; ++pfn) {
      const mm::page& p = m.pfn_to_page(pfn);
      if (!mm::PageSlab(p) || mm::PageTail(p)) continue;
      const mm::slob::PageShadow* sh = a->shadow_of(pfn);
      if (!sh || sh->head != pfn ||
          (!sh->slob_page && (sh->live.size() != 1 || sh->live[0].kmalloc)))
        bug(m, r, kPages, pfn,
            fmt::format("PG_slab page pfn {:#x} is neither a SLOB page nor a page-backed object",
                        pfn));
    }
  }

  std::vector<long> node_bytes(m.machine.nr_nodes, 0);
  std::set<std::uint64_t> large;       // heads of large kmallocs
  std::vector<std::uint8_t> cover(N);  // per unit of a page: 1 live, 2 free
  std::uint64_t pending = 0;
  for (const auto& [head, sh] : a->pages()) {
    if (!m.pfn_valid(head) || sh.head != head) {
      bug(m, r, kPages, NO_PAGE, fmt::format("the SLOB shadow names pfn {:#x}", head));
      continue;
    }
    const mm::page& p = m.pfn_to_page(head);
    if (p.nid < node_bytes.size()) node_bytes[p.nid] += static_cast<long>(ps << sh.order);
    const std::uint64_t base = m.page_address(head);
    const std::uint64_t end = base + (ps << sh.order);
    // Live blocks: inside their pages, in order, apart, of live caches.
    std::uint64_t prev_end = base;
    for (const auto& b : sh.live) {
      if (b.start < base || b.end() > end || !b.bytes || (sh.slob_page && (b.start - base) % U)) {
        bug(m, r, kOverlap, head,
            fmt::format("block 0x{:x} of {} bytes does not fit pfn {:#x}", b.start, b.bytes, head));
        continue;
      }
      if (b.start < prev_end)
        bug(m, r, kOverlap, head,
            fmt::format("live blocks of pfn {:#x} overlap at 0x{:x}", head, b.start));
      prev_end = std::max(prev_end, b.end());
      const mm::kmem_cache* s = sl.cache(b.cache);
      if (!s || s->destroyed)
        bug(m, r, kPages, head,
            fmt::format("block 0x{:x} on pfn {:#x} belongs to {} cache {}", b.start, head,
                        s ? "destroyed" : "no", b.cache));
      if (b.rcu_pending) ++pending;
      // kmalloc's size header: client damage, reported as SLOB would find it.
      if (b.kmalloc && sh.slob_page && r.enabled("slab.redzone")) {
        std::uint8_t h[4];
        m.ram.read(m.__pa(b.start), h);
        const std::uint32_t v = static_cast<std::uint32_t>(h[0]) | (std::uint32_t{h[1]} << 8) |
                                (std::uint32_t{h[2]} << 16) | (std::uint32_t{h[3]} << 24);
        if (v != b.size) {
          Violation vi = page_violation(
              m, ViolationKind::misuse, "slab.redzone",
              fmt::format("BUG kmalloc (Not tainted): SLOB size header overwritten"), head,
              {fmt::format("the header at 0x{:x} of object 0x{:x} reads {}, kmalloc() wrote {}",
                           b.start, b.object, v, b.size)});
          vi.subsystem = "slab";
          vi.cache = "kmalloc";
          vi.object = fmt::format("0x{:x}", b.object);
          vi.addrs.push_back(b.start);
          r.report(std::move(vi));
        }
      }
    }
    if (!sh.slob_page) {
      // A page-backed object: its own live page block. A large kmalloc is
      // no slab page; a kmem_cache object is a compound PG_slab block.
      const mm::page_owner& o = pa.owner(head);
      if (o.state != mm::PAGE_OWNER_ALLOCATED || o.order != sh.order)
        bug(m, r, kOverlap, head,
            fmt::format("page-backed SLOB object at pfn {:#x} (order {}) is not an allocated "
                        "page block",
                        head, sh.order));
      if (sh.live.size() != 1) {
        bug(m, r, kCounts, head,
            fmt::format("page-backed SLOB block at pfn {:#x} has {} objects", head,
                        sh.live.size()));
        continue;
      }
      const auto& b = sh.live[0];
      if (b.kmalloc) {
        large.insert(head);
        if (mm::PageSlab(p))
          bug(m, r, kPages, head, fmt::format("large kmalloc at pfn {:#x} is PG_slab", head));
      } else if (!mm::PageSlab(p) || p.slab.cache != b.cache || (sh.order && !mm::PageHead(p))) {
        bug(m, r, kPages, head,
            fmt::format("page-backed object of cache {} at pfn {:#x}: PG_slab {} head {} "
                        "slab_cache {}",
                        b.cache, head, mm::PageSlab(p), mm::PageHead(p), p.slab.cache));
      }
      continue;
    }
    // A SLOB heap page.
    if (!mm::PageSlab(p) || sh.order != 0 || p.slab.objects != N ||
        p.slab.cache != a->kmalloc_cache()) {
      bug(m, r, kPages, head,
          fmt::format("SLOB page pfn {:#x}: PG_slab {} order {} objects {} cache {}", head,
                      mm::PageSlab(p), sh.order, p.slab.objects, p.slab.cache));
      continue;
    }
    const unsigned free_units = p.slab.inuse;
    const auto li = on_list.find(head);
    const bool listed = li != on_list.end();
    if (free_units > N) {
      bug(m, r, kCounts, head,
          fmt::format("SLOB page pfn {:#x} has {} free units of {}", head, free_units, N));
      continue;
    }
    if (free_units && !listed)
      bug(m, r, kLists, head,
          fmt::format("SLOB page pfn {:#x} has {} free units but is on no list", head, free_units));
    if (!free_units && listed)
      bug(m, r, kLists, head,
          fmt::format("full SLOB page pfn {:#x} is on {}", head, mm::slob::list_name(li->second)));
    if (listed && li->second != sh.list)
      bug(m, r, kLists, head,
          fmt::format("SLOB page pfn {:#x} is on {} but went on {}", head,
                      mm::slob::list_name(li->second), mm::slob::list_name(sh.list)));
    if (p.test(mm::PG_private) != listed)
      bug(m, r, kLists, head,
          fmt::format("SLOB page pfn {:#x}: PG_slob_free is {} but the page is {}", head,
                      p.test(mm::PG_private) ? "set" : "clear",
                      listed ? "on a list" : "on no list"));
    std::fill(cover.begin(), cover.end(), std::uint8_t{0});
    for (const auto& b : sh.live) {
      if (b.start < base || b.end() > end) continue;
      const std::uint64_t lo = (b.start - base) / U;
      const std::uint64_t hi = std::min<std::uint64_t>((b.end() - base + U - 1) / U, N);
      if (lo < hi) std::memset(&cover[lo], 1, hi - lo);
    }
    if (free_units && !check_free_list(m, r, *a, head, cover)) continue;
    const auto lost = std::memchr(cover.data(), 0, N)
                          ? static_cast<std::uint64_t>(std::count(cover.begin(), cover.end(), 0))
                          : 0;
    if (lost)
      bug(m, r, kCounts, head,
          fmt::format("SLOB page pfn {:#x}: {} units are neither live nor free", head, lost));
  }

  // SLOB accounts every page it holds as unreclaimable slab.
  for (std::size_t nid = 0; nid < node_bytes.size() && nid < pa.node_data.size(); ++nid) {
    const auto& st = pa.node_data[nid].vm_stat;
    if (st[mm::NR_SLAB_UNRECLAIMABLE_B] != node_bytes[nid] || st[mm::NR_SLAB_RECLAIMABLE_B] != 0)
      bug(m, r, kCounts, NO_PAGE,
          fmt::format("node {}: NR_SLAB_UNRECLAIMABLE_B {} NR_SLAB_RECLAIMABLE_B {}, but SLOB "
                      "holds {} bytes",
                      nid, st[mm::NR_SLAB_UNRECLAIMABLE_B], st[mm::NR_SLAB_RECLAIMABLE_B],
                      node_bytes[nid]));
  }
  // Its large kmallocs are the ones the common layer knows (which keeps
  // their requested sizes: krealloc() changes them in place).
  std::set<std::uint64_t> common;
  for (const auto& [head, size] : sl.large_kmallocs()) common.insert(head);
  if (common != large)
    bug(m, r, kCounts, NO_PAGE,
        fmt::format("SLOB holds {} large kmallocs, the slab layer lists {}", large.size(),
                    common.size()));
  // Every block waiting for RCU has its callback queued, once.
  std::set<std::pair<std::uint64_t, std::uint64_t>> queued;
  for (const auto& q : a->rcu_pending()) {
    const mm::slob::Block* b = a->live_block(q.start);
    if (!b || b->start != q.start || !b->rcu_pending || !queued.emplace(q.head, q.start).second)
      bug(m, r, kCounts, q.head,
          fmt::format("RCU callback for 0x{:x} names no block waiting for it", q.start));
  }
  if (queued.size() != pending)
    bug(m, r, kCounts, NO_PAGE,
        fmt::format("{} blocks wait for RCU, {} callbacks are queued", pending, queued.size()));
}

}  // namespace mmfuzz::inv
