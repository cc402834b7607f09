#include "invariants/slab.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "invariants/page_report.h"
#include "invariants/slab_report.h"
#include "mm/mm.h"
#include "mm/slab/slub.h"

namespace mmfuzz::inv {

using mm::NO_PAGE;

void slab_inv::bug(const mm::Mm& m, Reporter& r, const char* id, std::uint64_t pfn,
                   std::string msg) {
  if (!r.enabled(id)) return;
  Violation v = page_violation(m, ViolationKind::invariant, id,
                               fmt::format("BUG: mmfuzz invariant {}: {}", id, msg),
                               pfn != NO_PAGE && m.pfn_valid(pfn) ? pfn : NO_PAGE, {});
  v.subsystem = "slab";
  r.report(std::move(v));
}

namespace {

using namespace slab_inv;

unsigned slab_order(const mm::Mm& m, std::uint64_t head) {
  const mm::page& p = m.pfn_to_page(head);
  return mm::PageHead(p) && m.pfn_valid(head + 1) ? m.pfn_to_page(head + 1).compound_order : 0;
}

// Every slab head page of the memmap, by cache.
std::map<mm::cache_id, std::vector<std::uint64_t>> slabs_by_cache(const mm::Mm& m) {
  std::map<mm::cache_id, std::vector<std::uint64_t>> out;
  for (const auto& [s, e] : m.memory_pfn_ranges()) {
    for (std::uint64_t pfn = s; pfn < e; ++pfn) {
      const mm::page& p = m.pfn_to_page(pfn);
      if (mm::PageSlab(p) && !mm::PageTail(p)) out[p.slab.cache].push_back(pfn);
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& SlabChecker::invariants() const {
  static const std::vector<std::string> ids = {kPages, kOverlap, kFreelist, kCounts,
                                               kLists, kRearm,   kMempool};
  return ids;
}

// Slab pages are live page allocations of a live cache; large kmallocs too.
void SlabChecker::check_pages(const mm::Mm& m, Reporter& r) {
  const auto& sl = m.slab;
  const auto& pa = m.page_alloc;
  for (const auto& [cid, slabs] : slabs_by_cache(m)) {
    const mm::kmem_cache* s = sl.cache(cid);
    for (std::uint64_t head : slabs) {
      if (!s || s->destroyed) {
        bug(m, r, kPages, head,
            fmt::format("PG_slab page pfn {:#x} names {} cache {}", head, s ? "destroyed" : "no",
                        cid));
        continue;
      }
      const unsigned order = slab_order(m, head);
      const mm::page_owner& o = pa.owner(head);
      if (o.state != mm::PAGE_OWNER_ALLOCATED || o.order != order ||
          mm::PageBuddy(m.pfn_to_page(head)))
        bug(m, r, kOverlap, head,
            fmt::format("slab pfn {:#x} of {} (order {}) is not an allocated page block", head,
                        s->name, order));
      const mm::page& p = m.pfn_to_page(head);
      const auto* sh = sl.shadow(head);
      if (p.slab.objects == 0 || p.slab.inuse > p.slab.objects ||
          (sh && sh->size() != p.slab.objects))
        bug(m, r, kPages, head,
            fmt::format("slab pfn {:#x} of {} has objects={} inuse={}", head, s->name,
                        p.slab.objects, p.slab.inuse));
      for (std::uint64_t i = 1; i < (std::uint64_t{1} << order); ++i)
        if (m.pfn_to_page(head + i).compound_head != ((head << 1) | 1)) {
          bug(m, r, kPages, head + i,
              fmt::format("tail pfn {:#x} of slab {:#x} does not point at its head", head + i,
                          head));
          break;
        }
    }
  }
  // Large kmallocs: allocated compound blocks that are not slabs.
  for (const auto& [head, size] : sl.large_kmallocs()) {
    const mm::page_owner& o = pa.owner(head);
    if (!m.pfn_valid(head) || o.state != mm::PAGE_OWNER_ALLOCATED ||
        mm::PageSlab(m.pfn_to_page(head)) || size > (m.profile.page_size() << o.order))
      bug(m, r, kOverlap, head,
          fmt::format("large kmalloc of {} bytes at pfn {:#x} is not a live page block of its "
                      "size",
                      size, head));
  }
}

void SlabChecker::check_slub(const mm::Mm& m, Reporter& r) {
  using namespace mm::slub;
  const auto& sl = m.slab;
  const auto by_cache = slabs_by_cache(m);
  const std::uint64_t nr_pages = m.sparse.end_pfn() - m.sparse.base_pfn();
  for (mm::cache_id cid : sl.slab_caches) {
    const mm::kmem_cache* s = sl.cache(cid);
    if (!s || s->destroyed) continue;
    // Where each slab of this cache is: 1 cpu slab, 2 cpu partial, 3 node
    // partial, 4 full list. A slab in two places is a bug.
    std::map<std::uint64_t, int> where;
    std::map<std::uint64_t, std::uint64_t> cpu_free;  // cpu slab -> objects on the cpu freelist
    auto place = [&](std::uint64_t slab, int w, const char* what) {
      const auto [it, fresh] = where.emplace(slab, w);
      if (!fresh)
        bug(m, r, kLists, slab,
            fmt::format("slab pfn {:#x} of {} is on two lists ({})", slab, s->name, what));
      const mm::page& p = m.pfn_to_page(slab);
      if (!mm::PageSlab(p) || p.slab.cache != cid)
        bug(m, r, kLists, slab,
            fmt::format("{} of {} holds pfn {:#x}, which is no slab of it", what, s->name, slab));
    };
    for (unsigned cpu = 0; cpu < s->cpu_slab.size(); ++cpu) {
      const auto& c = s->cpu_slab[cpu];
      if (c.slab != NO_PAGE) {
        if (!m.pfn_valid(c.slab)) {
          bug(m, r, kLists, NO_PAGE, fmt::format("cpu {} slab of {} is no page", cpu, s->name));
          continue;
        }
        place(c.slab, 1, "cpu slab");
        if (!m.pfn_to_page(c.slab).slab.frozen)
          bug(m, r, kLists, c.slab,
              fmt::format("cpu {} slab pfn {:#x} of {} is not frozen", cpu, c.slab, s->name));
        // The cpu freelist: valid objects of the cpu slab, no cycle.
        std::uint64_t n = 0;
        std::uint64_t prev = 0;
        for (std::uint64_t obj = c.freelist; obj; prev = obj, obj = get_freepointer(m, *s, obj)) {
          if (!check_valid_pointer(m, *s, c.slab, obj)) {
            // Report the object holding the bad pointer, never the target.
            if (!prev)
              bug(m, r, kFreelist, c.slab,
                  fmt::format("cpu {} freelist of {} starts at 0x{:x}, no object of its slab", cpu,
                              s->name, obj));
            else if (r.enabled("slab.freeptr"))
              r.report(slub_object_violation(
                  m, *s, c.slab, prev, ViolationKind::misuse, "slab.freeptr", "Freepointer corrupt",
                  {fmt::format("cpu {} freelist reaches 0x{:x}, no object of the slab", cpu,
                               obj)}));
            break;
          }
          if (++n > m.pfn_to_page(c.slab).slab.objects) {
            bug(m, r, kFreelist, c.slab,
                fmt::format("cpu {} freelist of {} has a cycle", cpu, s->name));
            break;
          }
        }
        cpu_free[c.slab] = n;
      } else if (c.freelist) {
        bug(m, r, kLists, NO_PAGE,
            fmt::format("cpu {} of {} has a freelist but no slab", cpu, s->name));
      }
      int chain = 0;
      for (std::uint64_t slab = c.partial; slab != NO_PAGE;) {
        if (!m.pfn_valid(slab) || ++chain > 100000) {
          bug(m, r, kLists, NO_PAGE,
              fmt::format("cpu {} partial chain of {} is corrupt", cpu, s->name));
          break;
        }
        place(slab, 2, "cpu partial chain");
        const mm::page& p = m.pfn_to_page(slab);
        if (!p.slab.frozen)
          bug(m, r, kLists, slab,
              fmt::format("cpu partial slab pfn {:#x} of {} is not frozen", slab, s->name));
        slab = p.slab.next == mm::LIST_NIL ? NO_PAGE : m.sparse.link_to_pfn(p.slab.next);
      }
    }
    for (std::size_t nid = 0; nid < s->node.size(); ++nid) {
      const auto& n = s->node[nid];
      auto walk = [&](mm::page_list head, int w, const char* what) {
        std::uint64_t count = 0;
        for (std::uint32_t id = sl.lists.L(head).next; id != head; id = sl.lists.L(id).next) {
          if (!sl.lists.valid_id(id, nr_pages) || id >= mm::LIST_HEAD_BASE || ++count > nr_pages) {
            bug(m, r, kLists, NO_PAGE,
                fmt::format("{} of {} node {} is corrupt", what, s->name, nid));
            break;
          }
          const std::uint64_t slab = sl.lists.pfn_of(id);
          place(slab, w, what);
          const mm::page& p = m.pfn_to_page(slab);
          if (p.slab.frozen)
            bug(m, r, kLists, slab,
                fmt::format("frozen slab pfn {:#x} of {} is on the {}", slab, s->name, what));
          if (w == 3 && !p.slab.freelist)
            bug(m, r, kLists, slab,
                fmt::format("full slab pfn {:#x} of {} is on the partial list", slab, s->name));
          if (w == 4 && p.slab.inuse != p.slab.objects)
            bug(m, r, kLists, slab,
                fmt::format("slab pfn {:#x} of {} on the full list has free objects", slab,
                            s->name));
        }
        return count;
      };
      const std::uint64_t np = walk(n.partial, 3, "node partial list");
      if (np != n.nr_partial)
        bug(m, r, kCounts, NO_PAGE,
            fmt::format("{} node {}: nr_partial is {} but the list holds {}", s->name, nid,
                        n.nr_partial, np));
      if (s->flags & mm::SLAB_STORE_USER) walk(n.full, 4, "full list");
    }
    // Every slab: freelist integrity and counts against the shadow.
    std::vector<std::uint64_t> nr_slabs(s->node.size()), nr_objs(s->node.size());
    const auto it = by_cache.find(cid);
    if (it == by_cache.end()) {
      for (std::size_t nid = 0; nid < s->node.size(); ++nid)
        if (s->node[nid].nr_slabs || s->node[nid].total_objects)
          bug(m, r, kCounts, NO_PAGE,
              fmt::format("{} node {} counts {} slabs but has none", s->name, nid,
                          s->node[nid].nr_slabs));
      continue;
    }
    for (std::uint64_t slab : it->second) {
      const mm::page& p = m.pfn_to_page(slab);
      if (p.nid < nr_slabs.size()) {
        nr_slabs[p.nid]++;
        nr_objs[p.nid] += p.slab.objects;
      }
      const auto* sh = sl.shadow(slab);
      if (!sh) {
        bug(m, r, kPages, slab,
            fmt::format("slab pfn {:#x} of {} has no object shadow", slab, s->name));
        continue;
      }
      std::vector<std::uint8_t> seen(p.slab.objects, 0);
      std::uint64_t on_slab = 0;
      auto walk_free = [&](std::uint64_t first, const char* what) {
        std::uint64_t n = 0;
        std::uint64_t prev = 0;
        for (std::uint64_t obj = first; obj; prev = obj, obj = get_freepointer(m, *s, obj)) {
          unsigned idx;
          if (!object_index(m, *s, slab, obj, &idx)) {
            if (!prev)
              bug(m, r, kFreelist, slab,
                  fmt::format("{} of slab pfn {:#x} starts at 0x{:x}, no object of it", what, slab,
                              obj));
            else if (r.enabled("slab.freeptr"))
              r.report(slub_object_violation(
                  m, *s, slab, prev, ViolationKind::misuse, "slab.freeptr", "Freepointer corrupt",
                  {fmt::format("{} reaches 0x{:x}, no object of slab pfn {:#x}", what, obj,
                               slab)}));
            break;
          }
          if (seen[idx]) {
            bug(m, r, kFreelist, slab,
                fmt::format("object 0x{:x} of {} is on the free lists twice ({})", obj, s->name,
                            what));
            break;
          }
          seen[idx] = 1;
          if ((*sh)[idx].allocated)
            bug(m, r, kFreelist, slab,
                fmt::format("object 0x{:x} of {} is both allocated and on the {}", obj, s->name,
                            what));
          ++n;
        }
        return n;
      };
      on_slab = walk_free(p.slab.freelist, "slab freelist");
      for (unsigned cpu = 0; cpu < s->cpu_slab.size(); ++cpu)
        if (s->cpu_slab[cpu].slab == slab) walk_free(s->cpu_slab[cpu].freelist, "cpu freelist");
      if (p.slab.inuse != p.slab.objects - on_slab)
        bug(m, r, kCounts, slab,
            fmt::format("slab pfn {:#x} of {}: inuse {} but {} of {} objects are on its freelist",
                        slab, s->name, p.slab.inuse, on_slab, p.slab.objects));
      std::uint64_t allocated = 0, unlisted_free = 0;
      for (unsigned i = 0; i < p.slab.objects; ++i) {
        if ((*sh)[i].allocated)
          ++allocated;
        else if (!seen[i])
          ++unlisted_free;
      }
      if (unlisted_free)
        bug(m, r, kCounts, slab,
            fmt::format("slab pfn {:#x} of {}: {} free objects are on no freelist", slab, s->name,
                        unlisted_free));
      const auto w = where.find(slab);
      if (w == where.end()) {
        // On no list: only a full, unfrozen slab of a cache that keeps no full list.
        if (p.slab.frozen || p.slab.freelist || (s->flags & mm::SLAB_STORE_USER))
          bug(m, r, kLists, slab,
              fmt::format("slab pfn {:#x} of {} (inuse {} of {}, frozen {}) is on no list", slab,
                          s->name, p.slab.inuse, p.slab.objects, p.slab.frozen));
      }
    }
    for (std::size_t nid = 0; nid < s->node.size(); ++nid)
      if (s->node[nid].nr_slabs != nr_slabs[nid] || s->node[nid].total_objects != nr_objs[nid])
        bug(m, r, kCounts, NO_PAGE,
            fmt::format("{} node {}: nr_slabs {} total_objects {} but the memmap holds {} "
                        "slabs of {} objects",
                        s->name, nid, s->node[nid].nr_slabs, s->node[nid].total_objects,
                        nr_slabs[nid], nr_objs[nid]));
  }
}

// SLUB debug's check_object() over every object of caches with red zones or
// poison, and the slab tail padding.
void SlabChecker::check_debug_objects(const mm::Mm& m, Reporter& r) {
  using namespace mm::slub;
  if (m.slab.variant != mm::SlabVariant::slub) return;
  const auto& sl = m.slab;
  for (const auto& [cid, slabs] : slabs_by_cache(m)) {
    const mm::kmem_cache* s = sl.cache(cid);
    if (!s || s->destroyed || !(s->flags & (mm::SLAB_RED_ZONE | mm::SLAB_POISON))) continue;
    for (std::uint64_t slab : slabs) {
      const auto* sh = sl.shadow(slab);
      const mm::page& p = m.pfn_to_page(slab);
      for (unsigned i = 0; sh && i < p.slab.objects; ++i) {
        const std::uint64_t obj = object_at(m, *s, slab, i);
        const std::uint8_t val = (*sh)[i].allocated ? mm::SLUB_RED_ACTIVE : mm::SLUB_RED_INACTIVE;
        for (const auto& f : check_object(m, *s, slab, obj, val)) {
          const std::string id = mm::misuse_id(f.kind);
          if (!r.enabled(id)) continue;
          r.report(slub_object_violation(m, *s, slab, obj, ViolationKind::misuse, id,
                                         f.kind == mm::MisuseKind::slab_freeptr
                                             ? std::string(f.what)
                                             : std::string(f.what) + " overwritten",
                                         {finding_line(f)}));
        }
      }
      for (const auto& f : check_slab_padding(m, *s, slab))
        if (r.enabled("slab.padding")) {
          Violation v =
              slub_object_violation(m, *s, slab, m.page_address(slab), ViolationKind::misuse,
                                    "slab.padding", "Padding overwritten", {finding_line(f)});
          r.report(std::move(v));
        }
    }
  }
}

void SlabChecker::full(const mm::Mm& m, Reporter& r) {
  check_mempools(m, r);  // page pools need no slab layer
  if (!m.slab.initialized()) return;
  check_pages(m, r);
  switch (m.slab.variant) {
    case mm::SlabVariant::slub:
      check_slub(m, r);
      break;
    case mm::SlabVariant::slab:
      check_slab_classic(m, r);
      break;
    case mm::SlabVariant::slob:
      check_slob(m, r);
      break;
  }
  check_debug_objects(m, r);
}

// The objects an op touched: their slab is a live slab of a live cache, the
// shadow agrees with what happened, and debug caches keep their red zones.
void SlabChecker::incremental(const mm::Mm& m, const TouchLog& touched, Reporter& r) {
  using namespace mm::slub;
  check_mempools(m, r);
  const auto& sl = m.slab;
  if (!sl.initialized()) return;
  for (std::size_t i = 0; i < touched.objects.size(); ++i) {
    const auto [obj, was_allocated] = touched.objects[i];
    // An object allocated and freed within one op (a vm_struct of an
    // ioremap/iounmap pair) is judged by its last event.
    bool allocated = was_allocated;
    for (std::size_t j = i + 1; allocated && j < touched.objects.size(); ++j)
      if (touched.objects[j].first == obj) allocated = touched.objects[j].second;
    const auto ref = sl.find_object(obj);
    if (!ref) continue;  // a large kmalloc or an already released slab
    const mm::kmem_cache* s = sl.cache(ref->cache);
    if (!s || s->destroyed) {
      bug(m, r, kPages, ref->slab,
          fmt::format("object 0x{:x} lies in a slab of a dead cache", obj));
      continue;
    }
    // A free may be refused (a debug check failed): only allocations must show.
    if (allocated && ref->object == obj && !ref->allocated)
      bug(m, r, kCounts, ref->slab,
          fmt::format("object 0x{:x} of {} was just allocated but is free", obj, s->name));
    if (sl.variant == mm::SlabVariant::slub) {
      const mm::page& p = m.pfn_to_page(ref->slab);
      if (p.slab.inuse > p.slab.objects)
        bug(m, r, kCounts, ref->slab,
            fmt::format("slab pfn {:#x} of {}: inuse {} > objects {}", ref->slab, s->name,
                        p.slab.inuse, p.slab.objects));
      const auto& c = s->cpu_slab[static_cast<std::size_t>(m.cpu())];
      if (c.slab != NO_PAGE && c.freelist && !check_valid_pointer(m, *s, c.slab, c.freelist))
        bug(m, r, kFreelist, c.slab,
            fmt::format("cpu {} freelist of {} points outside its slab", m.cpu(), s->name));
      // This op freed obj, and the model reported no misuse: everything the
      // free wrote is the allocator's own work, so it must be right now.
      const bool just_freed =
          !allocated && !ref->allocated && ref->object == obj && !touched.misuse;
      if (just_freed) {
        // The free pointer the free stored: NULL or a free object of the slab.
        const std::uint64_t fp = get_freepointer(m, *s, obj);
        unsigned idx = 0;
        const auto* sh = sl.shadow(ref->slab);
        if (fp && (!object_index(m, *s, ref->slab, fp, &idx) ||
                   (sh && idx < sh->size() && (*sh)[idx].allocated)))
          bug(m, r, kFreelist, ref->slab,
              fmt::format("object 0x{:x} of {} was just freed but its free pointer 0x{:x} is {}",
                          obj, s->name, fp,
                          object_index(m, *s, ref->slab, fp, &idx) ? "an allocated object"
                                                                   : "no object of its slab"));
      }
      if ((s->flags & (mm::SLAB_RED_ZONE | mm::SLAB_POISON)) && ref->object == obj) {
        for (const auto& f :
             check_object(m, *s, ref->slab, obj,
                          ref->allocated ? mm::SLUB_RED_ACTIVE : mm::SLUB_RED_INACTIVE)) {
          // init_object() just rewrote the red zones and the poison of a
          // freed object: a bad byte there is the allocator's, not the
          // Program's (its earlier damage is overwritten by the free).
          const bool rearmed =
              f.kind == mm::MisuseKind::slab_redzone || f.kind == mm::MisuseKind::slab_poison;
          if (just_freed && rearmed) {
            if (r.enabled(kRearm))
              r.report(slub_object_violation(
                  m, *s, ref->slab, obj, ViolationKind::invariant, kRearm,
                  std::string(f.what) + " not re-armed on free",
                  {finding_line(f),
                   "init_object(SLUB_RED_INACTIVE) did not restore it when the object was "
                   "freed"}));
            continue;
          }
          const std::string id = mm::misuse_id(f.kind);
          if (r.enabled(id))
            r.report(slub_object_violation(m, *s, ref->slab, obj, ViolationKind::misuse, id,
                                           f.kind == mm::MisuseKind::slab_freeptr
                                               ? std::string(f.what)
                                               : std::string(f.what) + " overwritten",
                                           {finding_line(f)}));
        }
      }
    }
  }
}

Violation SlabChecker::leak_report(const mm::Mm& m, bool* any) {
  struct Key {
    std::string cache;
    std::uint32_t site;
    bool operator<(const Key& o) const { return std::tie(cache, site) < std::tie(o.cache, o.site); }
  };
  struct Agg {
    std::uint64_t count = 0, bytes = 0;
    std::uint32_t first = ~0u, last = 0;
    std::uint64_t example = 0;
  };
  std::map<Key, Agg> leaks;
  const auto& sl = m.slab;
  if (sl.initialized()) {
    sl.allocator->for_each_allocated([&](const mm::SlabAllocator::LiveObject& o) {
      if (o.alloc_seq == 0) return;  // boot-time objects are the kernel's own
      const mm::kmem_cache* s = sl.cache(o.cache);
      Agg& a = leaks[{s ? s->name : std::string("?"), o.alloc_site}];
      a.count++;
      a.bytes += o.requested;
      a.first = std::min(a.first, o.alloc_seq);
      a.last = std::max(a.last, o.alloc_seq);
      if (!a.example) a.example = o.object;
    });
  }
  Violation v;
  v.kind = ViolationKind::misuse;
  v.invariant = "slab.leak";
  v.subsystem = "slab";
  std::uint64_t total = 0;
  for (const auto& [k, a] : leaks) {
    total += a.count;
    v.details.push_back(
        fmt::format("  {} objects ({} bytes) of {} allocated at {} (ops #{}..#{}), e.g. 0x{:x}",
                    a.count, a.bytes, k.cache, k.site ? fmt::format("call_site#{}", k.site) : "-",
                    a.first, a.last, a.example));
  }
  v.title = fmt::format("mmfuzz: {} slab objects still allocated at the end of the run", total);
  *any = total != 0;
  return v;
}

}  // namespace mmfuzz::inv
