// SLOB. Control flow follows mm/slob.c of 6.1 (slob_lock is gone: the model
// is single threaded); the code is the model's own. Free blocks live in
// simulated RAM exactly as SLOB encodes them (slobidx_t units and next
// offsets), and kmalloc's size header sits in RAM in front of the object, so
// a client write into free memory or over a header really corrupts the heap.
// The model keeps its own shadow of the live blocks of each page, which lets
// it tell such corruption from its own state: it reports the corruption and
// rewrites the free list rather than follow it.
#include "mm/slab/slob.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

#include "mm/mm.h"

namespace mmfuzz::mm {
namespace slob {

const char* list_name(int l) {
  switch (l) {
    case kSmall:
      return "free_slob_small";
    case kMedium:
      return "free_slob_medium";
    case kLarge:
      return "free_slob_large";
    default:
      return "no list";
  }
}

}  // namespace slob

using namespace slob;

namespace {

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool is_power_of_2(std::uint64_t x) {
  return x && !(x & (x - 1));
}

// ALIGN(): the next multiple of a. The kernel masks, which is the same for
// the powers of two it expects; a multiple keeps odd alignments sane.
std::uint64_t align_up(std::uint64_t x, std::uint64_t a) {
  if (a <= 1) return x;
  return is_power_of_2(a) ? round_up(x, a) : (x + a - 1) / a * a;
}

}  // namespace

SlobAllocator::SlobAllocator(Slab& sl)
    : SlabAllocator(sl),
      mm_(sl.mm()),
      page_size_(sl.mm().profile.page_size()),
      // slobidx_t is s16 while PAGE_SIZE <= 32767 * 2, s32 beyond.
      unit_(page_size_ <= 32767 * 2 ? 2u : 4u),
      page_units_(static_cast<unsigned>(page_size_ / unit_)),
      // max(ARCH_KMALLOC_MINALIGN, arch_slab_minalign()): on arm64 6.1
      // ARCH_KMALLOC_MINALIGN is ARCH_DMA_MINALIGN (128).
      minalign_(std::max(sl.kmalloc_min_size(), ARCH_SLAB_MINALIGN)) {
  for (auto& l : lists_) l = sl.lists.new_list();
  // SLOB has no kmalloc caches. The model still needs a cache id for what
  // kmalloc() returns (ObjectRef, reports, the PG_slab pages' slab_cache):
  // a pseudo cache that is in no list, never merged and never destroyed.
  auto k = std::make_unique<kmem_cache>();
  k->id = static_cast<cache_id>(sl.caches.size() + 1);
  k->name = "kmalloc";
  k->align = minalign_;
  k->flags = SLAB_KMALLOC;
  k->kmalloc = true;
  k->refcount = -1;
  kmalloc_cache_ = k->id;
  sl.caches.push_back(std::move(k));
}

const SlobAllocator* slob_allocator(const Slab& sl) {
  return dynamic_cast<const SlobAllocator*>(sl.allocator.get());
}

SlobAllocator* slob_allocator(Slab& sl) {
  return dynamic_cast<SlobAllocator*>(sl.allocator.get());
}

page& SlobAllocator::pg(pfn_t pfn) {
  return mm_.pfn_to_page(pfn);
}

vaddr_t SlobAllocator::addr(pfn_t pfn) const {
  return mm_.page_address(pfn);
}

// ---------------------------------------------------------------- simulated RAM

std::int32_t SlobAllocator::read_idx(vaddr_t va) const {
  // Little endian, as arm64 stores it (and as the host is).
  if (unit_ == 2) return mm_.ram.load<std::int16_t>(mm_.__pa(va));
  return mm_.ram.load<std::int32_t>(mm_.__pa(va));
}

void SlobAllocator::write_idx(vaddr_t va, std::int32_t v) {
  if (unit_ == 2)
    mm_.ram.store(mm_.__pa(va), static_cast<std::int16_t>(v));
  else
    mm_.ram.store(mm_.__pa(va), v);
}

// set_slob(): a block of more than one unit holds its size and the offset of
// the next free block; a one-unit block holds minus the offset.
void SlobAllocator::set_slob(vaddr_t s, std::int32_t size, vaddr_t next) {
  const auto offset = static_cast<std::int32_t>(
      (static_cast<std::int64_t>(next) - static_cast<std::int64_t>(page_base(s))) / unit_);
  if (size > 1) {
    write_idx(s, size);
    write_idx(s + unit_, offset);
  } else {
    write_idx(s, -offset);
  }
}

vaddr_t SlobAllocator::block_next(vaddr_t b) const {
  const std::int32_t u = read_idx(b);
  const std::int64_t next = u < 0 ? -static_cast<std::int64_t>(u) : read_idx(b + unit_);
  return static_cast<vaddr_t>(static_cast<std::int64_t>(page_base(b)) + next * unit_);
}

// ---------------------------------------------------------------- the shadow

const PageShadow* SlobAllocator::shadow_of(pfn_t pfn) const {
  auto it = pages_.upper_bound(pfn);
  if (it == pages_.begin()) return nullptr;
  --it;
  return pfn < it->first + (pfn_t{1} << it->second.order) ? &it->second : nullptr;
}

const Block* SlobAllocator::live_block(vaddr_t a) const {
  if (!mm_.virt_addr_valid(a)) return nullptr;
  const PageShadow* ps = shadow_of(mm_.virt_to_pfn(a));
  if (!ps) return nullptr;
  auto it = std::upper_bound(ps->live.begin(), ps->live.end(), a,
                             [](vaddr_t x, const Block& b) { return x < b.start; });
  if (it == ps->live.begin()) return nullptr;
  --it;
  return a < it->end() ? &*it : nullptr;
}

Block SlobAllocator::make_block(vaddr_t start, vaddr_t object, std::uint64_t bytes,
                                std::uint32_t size, std::uint32_t requested,
                                std::uint32_t object_size, cache_id cache, bool kmalloc) const {
  Block b;
  b.start = start;
  b.object = object;
  b.bytes = bytes;
  b.size = size;
  b.requested = requested;
  b.object_size = object_size;
  b.cache = cache;
  b.kmalloc = kmalloc;
  b.alloc_seq = mm_.op_seq;
  b.alloc_site = mm_.call_site;
  b.alloc_cpu = static_cast<std::uint16_t>(mm_.cpu());
  return b;
}

Block& SlobAllocator::add_live(pfn_t head, Block b) {
  PageShadow& ps = pages_.at(head);
  // Records of freed blocks under the new one are stale now.
  std::erase_if(ps.freed, [&](const Block& f) { return f.start < b.end() && b.start < f.end(); });
  auto it = std::upper_bound(ps.live.begin(), ps.live.end(), b.start,
                             [](vaddr_t x, const Block& o) { return x < o.start; });
  return *ps.live.insert(it, b);
}

void SlobAllocator::record_freed(PageShadow& ps, Block b) {
  ps.freed.push_back(b);
  if (ps.freed.size() > kFreedPerPage) ps.freed.erase(ps.freed.begin());
}

void SlobAllocator::forget_orphans(pfn_t head, unsigned order) {
  const pfn_t end = head + (pfn_t{1} << order);
  std::erase_if(orphans_, [&](const Orphan& o) {
    return o.head < end && head < o.head + (pfn_t{1} << o.order);
  });
}

const Orphan* SlobAllocator::find_orphan(vaddr_t a) const {
  if (!mm_.virt_addr_valid(a)) return nullptr;
  const pfn_t pfn = mm_.virt_to_pfn(a);
  for (auto it = orphans_.rbegin(); it != orphans_.rend(); ++it) {
    if (pfn < it->head || pfn >= it->head + (pfn_t{1} << it->order)) continue;
    if (a < it->block.start || a >= it->block.end()) continue;
    // Only while the page is still free: once reallocated it is someone else's.
    if (mm_.page_alloc.owning_block(pfn, PAGE_OWNER_ALLOCATED) != NO_PAGE ||
        PageSlab(mm_.pfn_to_page(pfn)))
      return nullptr;
    return &*it;
  }
  return nullptr;
}

std::vector<std::pair<unsigned, unsigned>> SlobAllocator::expected_free(
    const PageShadow& ps) const {
  std::vector<std::pair<unsigned, unsigned>> out;
  const vaddr_t base = mm_.page_address(ps.head);
  std::uint64_t at = 0;  // units
  for (const Block& b : ps.live) {
    const std::uint64_t s = (b.start - base) / unit_;
    const std::uint64_t e = units(b.end() - base);
    if (s > at && s <= page_units_)
      out.emplace_back(static_cast<unsigned>(at), static_cast<unsigned>(s - at));
    at = std::max(at, e);
  }
  if (at < page_units_)
    out.emplace_back(static_cast<unsigned>(at), static_cast<unsigned>(page_units_ - at));
  return out;
}

// ---------------------------------------------------------------- page lists

void SlobAllocator::set_slob_page_free(pfn_t pfn, int list) {
  sl_.lists.add(lists_[list], pfn);  // list_add()
  pg(pfn).set(PG_private);           // __SetPageSlobFree()
  pages_.at(pfn).list = list;
}

void SlobAllocator::clear_slob_page_free(pfn_t pfn) {
  sl_.lists.del(pfn);
  pg(pfn).clear(PG_private);
  pages_.at(pfn).list = kNoList;
}

// list_rotate_to_front(): the head moves in front of pfn, so the next
// search starts at pfn and the pages before it go to the tail.
void SlobAllocator::list_rotate_to_front(pfn_t pfn, page_list head) {
  PageLists& l = sl_.lists;
  const std::uint32_t id = l.id_of(pfn);
  list_head& h = l.L(head);
  l.L(h.prev).next = h.next;
  l.L(h.next).prev = h.prev;
  const std::uint32_t prev = l.L(id).prev;
  h.prev = prev;
  h.next = id;
  l.L(prev).next = head;
  l.L(id).prev = head;
}

// ---------------------------------------------------------------- pages

// slob_new_pages(): SLOB counts every page it holds as unreclaimable slab.
pfn_t SlobAllocator::slob_new_pages(gfp_t gfp, unsigned order, int node, bool slob_page) {
  const pfn_t pfn = mm_.page_alloc.alloc_pages_node(node, gfp, order);
  if (pfn == NO_PAGE) return NO_PAGE;
  mm_.page_alloc.node_data[pg(pfn).nid].vm_stat[NR_SLAB_UNRECLAIMABLE_B] +=
      static_cast<long>(page_size_ << order);
  forget_orphans(pfn, order);
  PageShadow& ps = pages_[pfn];
  ps = PageShadow{};
  ps.head = pfn;
  ps.order = order;
  ps.slob_page = slob_page;
  return pfn;
}

// slob_free_pages(); the page's records of freed blocks outlive it a while.
void SlobAllocator::slob_free_pages(pfn_t pfn, unsigned order) {
  mm_.page_alloc.node_data[pg(pfn).nid].vm_stat[NR_SLAB_UNRECLAIMABLE_B] -=
      static_cast<long>(page_size_ << order);
  auto it = pages_.find(pfn);
  if (it != pages_.end()) {
    for (const Block& f : it->second.freed) {
      orphans_.push_back({pfn, order, f});
      if (orphans_.size() > kMaxOrphans) orphans_.pop_front();
    }
    pages_.erase(it);
  }
  mm_.page_alloc.__free_pages(pfn, order);
}

// ---------------------------------------------------------------- the heap

void SlobAllocator::verify_free_list(pfn_t pfn, const char* api) {
  const page& p = pg(pfn);
  if (!p.slab.inuse) return;  // full: the free list is not in use
  const auto it = pages_.find(pfn);
  if (it == pages_.end()) return;
  const auto expect = expected_free(it->second);
  std::uint64_t sum = 0;
  for (const auto& [off, n] : expect) sum += n;
  const vaddr_t base = mm_.page_address(pfn);
  // The page's own fields disagreeing with the shadow is a model bug the
  // checker reports; here only the RAM side, which clients can reach, counts.
  if (expect.empty() || sum != p.slab.inuse || p.slab.freelist != base + expect[0].first * unit_)
    return;
  vaddr_t cur = p.slab.freelist, bad = 0;
  for (std::size_t i = 0; i < expect.size() && !bad; ++i) {
    const vaddr_t want = base + std::uint64_t{expect[i].first} * unit_;
    if (cur != want || block_units(cur) != static_cast<std::int32_t>(expect[i].second)) {
      bad = cur == want ? cur : want;
      break;
    }
    const vaddr_t next = block_next(cur);
    const vaddr_t want_next = i + 1 < expect.size()
                                  ? base + std::uint64_t{expect[i + 1].first} * unit_
                                  : base + page_size_;
    if (next != want_next && !(i + 1 == expect.size() && next == base)) bad = cur;
    cur = next;
  }
  if (!bad) return;
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "SLOB free block at 0x%llx of pfn 0x%llx holds units=%d next=0x%llx, which "
                "is not the free list of its page: the list is rebuilt",
                static_cast<unsigned long long>(bad), static_cast<unsigned long long>(pfn),
                block_units(bad), static_cast<unsigned long long>(block_next(bad)));
  sl_.report(MisuseKind::slab_freeptr, nullptr, bad, 0, api, buf, 0, false, "Free list corrupt");
  for (std::size_t i = 0; i < expect.size(); ++i) {
    const vaddr_t next = i + 1 < expect.size() ? base + std::uint64_t{expect[i + 1].first} * unit_
                                               : base + page_size_;
    set_slob(base + std::uint64_t{expect[i].first} * unit_,
             static_cast<std::int32_t>(expect[i].second), next);
  }
}

