// SLAB structure checks (mm/slab.c of 6.1), run by SlabChecker::full():
//  slab.lists    every slab of a cache is on exactly one of its node's
//                slabs_full / slabs_partial / slabs_free, the one its active
//                count says, and on the list of the node its pages are on;
//  slab.counts   total_slabs, free_slabs and free_objects of each node agree
//                with the slabs in the memmap; array caches keep avail <=
//                limit and the cache's tunables; colour_next and each slab's
//                colour offset stay within the cache's colour range; every
//                free object is somewhere (on its slab's freelist or cached);
//  slab.freelist the freelist index arrays sit where the cache's layout puts
//                them and name valid, distinct, free objects; per-CPU and
//                shared arrays hold only free objects of the cache (of the
//                right node), and no object is cached or listed twice.
#include "mm/slab/slab_classic.h"

#include <fmt/format.h>

#include <map>
#include <vector>

#include "invariants/page_report.h"
#include "invariants/slab.h"
#include "mm/mm.h"

namespace mmfuzz::inv {

using mm::NO_PAGE;

namespace {

using namespace slab_inv;

enum : std::uint8_t { ON_FREELIST = 1, CACHED = 2 };
enum ListKind : int { LIST_NONE = -1, LIST_FULL, LIST_PARTIAL, LIST_FREE };
const char* const kListName[] = {"slabs_full", "slabs_partial", "slabs_free"};

struct SlabSeen {
  int list = LIST_NONE;
  std::vector<std::uint8_t> mark;  // per object: ON_FREELIST | CACHED
  bool broken = false;             // freelist or arrays already reported
};

}  // namespace

void check_slab_classic(const mm::Mm& m, Reporter& r) {
  using namespace mm::slab_classic;
  const auto& sl = m.slab;
  const std::uint64_t nr_pages = m.sparse.end_pfn() - m.sparse.base_pfn();

  // Every slab head page of the memmap, by cache.
  std::map<mm::cache_id, std::vector<std::uint64_t>> by_cache;
  for (const auto& [b, e] : m.memory_pfn_ranges()) {
    for (std::uint64_t pfn = b; pfn < e; ++pfn) {
      const mm::page& p = m.pfn_to_page(pfn);
      if (mm::PageSlab(p) && !mm::PageTail(p)) by_cache[p.slab.cache].push_back(pfn);
    }
  }

  for (mm::cache_id cid : sl.slab_caches) {
    const mm::kmem_cache* s = sl.cache(cid);
    if (!s || s->destroyed || !s->size) continue;
    const char* name = s->name.c_str();
    const std::uint64_t slab_bytes = m.profile.page_size() << s->gfporder;
    std::map<std::uint64_t, SlabSeen> seen;
    if (const auto it = by_cache.find(cid); it != by_cache.end())
      for (std::uint64_t pfn : it->second) seen[pfn].mark.assign(s->num, 0);

    // ---- the three lists of each node
    for (std::size_t nid = 0; nid < s->node.size(); ++nid) {
      const mm::kmem_cache_node& n = s->node[nid];
      const mm::page_list heads[] = {n.slabs_full, n.slabs_partial, n.slabs_free};
      for (int kind = LIST_FULL; kind <= LIST_FREE; ++kind) {
        const mm::page_list head = heads[kind];
        std::uint64_t walked = 0;
        for (std::uint32_t id = sl.lists.L(head).next; id != head; id = sl.lists.L(id).next) {
          if (!sl.lists.valid_id(id, nr_pages) || id >= mm::LIST_HEAD_BASE || ++walked > nr_pages) {
            bug(m, r, kLists, NO_PAGE,
                fmt::format("{} of {} node {} is corrupt", kListName[kind], name, nid));
            break;
          }
          const std::uint64_t slab = sl.lists.pfn_of(id);
          const mm::page& p = m.pfn_to_page(slab);
          const auto sit = seen.find(slab);
          if (!mm::PageSlab(p) || mm::PageTail(p) || p.slab.cache != cid || sit == seen.end()) {
            bug(m, r, kLists, slab,
                fmt::format("{} of {} node {} holds pfn {:#x}, which is no slab of it",
                            kListName[kind], name, nid, slab));
            continue;
          }
          SlabSeen& in = sit->second;
          if (in.list != LIST_NONE) {
            bug(m, r, kLists, slab,
                fmt::format("slab pfn {:#x} of {} is on {} and {}", slab, name, kListName[in.list],
                            kListName[kind]));
            continue;
          }
          in.list = kind;
          if (p.nid != nid)
            bug(m, r, kLists, slab,
                fmt::format("slab pfn {:#x} of {} lies on node {} but is on node {}'s {}", slab,
                            name, p.nid, nid, kListName[kind]));
          const unsigned active = p.slab.inuse;
          const bool ok = kind == LIST_FULL      ? active == s->num
                          : kind == LIST_PARTIAL ? active > 0 && active < s->num
                                                 : active == 0;
          if (!ok)
            bug(m, r, kLists, slab,
                fmt::format("slab pfn {:#x} of {} with {} of {} objects active is on {}", slab,
                            name, active, s->num, kListName[kind]));
        }
      }
      // ---- the node's counters against the memmap
      std::uint64_t total = 0, nfree = 0, free_objs = 0;
      for (const auto& [slab, in] : seen) {
        const mm::page& p = m.pfn_to_page(slab);
        if (p.nid != nid) continue;
        ++total;
        nfree += p.slab.inuse == 0;
        if (p.slab.inuse <= s->num) free_objs += s->num - p.slab.inuse;
      }
      if (n.total_slabs != total || n.free_slabs != nfree || n.free_objects != free_objs)
        bug(m, r, kCounts, NO_PAGE,
            fmt::format("{} node {}: total_slabs {} free_slabs {} free_objects {}, but its slabs "
                        "are {}, {} of them free, with {} free objects",
                        name, nid, n.total_slabs, n.free_slabs, n.free_objects, total, nfree,
                        free_objs));
      if (n.colour_next >= std::max(s->colour, 1u))
        bug(m, r, kCounts, NO_PAGE,
            fmt::format("{} node {}: colour_next {} is out of the colour range {}", name, nid,
                        n.colour_next, s->colour));
      if (static_cast<bool>(n.shared) != (s->shared != 0))
        bug(m, r, kCounts, NO_PAGE,
            fmt::format("{} node {}: shared factor {} but {} shared array", name, nid, s->shared,
                        n.shared ? "a" : "no"));
    }

    // ---- each slab: its list, its colour, its freelist index array
    for (auto& [slab, in] : seen) {
      const mm::page& p = m.pfn_to_page(slab);
      const unsigned active = p.slab.inuse;
      const std::uint64_t base = m.page_address(slab);
      if (in.list == LIST_NONE)
        bug(m, r, kLists, slab,
            fmt::format("slab pfn {:#x} of {} ({} of {} objects active) is on no list", slab, name,
                        active, s->num));
      if (p.slab.objects != s->num || active > s->num) {
        bug(m, r, kCounts, slab,
            fmt::format("slab pfn {:#x} of {}: {} objects, {} active, but the cache has {} per "
                        "slab",
                        slab, name, p.slab.objects, active, s->num));
        in.broken = true;
        continue;
      }
      const std::uint64_t colour_off = p.slab.s_mem - base;
      if (p.slab.s_mem < base || colour_off % std::max(s->colour_off, 1u) ||
          colour_off / std::max(s->colour_off, 1u) >= std::max(s->colour, 1u) ||
          colour_off + std::uint64_t{s->num} * s->size > slab_bytes) {
        bug(m, r, kCounts, slab,
            fmt::format("slab pfn {:#x} of {}: s_mem at offset {} is no colour of the cache "
                        "(colour {} x {} bytes)",
                        slab, name, colour_off, s->colour, s->colour_off));
        in.broken = true;
        continue;
      }
      const auto* sh = sl.shadow(slab);
      if (!sh || sh->size() != s->num) {
        in.broken = true;  // slab.pages reports it
        continue;
      }
      // Where the freelist must be.
      const std::uint64_t fl = p.slab.freelist;
      std::string where;
      if (OBJFREELIST_SLAB(*s)) {
        if (active == s->num) {
          if (fl) where = fmt::format("a full slab keeps a freelist at 0x{:x}", fl);
        } else {
          unsigned k;
          if (fl < s->obj_offset || !obj_to_index(*s, p, fl - s->obj_offset, &k))
            where = fmt::format("freelist 0x{:x} is in no object of the slab", fl);
        }
      } else if (OFF_SLAB(*s)) {
        const auto ref = fl ? sl.find_object(fl) : std::nullopt;
        if (!ref || ref->cache != s->freelist_cache || !ref->allocated || ref->object != fl)
          where = fmt::format("freelist 0x{:x} is no allocated object of the freelist cache", fl);
      } else if (fl != base + slab_bytes - s->freelist_size) {
        where = fmt::format("freelist 0x{:x} is not at the end of the slab (0x{:x})", fl,
                            base + slab_bytes - s->freelist_size);
      }
      if (!where.empty()) {
        bug(m, r, kFreelist, slab, fmt::format("slab pfn {:#x} of {}: {}", slab, name, where));
        in.broken = true;
        continue;
      }
      if (active == s->num) continue;
      for (unsigned i = active; i < s->num && !in.broken; ++i) {
        const unsigned idx = get_free_obj(m, p, i);
        if (idx >= s->num) {
          bug(m, r, kFreelist, slab,
              fmt::format("slab pfn {:#x} of {}: freelist[{}] = {} is out of range (num {})", slab,
                          name, i, idx, s->num));
          in.broken = true;
        } else if (in.mark[idx]) {
          bug(m, r, kFreelist, slab,
              fmt::format("slab pfn {:#x} of {}: object {} is on the freelist twice", slab, name,
                          idx));
          in.broken = true;
        } else if ((*sh)[idx].allocated) {
          bug(m, r, kFreelist, slab,
              fmt::format("slab pfn {:#x} of {}: allocated object 0x{:x} is on the freelist", slab,
                          name, index_to_obj(*s, p, idx) + s->obj_offset));
          in.broken = true;
        } else {
          in.mark[idx] |= ON_FREELIST;
        }
      }
      // OBJFREELIST: the array lives in the object that goes out last.
      if (!in.broken && OBJFREELIST_SLAB(*s) &&
          fl != index_to_obj(*s, p, get_free_obj(m, p, s->num - 1)) + s->obj_offset) {
        bug(m, r, kFreelist, slab,
            fmt::format("slab pfn {:#x} of {}: freelist 0x{:x} is not in its last free object",
                        slab, name, fl));
        in.broken = true;
      }
    }

    // ---- the per-CPU and shared arrays
    auto cached = [&](std::uint64_t objp, const std::string& what, int want_node) {
      const std::uint64_t slab =
          m.virt_addr_valid(objp) ? sl.slab_head(m.virt_to_pfn(objp)) : NO_PAGE;
      const auto sit = slab == NO_PAGE ? seen.end() : seen.find(slab);
      if (sit == seen.end()) {
        bug(m, r, kFreelist, slab,
            fmt::format("{} of {} holds 0x{:x}, which is in no slab of the cache", what, name,
                        objp));
        return;
      }
      SlabSeen& in = sit->second;
      const mm::page& p = m.pfn_to_page(slab);
      unsigned idx;
      if (in.mark.size() != s->num || !obj_to_index(*s, p, objp, &idx)) {
        bug(m, r, kFreelist, slab,
            fmt::format("{} of {} holds 0x{:x}, which is no object slot", what, name, objp));
        in.broken = true;
        return;
      }
      const auto* sh = sl.shadow(slab);
      if (sh && idx < sh->size() && (*sh)[idx].allocated) {
        bug(m, r, kFreelist, slab,
            fmt::format("{} of {} holds allocated object 0x{:x}", what, name,
                        objp + s->obj_offset));
        in.broken = true;
      } else if (in.mark[idx]) {
        bug(m, r, kFreelist, slab,
            fmt::format(
                "object 0x{:x} of {} is cached twice ({}{})", objp + s->obj_offset, name,
                (in.mark[idx] & CACHED) ? "twice in arrays, last " : "also on its freelist, ",
                what));
        in.broken = true;
      }
      if (want_node >= 0 && p.nid != want_node)
        bug(m, r, kFreelist, slab,
            fmt::format("{} of {} (node {}) holds 0x{:x} of node {}", what, name, want_node,
                        objp + s->obj_offset, p.nid));
      in.mark[idx] |= CACHED;
    };
    auto walk_array = [&](const mm::array_cache& ac, unsigned limit, const std::string& what,
                          int want_node) {
      if (ac.avail > ac.limit || ac.limit != limit || ac.entry.size() < ac.limit)
        bug(m, r, kCounts, NO_PAGE,
            fmt::format("{} of {}: avail {} limit {} (the cache says {}), {} entries", what, name,
                        ac.avail, ac.limit, limit, ac.entry.size()));
      const std::size_t nr = std::min<std::size_t>(ac.avail, ac.entry.size());
      for (std::size_t i = 0; i < nr; ++i) cached(ac.entry[i], what, want_node);
    };
    if (s->array.size() != m.nr_cpus())
      bug(m, r, kCounts, NO_PAGE,
          fmt::format("{} has {} per-CPU arrays for {} CPUs", name, s->array.size(), m.nr_cpus()));
    for (std::size_t cpu = 0; cpu < s->array.size(); ++cpu) {
      const mm::array_cache& ac = s->array[cpu];
      if (ac.batchcount != s->batchcount)
        bug(m, r, kCounts, NO_PAGE,
            fmt::format("cpu {} array of {}: batchcount {} but the cache says {}", cpu, name,
                        ac.batchcount, s->batchcount));
      const int node = cpu < m.nr_cpus() ? m.cpu_to_node(static_cast<int>(cpu)) : -1;
      walk_array(ac, s->limit, fmt::format("cpu {} array", cpu), node);
    }
    for (std::size_t nid = 0; nid < s->node.size(); ++nid)
      if (const auto& shared = s->node[nid].shared)
        walk_array(*shared, s->shared * s->batchcount, fmt::format("node {} shared array", nid),
                   static_cast<int>(nid));

    // ---- every free object is on its slab's freelist or in an array
    for (const auto& [slab, in] : seen) {
      if (in.broken) continue;
      const auto* sh = sl.shadow(slab);
      unsigned lost = 0, first = 0;
      for (unsigned i = 0; sh && i < s->num; ++i)
        if (!(*sh)[i].allocated && !in.mark[i] && !lost++) first = i;
      if (lost)
        bug(m, r, kCounts, slab,
            fmt::format("slab pfn {:#x} of {}: {} free objects (the first 0x{:x}) are neither on "
                        "its freelist nor cached",
                        slab, name, lost,
                        index_to_obj(*s, m.pfn_to_page(slab), first) + s->obj_offset));
    }
  }
}

}  // namespace mmfuzz::inv