// slob_page_alloc(): first fit in the page, aligning (block + align_offset).
vaddr_t SlobAllocator::slob_page_alloc(pfn_t pfn, std::uint64_t size, unsigned align,
                                       unsigned align_offset, bool* removed) {
  page& sp = pg(pfn);
  const auto nunits = static_cast<std::int64_t>(units(size));
  *removed = false;
  vaddr_t prev = 0, cur = sp.slab.freelist;
  for (unsigned guard = 0; guard <= page_units_; ++guard, prev = cur, cur = block_next(cur)) {
    if (page_base(cur) != addr(pfn)) return 0;  // verify_free_list() keeps this from happening
    std::int32_t avail = block_units(cur);
    std::int64_t delta = 0;
    vaddr_t aligned = cur;
    if (align) {
      aligned = align_up(cur + align_offset, align) - align_offset;
      delta = static_cast<std::int64_t>((aligned - cur) / unit_);
    }
    if (avail >= nunits + delta) {  // room enough?
      if (delta) {                  // need to fragment head to align?
        const vaddr_t next = block_next(cur);
        set_slob(aligned, static_cast<std::int32_t>(avail - delta), next);
        set_slob(cur, static_cast<std::int32_t>(delta), aligned);
        prev = cur;
        cur = aligned;
        avail = block_units(cur);
      }
      const vaddr_t next = block_next(cur);
      const vaddr_t after = cur + static_cast<std::uint64_t>(nunits) * unit_;
      if (avail == nunits) {  // exact fit? unlink.
        if (prev)
          set_slob(prev, block_units(prev), next);
        else
          sp.slab.freelist = next;
      } else {  // fragment
        if (prev)
          set_slob(prev, block_units(prev), after);
        else
          sp.slab.freelist = after;
        set_slob(after, static_cast<std::int32_t>(avail - nunits), next);
      }
      sp.slab.inuse = static_cast<std::uint16_t>(sp.slab.inuse - nunits);
      if (!sp.slab.inuse) {
        clear_slob_page_free(pfn);
        *removed = true;
      }
      return cur;
    }
    if (slob_last(cur)) return 0;
  }
  return 0;
}

// slob_alloc(): the first page of the list with room, next fit.
vaddr_t SlobAllocator::slob_alloc(std::uint64_t size, gfp_t gfp, unsigned align, int node,
                                  unsigned align_offset) {
  const int list = list_for(size);
  const page_list head = lists_[list];
  PageLists& l = sl_.lists;
  vaddr_t b = 0;
  std::uint64_t guard = 0;
  for (std::uint32_t id = l.L(head).next; id != head && ++guard <= pages_.size() + 1;
       id = l.L(id).next) {
    const pfn_t pfn = l.pfn_of(id);
    const page& sp = pg(pfn);
    // A node was asked for: only its pages.
    if (node != NUMA_NO_NODE && sp.nid != node) continue;
    if (sp.slab.inuse < units(size)) continue;  // enough room on this page?
    verify_free_list(pfn, "slob_alloc");
    bool removed = false;
    b = slob_page_alloc(pfn, size, align, align_offset, &removed);
    if (!b) continue;
    // Improve fragment distribution and reduce the average search time by
    // starting the next search here (Knuth vol 1, sec 2.5, pg 449).
    if (!removed && l.L(head).next != id) {
      list_rotate_to_front(pfn, head);
      mm_.count_vm_event(SLOB_LIST_ROTATE);
    }
    break;
  }
  if (!b) {  // not enough space: a new page
    const pfn_t pfn = slob_new_pages(gfp & ~__GFP_ZERO, 0, node, true);
    if (pfn == NO_PAGE) return 0;
    mm_.count_vm_event(SLOB_PAGE_ALLOC);
    page& sp = pg(pfn);
    sp.set(PG_slab);  // __folio_set_slab()
    sp.slab = {};
    sp.slab.cache = kmalloc_cache_;  // SLOB pages belong to no cache; see the constructor
    sp.slab.objects = static_cast<std::uint16_t>(page_units_);
    sp.slab.inuse = static_cast<std::uint16_t>(page_units_);
    const vaddr_t base = addr(pfn);
    sp.slab.freelist = base;
    set_slob(base, static_cast<std::int32_t>(page_units_), base + page_size_);
    set_slob_page_free(pfn, list);
    bool unused = false;
    b = slob_page_alloc(pfn, size, align, align_offset, &unused);
    if (!b) {
      // BUG_ON(!b): the alignment cannot be met inside one page.
      sl_.report(MisuseKind::slab_bad_cache, nullptr, 0, 0, "slob_alloc",
                 "kernel BUG at mm/slob.c: no room for " + std::to_string(size) +
                     " bytes aligned to " + std::to_string(align) + " in an empty page");
      clear_slob_page_free(pfn);
      sp.clear(PG_slab);
      sp.slab = {};
      slob_free_pages(pfn, 0);
      mm_.count_vm_event(SLOB_PAGE_FREE);
      return 0;
    }
  }
  if (gfp & __GFP_ZERO) {
    // Planted defect (differential self-test): the last word stays.
    if (mm_.planted(PlantedDefect::slob_zero_short) && size > 8) [[unlikely]]
      size -= 8;
    mm_.ram.zero(mm_.__pa(b), size);
  }
  return b;
}

// slob_free(): back into the page's address-ordered free list, merging
// with the neighbours; a page that becomes entirely free goes back to the
// page allocator.
void SlobAllocator::slob_free(vaddr_t block, std::uint64_t size) {
  const pfn_t pfn = mm_.virt_to_pfn(block);
  page& sp = pg(pfn);
  std::int32_t nunits = static_cast<std::int32_t>(units(size));
  if (sp.slab.inuse + static_cast<unsigned>(nunits) == page_units_) {
    // Go directly to the page allocator. Do not pass the slob allocator.
    if (sp.test(PG_private)) clear_slob_page_free(pfn);
    sp.clear(PG_slab);  // __folio_clear_slab()
    sp.slab = {};
    slob_free_pages(pfn, 0);
    mm_.count_vm_event(SLOB_PAGE_FREE);
    return;
  }
  if (!sp.test(PG_private)) {
    // This slob page is about to become partially free. Easy!
    sp.slab.inuse = static_cast<std::uint16_t>(nunits);
    sp.slab.freelist = block;
    set_slob(block, nunits, page_base(block) + page_size_);
    set_slob_page_free(pfn, list_for(size));
    return;
  }
  // Otherwise the page is already partially free: find the reinsertion point.
  sp.slab.inuse = static_cast<std::uint16_t>(sp.slab.inuse + nunits);
  const vaddr_t fl = sp.slab.freelist;
  if (block < fl) {
    vaddr_t next = fl;
    if (block + static_cast<std::uint64_t>(nunits) * unit_ == fl) {
      // Planted defect (fuzz self-test): the units of the block merged in
      // are counted again, as if sp->units were updated after the merge.
      if (mm_.planted(PlantedDefect::slob_units_double_count)) [[unlikely]]
        sp.slab.inuse = static_cast<std::uint16_t>(sp.slab.inuse + block_units(fl));
      nunits += block_units(fl);
      next = block_next(fl);
    }
    set_slob(block, nunits, next);
    sp.slab.freelist = block;
    return;
  }
  vaddr_t prev = fl, next = block_next(prev);
  for (unsigned guard = 0; block > next && guard <= page_units_; ++guard) {
    prev = next;
    next = block_next(prev);
  }
  if (!slob_last(prev) && block + static_cast<std::uint64_t>(nunits) * unit_ == next) {
    nunits += block_units(next);
    set_slob(block, nunits, block_next(next));
  } else {
    set_slob(block, nunits, next);
  }
  if (prev + static_cast<std::uint64_t>(block_units(prev)) * unit_ == block)
    set_slob(prev, block_units(block) + block_units(prev), block_next(block));
  else
    set_slob(prev, block_units(prev), block);
}

// Frees a live block: SLOB heap blocks through slob_free(), page-backed ones
// through slob_free_pages().
void SlobAllocator::free_block(pfn_t head, vaddr_t start) {
  auto pit = pages_.find(head);
  if (pit == pages_.end()) return;
  PageShadow& ps = pit->second;
  auto it = std::find_if(ps.live.begin(), ps.live.end(),
                         [&](const Block& b) { return b.start == start; });
  if (it == ps.live.end()) return;
  if (ps.slob_page) verify_free_list(head, "slob_free");  // while the block still counts as live
  Block b = *it;
  ps.live.erase(it);
  if (!b.rcu_pending) {
    b.free_seq = mm_.op_seq;
    b.free_site = mm_.call_site;
    b.free_cpu = static_cast<std::uint16_t>(mm_.cpu());
  }
  b.rcu_pending = false;
  if (ps.slob_page) {
    record_freed(ps, b);
    // kfree(): slob_free(m, *m + align); kmem_cache_free(): slob_free(b, c->size)
    slob_free(b.start, b.kmalloc ? std::uint64_t{b.size} + minalign_ : b.size);
    return;
  }
  if (b.kmalloc) {
    auto& large = const_cast<std::vector<std::pair<pfn_t, std::uint64_t>>&>(sl_.large_kmallocs());
    std::erase_if(large, [&](const auto& e) { return e.first == head; });
  } else {
    pg(head).clear(PG_slab);
    pg(head).slab = {};
  }
  record_freed(ps, b);
  slob_free_pages(head, ps.order);
}

// ---------------------------------------------------------------- kmem_cache

bool SlobAllocator::create(kmem_cache& s) {
  // __kmem_cache_create(): SLOB keeps the size, leaving room for the RCU
  // footer. The actual allocation happens in slob_alloc_node().
  if (s.flags & SLAB_TYPESAFE_BY_RCU) s.size += SLOB_RCU_SIZE;
  return true;
}

vaddr_t SlobAllocator::alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) {
  if (s.id == kmalloc_cache_) {
    sl_.report(MisuseKind::slab_bad_cache, &s, 0, 0, "kmem_cache_alloc",
               "kmem_cache_alloc() of SLOB's kmalloc, which is no kmem_cache");
    return 0;
  }
  // slob_alloc_node()
  vaddr_t b;
  if (s.size < page_size_) {
    b = slob_alloc(s.size, gfp, s.align, node, 0);
    if (!b) return 0;
    add_live(mm_.virt_to_pfn(b), make_block(b, b, units(s.size) * unit_, s.size, orig_size,
                                            s.object_size, s.id, false));
  } else {
    // slob_new_pages(flags, get_order(c->size), node). The kernel leaves
    // these plain pages; the model makes them a compound PG_slab block, as
    // the slab layer finds objects (kmem_cache_free(), KASAN, the checkers)
    // through PG_slab pages and a compound head.
    const unsigned order = fls64((std::uint64_t{s.size} - 1) >> mm_.profile.page_shift);
    const pfn_t pfn = slob_new_pages(gfp | (order ? __GFP_COMP : 0), order, node, false);
    if (pfn == NO_PAGE) return 0;
    page& p = pg(pfn);
    p.set(PG_slab);
    p.slab = {};
    p.slab.cache = s.id;
    p.slab.objects = 1;
    p.slab.inuse = 1;
    b = addr(pfn);
    add_live(pfn,
             make_block(b, b, page_size_ << order, s.size, orig_size, s.object_size, s.id, false));
  }
  if (s.ctor.present) mm_.ram.fill(mm_.__pa(b), s.object_size, s.ctor.fill);  // c->ctor(b)
  return b;
}

void SlobAllocator::free(kmem_cache& s, vaddr_t obj) {
  if (s.id == kmalloc_cache_) {
    sl_.report(MisuseKind::slab_bad_cache, &s, obj, obj, "kmem_cache_free",
               "kmem_cache_free() with SLOB's kmalloc, which is no kmem_cache");
    return;
  }
  const PageShadow* ps = shadow_of(mm_.virt_to_pfn(obj));
  const Block* blk = live_block(obj);
  if (!ps || !blk || blk->object != obj || blk->rcu_pending) return;  // validated by the caller
  const pfn_t head = ps->head;
  if (s.flags & SLAB_TYPESAFE_BY_RCU) {
    // The slob_rcu footer at the end of the block, then call_rcu().
    const vaddr_t footer = obj + s.size - SLOB_RCU_SIZE;
    std::uint8_t f[SLOB_RCU_SIZE_OFFSET + 4] = {};
    const std::int32_t size = static_cast<std::int32_t>(s.size);
    std::memcpy(f + SLOB_RCU_SIZE_OFFSET, &size, 4);
    mm_.ram.write(mm_.__pa(footer), f);
    Block& b = *const_cast<Block*>(blk);
    b.rcu_pending = true;
    b.free_seq = mm_.op_seq;
    b.free_site = mm_.call_site;
    b.free_cpu = static_cast<std::uint16_t>(mm_.cpu());
    rcu_.push_back({head, b.start});
    if (rcu_.size() > kMaxRcuPending) run_rcu(1);
    return;
  }
  free_block(head, blk->start);
}

// kmem_rcu_free() for the n oldest callbacks: a grace period has passed.
void SlobAllocator::run_rcu(std::size_t n) {
  for (; n && !rcu_.empty(); --n) {
    const RcuPending r = rcu_.front();
    rcu_.pop_front();
    const PageShadow* ps = shadow_of(r.head);
    const Block* b = ps ? live_block(r.start) : nullptr;
    if (!b || b->start != r.start || !b->rcu_pending) continue;
    // The callback finds the size in the footer; a write after the free may
    // have changed it.
    std::uint8_t f[4];
    mm_.ram.read(mm_.__pa(b->start + b->size - SLOB_RCU_SIZE + SLOB_RCU_SIZE_OFFSET), f);
    std::int32_t size;
    std::memcpy(&size, f, 4);
    if (size != static_cast<std::int32_t>(b->size))
      sl_.report(MisuseKind::slab_freeptr, sl_.cache(b->cache), b->start, b->object,
                 "kmem_rcu_free",
                 "kmem_rcu_free(): the slob_rcu footer of " + hex(b->object) + " says size " +
                     std::to_string(size) + ", the cache's is " + std::to_string(b->size) +
                     "; freed with the cache's size",
                 0, false, "slob_rcu corrupt");
    free_block(r.head, r.start);
  }
}

void SlobAllocator::tick() {
  run_rcu(rcu_.size());
}

int SlobAllocator::shrink(kmem_cache&) {
  return 0;  // __kmem_cache_shrink(): nothing to give back
}

bool SlobAllocator::shutdown(kmem_cache& s) {
  // kmem_cache_destroy() waits for RCU callbacks (rcu_barrier()). SLOB's
  // __kmem_cache_shutdown() cannot tell whether objects remain; the model
  // can, and refuses as the other allocators do.
  run_rcu(rcu_.size());
  for (const auto& [pfn, ps] : pages_)
    for (const Block& b : ps.live)
      if (b.cache == s.id) return false;
  return true;
}

// The cache is gone: so are the records of its freed objects, which would
// otherwise name a dead cache.
void SlobAllocator::release(kmem_cache& s) {
  for (auto& [pfn, ps] : pages_)
    std::erase_if(ps.freed, [&](const Block& b) { return b.cache == s.id; });
  std::erase_if(orphans_, [&](const Orphan& o) { return o.block.cache == s.id; });
}

unsigned SlobAllocator::objects_per_page(const kmem_cache& s) const {
  if (s.size >= page_size_) return 1;
  const std::uint64_t bytes = units(s.size) * unit_;
  const std::uint64_t align = std::max<std::uint64_t>(s.align, unit_);
  unsigned n = 0;
  for (std::uint64_t at = 0; at + bytes <= page_size_; at = align_up(at + bytes, align)) ++n;
  return n;
}

// The kernel has no /proc/slabinfo with SLOB (it is a SLAB/SLUB file). The
// model prints a line anyway, meaning:
//   active_objs   live objects of the cache (not those waiting for RCU)
//   num_objs      num_slabs * objperslab: what those pages could hold
//   objsize       c->size (object_size, plus the RCU footer)
//   objperslab    objects of this cache an empty page holds, first fit
//                 with the cache's alignment (1 for page-backed objects)
//   pagesperslab  1, or the pages of one page-backed object
//   num_slabs     pages (page-backed objects) holding objects of the cache;
//                 SLOB pages are shared, so one page may count for several
//   tunables and shared_avail: 0 (SLOB has none)
SlabInfo SlobAllocator::slabinfo(const kmem_cache& s) const {
  SlabInfo i;
  for (const auto& [pfn, ps] : pages_) {
    bool mine = false;
    for (const Block& b : ps.live) {
      if (b.cache != s.id) continue;
      mine = true;
      if (!b.rcu_pending) ++i.active_objs;
    }
    if (mine) ++i.num_slabs;
  }
  i.objsize = s.size;
  i.objperslab = objects_per_page(s);
  i.pagesperslab =
      s.size < page_size_ ? 1u : 1u << fls64((std::uint64_t{s.size} - 1) >> mm_.profile.page_shift);
  i.num_objs = std::max<std::uint64_t>(i.num_slabs * i.objperslab, i.active_objs);
  i.active_slabs = i.num_slabs;
  return i;
}

// __ksize() reads the size header in front of a kmalloc object ("can't use
// ksize for kmem_cache_alloc memory, only kmalloc"). The common layer asks
// by cache; which kmalloc object it means is the one find_object() found
// just before. ksize() also unpoisons the usable size (KASAN), which the
// common layer can only do in its own shadow: the model does it here, for
// krealloc() too, so accesses up to ksize() are never reported.
unsigned SlobAllocator::ksize(const kmem_cache& s) const {
  const pfn_t head = std::exchange(last_head_, NO_PAGE);
  const vaddr_t start = std::exchange(last_start_, 0);
  if (s.id != kmalloc_cache_) return s.object_size;
  if (head == NO_PAGE) return 0;
  Block* b = const_cast<Block*>(live_block(start));
  if (!b || b->start != start || b->cache != s.id) return 0;
  const auto ks = static_cast<unsigned>(units(b->size) * unit_);  // SLOB_UNITS(*m) * SLOB_UNIT
  b->requested = std::max(b->requested, ks);
  return ks;
}

std::optional<ObjectRef> SlobAllocator::ref_of(pfn_t head, const Block& b, bool allocated) const {
  ObjectRef r;
  r.cache = b.cache;
  r.slab = head;
  r.object = b.object;
  r.index = static_cast<unsigned>((b.start - mm_.page_address(head)) / unit_);
  r.size = b.kmalloc ? b.size : b.object_size;
  r.allocated = allocated;
  r.requested = b.requested;
  return r;
}

std::optional<ObjectRef> SlobAllocator::find_object(vaddr_t a) const {
  if (!mm_.virt_addr_valid(a)) return std::nullopt;
  if (const PageShadow* ps = shadow_of(mm_.virt_to_pfn(a))) {
    if (const Block* b = live_block(a)) {
      // Large kmallocs are no slab objects, as with the other allocators.
      if (b->kmalloc && !ps->slob_page) return std::nullopt;
      if (!b->rcu_pending) {
        last_head_ = ps->head;
        last_start_ = b->start;
      }
      return ref_of(ps->head, *b, !b->rcu_pending);
    }
    for (auto it = ps->freed.rbegin(); it != ps->freed.rend(); ++it)
      if (a >= it->start && a < it->end()) return ref_of(ps->head, *it, false);
    return std::nullopt;
  }
  if (const Orphan* o = find_orphan(a)) {
    if (o->block.kmalloc && o->block.start == o->block.object) return std::nullopt;
    return ref_of(o->head, o->block, false);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- kmalloc

// __do_kmalloc_node()
vaddr_t SlobAllocator::kmalloc(std::uint64_t size, gfp_t gfp, int node) {
  if (size < page_size_ - minalign_) {
    unsigned align = minalign_;
    // For power of two sizes, guarantee natural alignment.
    if (is_power_of_2(size)) align = std::max(minalign_, static_cast<unsigned>(size));
    if (!size) return ZERO_SIZE_PTR;
    const vaddr_t m = slob_alloc(size + minalign_, gfp, align, node, minalign_);
    if (!m) return 0;
    const auto header = static_cast<std::uint32_t>(size);  // *m = size
    std::uint8_t h[4];
    std::memcpy(h, &header, 4);
    mm_.ram.write(mm_.__pa(m), h);
    const vaddr_t ret = m + minalign_;
    add_live(mm_.virt_to_pfn(m), make_block(m, ret, units(size + minalign_) * unit_, header, header,
                                            header, kmalloc_cache_, true));
    return ret;
  }
  const unsigned order = fls64((size - 1) >> mm_.profile.page_shift);  // get_order()
  if (order) gfp |= __GFP_COMP;
  const pfn_t pfn = slob_new_pages(gfp, order, node, false);
  if (pfn == NO_PAGE) return 0;
  mm_.count_vm_event(SLOB_LARGE_KMALLOC);
  const vaddr_t ret = addr(pfn);
  const auto req = static_cast<std::uint32_t>(std::min<std::uint64_t>(size, ~std::uint32_t{0}));
  add_live(pfn, make_block(ret, ret, page_size_ << order, req, req, req, kmalloc_cache_, true));
  // The common layer knows large kmallocs by their pages (ksize(),
  // krealloc(), KASAN bounds, the checkers); SLOB's go into its list too.
  auto& large = const_cast<std::vector<std::pair<pfn_t, std::uint64_t>>&>(sl_.large_kmallocs());
  large.insert(std::lower_bound(large.begin(), large.end(), std::make_pair(pfn, std::uint64_t{0})),
               {pfn, size});
  return ret;
}

void SlobAllocator::kfree(vaddr_t p) {
  if (!mm_.virt_addr_valid(p)) {
    sl_.report(MisuseKind::slab_invalid_free, nullptr, p, 0, "kfree",
               "kfree() of an address outside the linear map");
    return;
  }
  const pfn_t pfn = mm_.virt_to_pfn(p);
  const PageShadow* ps = shadow_of(pfn);
  const Block* b = live_block(p);
  if (b && b->object == p && !b->rcu_pending) {
    const kmem_cache* s = sl_.cache(b->cache);
    if (!b->kmalloc) {
      sl_.report(MisuseKind::slab_invalid_free, s, p, p, "kfree",
                 "kfree() of an object of " + (s ? s->name : std::string("?")) +
                     ": SLOB kfree()s only what kmalloc() returned");
      return;
    }
    if (!ps->slob_page) {
      // !folio_test_slab(): folio_order(), NR_SLAB_UNRECLAIMABLE_B, __free_pages()
      free_block(ps->head, b->start);
      return;
    }
    // unsigned int *m = block - align; slob_free(m, *m + align)
    std::uint8_t h[4];
    mm_.ram.read(mm_.__pa(b->start), h);
    std::uint32_t m;
    std::memcpy(&m, h, 4);
    if (m != b->size) {
      sl_.report(MisuseKind::slab_redzone, s, b->start, p, "kfree",
                 "kfree(" + hex(p) + "): the size header at " + hex(b->start) + " reads " +
                     std::to_string(m) + ", kmalloc() wrote " + std::to_string(b->size) +
                     "; the object is not freed",
                 0, false, "SLOB size header overwritten");
      const std::uint32_t good = b->size;
      std::memcpy(h, &good, 4);
      mm_.ram.write(mm_.__pa(b->start), h);  // restored, as SLUB restores red zones
      return;
    }
    free_block(ps->head, b->start);
    return;
  }
  // Not a live kmalloc object: freed before, or never one.
  const Block* freed = nullptr;
  if (b && b->rcu_pending && b->object == p) freed = b;
  if (ps && !b)
    for (auto it = ps->freed.rbegin(); it != ps->freed.rend() && !freed; ++it)
      if (p >= it->start && p < it->end()) freed = &*it;
  if (!ps)
    if (const Orphan* o = find_orphan(p)) freed = &o->block;
  if (freed && freed->object == p) {
    sl_.report(MisuseKind::slab_double_free, sl_.cache(freed->cache), p, p, "kfree",
               "Object already free");
    return;
  }
  if (const Block* in = b ? b : freed) {
    sl_.report(MisuseKind::slab_invalid_free, sl_.cache(in->cache), p, in->object, "kfree",
               "kfree(" + hex(p) + ") is not the start of the object at " + hex(in->object));
    return;
  }
  sl_.report(MisuseKind::slab_invalid_free, nullptr, p, 0, "kfree",
             "kfree() of something that is neither a SLOB object nor a large kmalloc");
}

void SlobAllocator::for_each_allocated(const std::function<void(const LiveObject&)>& f) const {
  for (const auto& [head, ps] : pages_)
    for (const slob::Block& b : ps.live)
      if (!b.rcu_pending) f({b.cache, b.object, b.requested, b.alloc_seq, b.alloc_site});
}

std::unique_ptr<SlabAllocator> make_slob(Slab& sl) {
  return std::make_unique<SlobAllocator>(sl);
}

}  // namespace mmfuzz::mm
