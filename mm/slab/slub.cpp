// SLUB. Control flow follows mm/slub.c of 6.1 (the lockless cmpxchg paths
// become plain updates: the model is single threaded); the code is the
// model's own. Free pointers live in simulated RAM, obfuscated as
// SLAB_FREELIST_HARDENED does, so a client write into a free object really
// corrupts the freelist.
#include "mm/slab/slub.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "mm/mm.h"

namespace mmfuzz::mm {
namespace slub {

unsigned calculate_order(unsigned size, unsigned nr_cpus, unsigned max_order, unsigned page_shift) {
  const unsigned slub_max_order = 3;  // PAGE_ALLOC_COSTLY_ORDER
  const auto order_objects = [&](unsigned order) {
    return static_cast<unsigned>((std::uint64_t{1} << (page_shift + order)) / size);
  };
  const auto get_order = [&](std::uint64_t bytes) { return fls64((bytes - 1) >> page_shift); };
  const auto calc_slab_order = [&](unsigned min_objects, unsigned max,
                                   unsigned fract_leftover) -> unsigned {
    if (order_objects(0) > MAX_OBJS_PER_PAGE)
      return get_order(std::uint64_t{size} * MAX_OBJS_PER_PAGE) - 1;
    unsigned order = std::max(0u, get_order(std::uint64_t{min_objects} * size));
    for (; order <= max; ++order) {
      const std::uint64_t slab_size = std::uint64_t{1} << (page_shift + order);
      const std::uint64_t rem = slab_size % size;
      if (rem <= slab_size / fract_leftover) break;
    }
    return order;
  };
  unsigned min_objects = 4 * (fls64(nr_cpus) + 1);
  const unsigned max_objects = order_objects(slub_max_order);
  min_objects = std::min(min_objects, max_objects);
  while (min_objects > 1) {
    for (unsigned fraction = 16; fraction >= 4; fraction /= 2) {
      const unsigned order = calc_slab_order(min_objects, slub_max_order, fraction);
      if (order <= slub_max_order) return order;
    }
    min_objects--;
  }
  unsigned order = calc_slab_order(1, slub_max_order, 1);
  if (order <= slub_max_order) return order;
  order = calc_slab_order(1, max_order, 1);
  return order < max_order ? order : ~0u;
}

namespace {
void store64(Mm& mm, vaddr_t va, std::uint64_t v) {
  mm.ram.store64(mm.__pa(va), v);
}
}  // namespace

Track get_track(const Mm& mm, const kmem_cache& s, vaddr_t object, bool free) {
  const vaddr_t at = object + track_offset(s) + (free ? SLUB_TRACK_SIZE : 0);
  std::uint8_t b[SLUB_TRACK_SIZE];
  mm.ram.read(mm.__pa(at), b);
  Track t;
  std::memcpy(&t.addr, b, 8);
  std::memcpy(&t.handle, b + 8, 4);
  std::memcpy(&t.cpu, b + 12, 4);
  std::memcpy(&t.pid, b + 16, 4);
  std::memcpy(&t.when, b + 24, 8);
  return t;
}

namespace {
// check_bytes_and_report(): the first and last byte of [start, start+len)
// that differ from value.
void check_bytes(const Mm& mm, std::vector<SlubFinding>& out, MisuseKind kind, const char* what,
                 vaddr_t object, vaddr_t start, std::uint8_t value, std::uint64_t len) {
  if (!len) return;
  std::vector<std::uint8_t> buf(len);
  mm.ram.read(mm.__pa(start), buf);
  std::uint64_t i = 0;
  while (i < len && buf[i] == value) ++i;
  if (i == len) return;
  std::uint64_t e = len;
  while (e > i && buf[e - 1] == value) --e;
  out.push_back({kind, what, start + i, start + e, buf[i], value, start + i - object, value});
}
}  // namespace

std::vector<SlubFinding> check_object(const Mm& mm, const kmem_cache& s, pfn_t slab, vaddr_t object,
                                      std::uint8_t val) {
  std::vector<SlubFinding> out;
  const vaddr_t endobject = object + s.object_size;
  if (s.flags & SLAB_RED_ZONE) {
    check_bytes(mm, out, MisuseKind::slab_redzone, "Left Redzone", object, object - s.red_left_pad,
                val, s.red_left_pad);
    check_bytes(mm, out, MisuseKind::slab_redzone, "Right Redzone", object, endobject, val,
                s.inuse - s.object_size);
  } else if ((s.flags & SLAB_POISON) && s.object_size < s.inuse) {
    check_bytes(mm, out, MisuseKind::slab_padding, "Alignment padding", object, endobject,
                POISON_INUSE, s.inuse - s.object_size);
  }
  if (s.flags & SLAB_POISON) {
    if (val != SLUB_RED_ACTIVE && (s.flags & __OBJECT_POISON)) {
      check_bytes(mm, out, MisuseKind::slab_poison, "Poison", object, object, POISON_FREE,
                  s.object_size - 1);
      check_bytes(mm, out, MisuseKind::slab_poison, "End Poison", object,
                  object + s.object_size - 1, POISON_END, 1);
    }
    // check_pad_bytes()
    std::uint64_t off = get_info_end(s);
    if (s.flags & SLAB_STORE_USER) {
      off += 2 * SLUB_TRACK_SIZE;
      if (s.flags & SLAB_KMALLOC) off += 4;
    }
    if (size_from_object(s) > off)
      check_bytes(mm, out, MisuseKind::slab_padding, "Object padding", object, object + off,
                  POISON_INUSE, size_from_object(s) - off);
  }
  if (!freeptr_outside_object(s) && val == SLUB_RED_ACTIVE)
    return out;  // the object owns its free pointer
  const vaddr_t fp = get_freepointer(mm, s, object);
  if (!check_valid_pointer(mm, s, slab, fp))
    out.push_back({MisuseKind::slab_freeptr, "Freepointer corrupt", object + s.offset,
                   object + s.offset + 8, 0, 0, s.offset, 0});
  return out;
}

std::string finding_line(const SlubFinding& f) {
  char buf[160];
  if (f.kind == MisuseKind::slab_freeptr) {
    std::snprintf(buf, sizeof buf, "Freepointer at 0x%llx points to no object of this slab",
                  static_cast<unsigned long long>(f.fault));
  } else {
    std::snprintf(buf, sizeof buf, "0x%llx-0x%llx @offset=%llu. First byte 0x%x instead of 0x%x",
                  static_cast<unsigned long long>(f.fault),
                  static_cast<unsigned long long>(f.end - 1),
                  static_cast<unsigned long long>(f.offset), f.first, f.expected);
  }
  return buf;
}

std::vector<SlubFinding> check_slab_padding(const Mm& mm, const kmem_cache& s, pfn_t slab) {
  std::vector<SlubFinding> out;
  if (!(s.flags & SLAB_POISON)) return out;
  const page& p = mm.pfn_to_page(slab);
  const unsigned order = PageHead(p) ? mm.pfn_to_page(slab + 1).compound_order : 0;
  const std::uint64_t length = mm.profile.page_size() << order;
  const std::uint64_t used = std::uint64_t{p.slab.objects} * s.size;
  const vaddr_t start = mm.page_address(slab);
  if (length > used)
    check_bytes(mm, out, MisuseKind::slab_padding, "Padding", start, start + used, POISON_INUSE,
                length - used);
  return out;
}

}  // namespace slub

namespace {

using namespace slub;

class Slub final : public SlabAllocator {
 public:
  explicit Slub(Slab& sl) : SlabAllocator(sl), mm_(sl.mm()) {}
  const char* name() const override { return "slub"; }
  bool create(kmem_cache& s) override;
  vaddr_t alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) override;
  void free(kmem_cache& s, vaddr_t obj) override;
  void free_object(kmem_cache& s, const ObjectRef& ref) override;
  int shrink(kmem_cache& s) override;
  bool shutdown(kmem_cache& s) override;
  void release(kmem_cache& s) override;
  SlabInfo slabinfo(const kmem_cache& s) const override;
  unsigned ksize(const kmem_cache& s) const override;
  std::optional<ObjectRef> find_object(vaddr_t addr) const override;
  bool find_object_in(pfn_t slab, vaddr_t addr, ObjectRef* out) const override;

 private:
  page& pg(pfn_t pfn) { return mm_.pfn_to_page(pfn); }
  unsigned slab_order(pfn_t slab) const {
    const page& p = mm_.pfn_to_page(slab);
    return PageHead(p) ? mm_.pfn_to_page(slab + 1).compound_order : 0;
  }
  kmem_cache_node& get_node(kmem_cache& s, pfn_t slab) { return s.node[mm_.pfn_to_page(slab).nid]; }
  void set_freepointer(const kmem_cache& s, vaddr_t obj, vaddr_t fp) {
    const vaddr_t at = obj + s.offset;
    store64(mm_, at, freelist_ptr(s, fp, at));
  }
  // Following a free pointer: one that points outside the slab is reported
  // and ends the list (the kernel would crash on it).
  vaddr_t next_free(kmem_cache& s, pfn_t slab, vaddr_t obj) {
    const vaddr_t fp = get_freepointer(mm_, s, obj);
    if (check_valid_pointer(mm_, s, slab, fp)) [[likely]]
      return fp;
    return bad_freepointer(s, obj, fp);
  }
  vaddr_t bad_freepointer(kmem_cache& s, vaddr_t obj, vaddr_t fp);
  unsigned index_of(const kmem_cache& s, pfn_t slab, vaddr_t obj) const {
    return reciprocal_divide(
        static_cast<std::uint32_t>(obj - mm_.page_address(slab) - s.red_left_pad),
        s.reciprocal_size);
  }

  // slabs
  pfn_t new_slab(kmem_cache& s, gfp_t gfp, int node);
  void discard_slab(kmem_cache& s, pfn_t slab);
  void setup_object(kmem_cache& s, vaddr_t obj);
  void init_object(kmem_cache& s, vaddr_t obj, std::uint8_t val, bool right_redzone = true);
  void set_track(kmem_cache& s, vaddr_t obj, bool free);
  void add_partial(kmem_cache_node& n, pfn_t slab, bool tail) {
    n.nr_partial++;
    if (tail)
      sl_.lists.add_tail(n.partial, slab);
    else
      sl_.lists.add(n.partial, slab);
  }
  void remove_partial(kmem_cache_node& n, pfn_t slab) {
    sl_.lists.del(slab);
    n.nr_partial--;
  }
  void add_full(kmem_cache& s, kmem_cache_node& n, pfn_t slab) {
    if (s.flags & SLAB_STORE_USER) sl_.lists.add(n.full, slab);
  }
  void remove_full(kmem_cache& s, pfn_t slab) {
    if (s.flags & SLAB_STORE_USER) sl_.lists.del(slab);
  }

  // allocation
  vaddr_t slab_alloc_slow(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size);
  vaddr_t alloc_debug(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size);
  vaddr_t get_partial(kmem_cache& s, int node, pfn_t* slab_out);
  vaddr_t get_freelist(kmem_cache& s, pfn_t slab);
  void deactivate_slab(kmem_cache& s, pfn_t slab, vaddr_t freelist);
  void put_cpu_partial(kmem_cache& s, pfn_t slab, bool drain);
  void unfreeze_partials(kmem_cache& s, pfn_t chain);
  void flush_cpu_slab(kmem_cache& s, unsigned cpu);
  void flush_all(kmem_cache& s) {
    for (unsigned cpu = 0; cpu < s.cpu_slab.size(); ++cpu) flush_cpu_slab(s, cpu);
  }
  bool node_match(pfn_t slab, int node) const {
    return node == NUMA_NO_NODE || mm_.pfn_to_page(slab).nid == node;
  }

  // freeing
  void slab_free_slow(kmem_cache& s, pfn_t slab, vaddr_t obj);
  bool free_debug_processing(kmem_cache& s, pfn_t slab, vaddr_t obj);
  void report_findings(kmem_cache& s, vaddr_t object, const std::vector<SlubFinding>& f,
                       bool restore);

  pfn_t link(std::uint32_t l) const { return l == LIST_NIL ? NO_PAGE : mm_.sparse.link_to_pfn(l); }
  std::uint32_t unlink(pfn_t p) const {
    return p == NO_PAGE ? LIST_NIL : mm_.sparse.pfn_to_link(p);
  }

  Mm& mm_;

 public:
  // No state of its own: SLUB keeps it in the caches and the memmap.
  void restore_from(const SlabAllocator&) override {
    static_assert(sizeof(Slub) == 24, "Slub changed: give it a restore_from");
  }
};

bool Slub::create(kmem_cache& s) {
  // kmem_cache_flags(): slub_debug is applied by the common layer.
  s.random = sl_.next_random();
  // calculate_sizes()
  std::uint64_t size = round_up(s.object_size, 8);
  if ((s.flags & SLAB_POISON) && !(s.flags & SLAB_TYPESAFE_BY_RCU) && !s.ctor.present)
    s.flags |= __OBJECT_POISON;
  else
    s.flags &= ~__OBJECT_POISON;
  if ((s.flags & SLAB_RED_ZONE) && size == s.object_size) size += 8;
  s.inuse = static_cast<unsigned>(size);
  const bool orig_size = (s.flags & SLAB_STORE_USER) && (s.flags & SLAB_KMALLOC);
  if (orig_size || (s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON)) ||
      ((s.flags & SLAB_RED_ZONE) && s.object_size < 8) || s.ctor.present) {
    s.offset = static_cast<unsigned>(size);
    size += 8;
  } else {
    s.offset = static_cast<unsigned>(round_down(s.object_size / 2, 8));  // keep it off the edges
  }
  if (s.flags & SLAB_STORE_USER) {
    size += 2 * SLUB_TRACK_SIZE;
    if (s.flags & SLAB_KMALLOC) size += 4;
  }
  if (s.flags & SLAB_RED_ZONE) {
    size += 8;
    s.red_left_pad = static_cast<unsigned>(round_up(8, s.align));
    size += s.red_left_pad;
  }
  size = round_up(size, s.align);
  s.size = static_cast<unsigned>(size);
  s.reciprocal_size = reciprocal_value_of(s.size);
  const auto& p = mm_.profile;
  const unsigned order = calculate_order(s.size, mm_.nr_cpus(), p.max_order, p.page_shift);
  if (order == ~0u) return false;
  s.order = order;
  s.objects = static_cast<unsigned>((p.page_size() << order) / s.size);
  s.min_order = fls64((s.size - 1) >> p.page_shift);
  s.min_objects = static_cast<unsigned>((p.page_size() << s.min_order) / s.size);
  if (!s.objects) return false;
  s.allocflags = order ? __GFP_COMP : 0;
  if (s.flags & SLAB_CACHE_DMA) s.allocflags |= GFP_DMA;
  if (s.flags & SLAB_CACHE_DMA32) s.allocflags |= GFP_DMA32;
  if (s.flags & SLAB_RECLAIM_ACCOUNT) s.allocflags |= __GFP_RECLAIMABLE;
  // set_min_partial(s, ilog2(s->size) / 2)
  s.min_partial = std::clamp(static_cast<unsigned>(fls64(s.size) - 1) / 2, 5u, 10u);
  // set_cpu_partial()
  unsigned nr_objects = 0;
  if (!s.debug()) {
    if (s.size >= p.page_size())
      nr_objects = 6;
    else if (s.size >= 1024)
      nr_objects = 24;
    else if (s.size >= 256)
      nr_objects = 52;
    else
      nr_objects = 120;
  }
  s.cpu_partial = nr_objects;
  s.cpu_partial_slabs = (nr_objects * 2 + s.objects - 1) / s.objects;
  // init_cache_random_seq(): a random permutation of object offsets.
  if (s.objects > 1) {
    s.random_seq.resize(s.objects);
    for (unsigned i = 0; i < s.objects; ++i) s.random_seq[i] = i;
    for (unsigned i = s.objects - 1; i > 0; --i) {
      const auto j = static_cast<unsigned>(sl_.next_random() % (i + 1));
      std::swap(s.random_seq[i], s.random_seq[j]);
    }
    for (auto& v : s.random_seq) v *= s.size;
  }
  for (auto& n : s.node) {
    n.partial = sl_.lists.new_list();
    n.full = sl_.lists.new_list();
  }
  return true;
}

// ---------------------------------------------------------------- slabs

void Slub::set_track(kmem_cache& s, vaddr_t obj, bool free) {
  if (!(s.flags & SLAB_STORE_USER)) return;
  std::uint8_t b[SLUB_TRACK_SIZE] = {};
  const std::uint64_t addr = mm_.call_site;
  const int cpu = mm_.cpu();
  const std::uint64_t when = mm_.op_seq;
  std::memcpy(b, &addr, 8);
  std::memcpy(b + 12, &cpu, 4);
  std::memcpy(b + 24, &when, 8);
  mm_.ram.write(mm_.__pa(obj + track_offset(s) + (free ? SLUB_TRACK_SIZE : 0)), b);
}

// init_object(): red zones with val, free objects poisoned.
void Slub::init_object(kmem_cache& s, vaddr_t obj, std::uint8_t val, bool right_redzone) {
  const phys_addr_t pa = mm_.__pa(obj);
  if (s.flags & SLAB_RED_ZONE) mm_.ram.fill(pa - s.red_left_pad, s.red_left_pad, val);
  if (s.flags & __OBJECT_POISON) {
    mm_.ram.fill(pa, s.object_size - 1, POISON_FREE);
    mm_.ram.fill(pa + s.object_size - 1, 1, POISON_END);
  }
  if ((s.flags & SLAB_RED_ZONE) && right_redzone)
    mm_.ram.fill(pa + s.object_size, s.inuse - s.object_size, val);
}

void Slub::setup_object(kmem_cache& s, vaddr_t obj) {
  if (s.flags & (SLAB_STORE_USER | SLAB_RED_ZONE | __OBJECT_POISON)) {
    init_object(s, obj, SLUB_RED_INACTIVE);
    if (s.flags & SLAB_STORE_USER)
      mm_.ram.fill(mm_.__pa(obj + track_offset(s)), 2 * SLUB_TRACK_SIZE, 0);
  }
  if (s.ctor.present)
    mm_.ram.fill(mm_.__pa(obj), s.object_size, s.ctor.fill);  // constructors run at slab setup
}

pfn_t Slub::new_slab(kmem_cache& s, gfp_t gfp, int node) {
  gfp |= s.allocflags;
  // A higher order may fail quietly: then the minimum order.
  gfp_t alloc_gfp = (gfp | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL;
  if ((alloc_gfp & __GFP_DIRECT_RECLAIM) && s.order > s.min_order)
    alloc_gfp = (alloc_gfp | __GFP_NOMEMALLOC) & ~__GFP_RECLAIM;
  unsigned order = s.order, objects = s.objects;
  pfn_t slab = sl_.alloc_slab_page(s, alloc_gfp, node, order, objects);
  if (slab == NO_PAGE) {
    order = s.min_order;
    objects = s.min_objects;
    gfp_t g = gfp;
    if (!order) g &= ~__GFP_COMP;
    slab = sl_.alloc_slab_page(s, g, node, order, objects);
    if (slab == NO_PAGE) return NO_PAGE;
  }
  page& p = pg(slab);
  p.slab.objects = static_cast<std::uint16_t>(objects);
  p.slab.inuse = 0;
  p.slab.frozen = 0;
  const vaddr_t base = mm_.page_address(slab);
  if (s.flags & SLAB_POISON)
    mm_.ram.fill(mm_.__pa(base), mm_.profile.page_size() << order, POISON_INUSE);
  // shuffle_freelist() or the linear freelist.
  std::vector<unsigned> idx;
  idx.reserve(objects);
  if (objects >= 2 && !s.random_seq.empty()) {
    std::uint64_t pos = sl_.next_random() % s.objects;
    const std::uint64_t limit = std::uint64_t{objects} * s.size;
    while (idx.size() < objects) {
      const unsigned off = s.random_seq[pos];
      pos = (pos + 1) % s.objects;
      if (off < limit) idx.push_back(off / s.size);
    }
  } else {
    for (unsigned i = 0; i < objects; ++i) idx.push_back(i);
  }
  vaddr_t prev = 0;
  for (unsigned k = 0; k < objects; ++k) {
    const vaddr_t obj = object_at(mm_, s, slab, idx[k]);
    setup_object(s, obj);
    if (prev)
      set_freepointer(s, prev, obj);
    else
      p.slab.freelist = obj;
    prev = obj;
  }
  set_freepointer(s, prev, 0);
  kmem_cache_node& n = get_node(s, slab);
  n.nr_slabs++;
  n.total_objects += objects;
  mm_.count_vm_event(SLUB_ALLOC_SLAB);
  return slab;
}

void Slub::discard_slab(kmem_cache& s, pfn_t slab) {
  mm_.count_vm_event(SLUB_FREE_SLAB);
  kmem_cache_node& n = get_node(s, slab);
  n.nr_slabs--;
  n.total_objects -= pg(slab).slab.objects;
  sl_.free_slab_page(s, slab, slab_order(slab));
}

vaddr_t Slub::bad_freepointer(kmem_cache& s, vaddr_t obj, vaddr_t fp) {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "Freepointer corrupt: object 0x%llx holds 0x%llx, which is no object of its slab",
                static_cast<unsigned long long>(obj), static_cast<unsigned long long>(fp));
  sl_.report(MisuseKind::slab_freeptr, &s, obj + s.offset, obj, "slab_alloc", buf, 0, false,
             "Freepointer corrupt");
  return 0;
}

// ---------------------------------------------------------------- allocation

vaddr_t Slub::alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) {
  if (s.debug()) return alloc_debug(s, gfp, node, orig_size);
  kmem_cache_cpu& c = s.cpu_slab[static_cast<std::size_t>(mm_.cpu())];
  if (c.freelist && c.slab != NO_PAGE && node_match(c.slab, node)) {  // the fast path
    mm_.count_vm_event(SLUB_ALLOC_FASTPATH);
    const vaddr_t obj = c.freelist;
    c.freelist = next_free(s, c.slab, obj);
    c.tid++;
    sl_.mark_allocated(c.slab, index_of(s, c.slab, obj), orig_size);
    return obj;
  }
  return slab_alloc_slow(s, gfp, node, orig_size);
}

// get_freelist(): the cpu takes the slab's whole freelist.
vaddr_t Slub::get_freelist(kmem_cache& s, pfn_t slab) {
  page& p = pg(slab);
  const vaddr_t fl = p.slab.freelist;
  p.slab.freelist = 0;
  p.slab.inuse = p.slab.objects;
  p.slab.frozen = 1;
  (void)s;
  return fl;
}

vaddr_t Slub::get_partial(kmem_cache& s, int node, pfn_t* slab_out) {
  const int searchnode = node == NUMA_NO_NODE ? mm_.page_alloc.numa_node_id() : node;
  kmem_cache_node& n = s.node[static_cast<std::size_t>(searchnode)];
  vaddr_t object = 0;
  unsigned partial_slabs = 0;
  for (pfn_t slab = sl_.lists.first(n.partial); slab != NO_PAGE;) {
    const pfn_t next = [&] {
      const std::uint32_t l = sl_.lists.L(sl_.lists.id_of(slab)).next;
      return l == n.partial ? NO_PAGE : sl_.lists.pfn_of(l);
    }();
    // acquire_slab()
    page& p = pg(slab);
    remove_partial(n, slab);
    p.slab.frozen = 1;
    if (!object) {
      object = p.slab.freelist;
      p.slab.freelist = 0;
      p.slab.inuse = p.slab.objects;
      *slab_out = slab;
      mm_.count_vm_event(SLUB_ALLOC_FROM_PARTIAL);
    } else {
      put_cpu_partial(s, slab, false);
      mm_.count_vm_event(SLUB_CPU_PARTIAL_NODE);
      ++partial_slabs;
    }
    if (partial_slabs > s.cpu_partial_slabs / 2) break;
    slab = next;
  }
  // get_any_partial() is not modeled: its choice is random (defrag ratio).
  return object;
}

vaddr_t Slub::slab_alloc_slow(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) {
  mm_.count_vm_event(SLUB_ALLOC_SLOWPATH);
  kmem_cache_cpu& c = s.cpu_slab[static_cast<std::size_t>(mm_.cpu())];
  vaddr_t freelist = 0;
  for (int rounds = 0; rounds < 4096; ++rounds) {
    pfn_t slab = c.slab;
    if (slab != NO_PAGE) {
      if (!node_match(slab, node)) {
        deactivate_slab(s, slab, c.freelist);
        c.slab = NO_PAGE;
        c.freelist = 0;
      } else {
        freelist = c.freelist ? c.freelist : get_freelist(s, slab);
        c.freelist = 0;
        if (freelist) break;
        c.slab = NO_PAGE;  // the slab is full: it leaves the cpu (on no list)
        pg(slab).slab.frozen = 0;
      }
    }
    // new_slab: the cpu partial chain first.
    if (c.partial != NO_PAGE) {
      const pfn_t p = c.partial;
      c.partial = link(pg(p).slab.next);
      pg(p).slab.next = LIST_NIL;
      c.slab = p;
      mm_.count_vm_event(SLUB_CPU_PARTIAL_ALLOC);
      continue;
    }
    pfn_t got = NO_PAGE;
    freelist = get_partial(s, node, &got);
    if (freelist) {
      c.slab = got;
      break;
    }
    got = new_slab(s, gfp, node);
    if (got == NO_PAGE) return 0;  // slab_out_of_memory(): the page allocator warned
    freelist = get_freelist(s, got);
    c.slab = got;
    break;
  }
  if (!freelist) return 0;
  const vaddr_t obj = freelist;
  c.freelist = next_free(s, c.slab, obj);
  c.tid++;
  sl_.mark_allocated(c.slab, index_of(s, c.slab, obj), orig_size);
  return obj;
}

// Debug caches take one object at a time from a slab on the partial list
// (or a new one), so every allocation passes alloc_debug_processing().
vaddr_t Slub::alloc_debug(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size) {
  mm_.count_vm_event(SLUB_ALLOC_SLOWPATH);
  const int nid = node == NUMA_NO_NODE ? mm_.page_alloc.numa_node_id() : node;
  kmem_cache_node& n = s.node[static_cast<std::size_t>(nid)];
  for (int tries = 0; tries < 64; ++tries) {
    pfn_t slab = sl_.lists.first(n.partial);
    bool fresh = false;
    if (slab == NO_PAGE) {
      slab = new_slab(s, gfp, node);
      if (slab == NO_PAGE) return 0;
      fresh = true;
    }
    page& p = pg(slab);
    const vaddr_t obj = p.slab.freelist;
    bool ok = obj != 0 && check_valid_pointer(mm_, s, slab, obj);
    if (ok && (s.flags & SLAB_CONSISTENCY_CHECKS)) {
      const auto f = check_object(mm_, s, slab, obj, SLUB_RED_INACTIVE);
      if (!f.empty()) {
        report_findings(s, obj, f, true);
        ok = false;
      }
    }
    if (!ok) {
      // "Marking all objects used": the slab leaves the lists.
      if (!fresh) remove_partial(n, slab);
      p.slab.inuse = p.slab.objects;
      p.slab.freelist = 0;
      add_full(s, n, slab);
      continue;
    }
    p.slab.freelist = next_free(s, slab, obj);
    p.slab.inuse++;
    if (!p.slab.freelist || p.slab.inuse == p.slab.objects) {
      if (!fresh) remove_partial(n, slab);
      add_full(s, n, slab);
    } else if (fresh) {
      add_partial(n, slab, true);
    }
    // set_orig_size(), init_object(ACTIVE), set_track()
    if ((s.flags & SLAB_STORE_USER) && (s.flags & SLAB_KMALLOC)) {
      std::uint8_t b[4];
      std::memcpy(b, &orig_size, 4);
      mm_.ram.write(mm_.__pa(obj + track_offset(s) + 2 * SLUB_TRACK_SIZE), b);
    }
    init_object(s, obj, SLUB_RED_ACTIVE);
    set_track(s, obj, false);
    sl_.mark_allocated(slab, index_of(s, slab, obj), orig_size);
    return obj;
  }
  return 0;
}

void Slub::deactivate_slab(kmem_cache& s, pfn_t slab, vaddr_t freelist) {
  mm_.count_vm_event(SLUB_DEACTIVATE);
  page& p = pg(slab);
  kmem_cache_node& n = get_node(s, slab);
  const bool tail = p.slab.freelist != 0;  // remote frees: to the tail
  // Give the cpu's free objects back to the slab.
  while (freelist) {
    const vaddr_t next = next_free(s, slab, freelist);
    set_freepointer(s, freelist, p.slab.freelist);
    p.slab.freelist = freelist;
    p.slab.inuse--;
    freelist = next;
  }
  p.slab.frozen = 0;
  if (!p.slab.inuse && n.nr_partial >= s.min_partial)
    discard_slab(s, slab);
  else if (p.slab.freelist)
    add_partial(n, slab, tail);
  else
    add_full(s, n, slab);
}

void Slub::put_cpu_partial(kmem_cache& s, pfn_t slab, bool drain) {
  kmem_cache_cpu& c = s.cpu_slab[static_cast<std::size_t>(mm_.cpu())];
  pfn_t old = c.partial;
  pfn_t to_unfreeze = NO_PAGE;
  int slabs = 0;
  if (old != NO_PAGE) {
    if (drain && static_cast<unsigned>(pg(old).slab.slabs) >= s.cpu_partial_slabs) {
      to_unfreeze = old;  // the chain is full: to the node partial list
      old = NO_PAGE;
      mm_.count_vm_event(SLUB_CPU_PARTIAL_DRAIN);
    } else {
      slabs = pg(old).slab.slabs;
    }
  }
  pg(slab).slab.slabs = static_cast<std::int16_t>(slabs + 1);
  pg(slab).slab.next = unlink(old);
  c.partial = slab;
  if (to_unfreeze != NO_PAGE) unfreeze_partials(s, to_unfreeze);
}

void Slub::unfreeze_partials(kmem_cache& s, pfn_t chain) {
  std::vector<pfn_t> discard;
  while (chain != NO_PAGE) {
    page& p = pg(chain);
    const pfn_t next = link(p.slab.next);
    p.slab.next = LIST_NIL;
    p.slab.frozen = 0;
    kmem_cache_node& n = get_node(s, chain);
    if (!p.slab.inuse && n.nr_partial >= s.min_partial)
      discard.push_back(chain);
    else
      add_partial(n, chain, true);
    chain = next;
  }
  for (pfn_t d : discard) discard_slab(s, d);
}

void Slub::flush_cpu_slab(kmem_cache& s, unsigned cpu) {
  kmem_cache_cpu& c = s.cpu_slab[cpu];
  if (c.slab != NO_PAGE) {
    const pfn_t slab = c.slab;
    const vaddr_t fl = c.freelist;
    c.slab = NO_PAGE;
    c.freelist = 0;
    deactivate_slab(s, slab, fl);
  }
  if (c.partial != NO_PAGE) {
    const pfn_t chain = c.partial;
    c.partial = NO_PAGE;
    unfreeze_partials(s, chain);
  }
}

// ---------------------------------------------------------------- freeing

void Slub::report_findings(kmem_cache& s, vaddr_t object, const std::vector<SlubFinding>& findings,
                           bool restore) {
  for (const auto& f : findings) {
    sl_.report(f.kind, &s, f.fault, object, "slub_debug", finding_line(f), 0, false,
               f.kind == MisuseKind::slab_freeptr ? std::string(f.what)
                                                  : std::string(f.what) + " overwritten");
    if (restore && f.kind != MisuseKind::slab_freeptr)  // restore_bytes()
      mm_.ram.fill(mm_.__pa(f.fault), f.end - f.fault, f.fill);
  }
}

bool Slub::free_debug_processing(kmem_cache& s, pfn_t slab, vaddr_t obj) {
  if (s.flags & SLAB_CONSISTENCY_CHECKS) {
    const auto f = check_object(mm_, s, slab, obj, SLUB_RED_ACTIVE);
    if (!f.empty()) {
      report_findings(s, obj, f, true);
      return false;  // "Object at 0x%p not freed"
    }
  }
  set_track(s, obj, true);
  // Planted defect (fuzz self-test): the free path re-poisons the object and
  // its left red zone but leaves the right one at SLUB_RED_ACTIVE, as if only
  // allocations armed it (the kmalloc orig_size red zone path).
  const bool rearm_right = !mm_.planted(PlantedDefect::redzone_not_rearmed);
  init_object(s, obj, SLUB_RED_INACTIVE, rearm_right);
  return true;
}

void Slub::free(kmem_cache& s, vaddr_t obj) {
  ObjectRef ref;
  ref.slab = sl_.slab_head(mm_.virt_to_pfn(obj));
  ref.index = index_of(s, ref.slab, obj);
  ref.object = obj;
  free_object(s, ref);
}

void Slub::free_object(kmem_cache& s, const ObjectRef& ref) {
  const pfn_t slab = ref.slab;
  const vaddr_t obj = ref.object;
  if (s.debug()) {
    if (!free_debug_processing(s, slab, obj)) return;  // leaked, as the kernel leaves it
    sl_.mark_freed(slab, ref.index);
    slab_free_slow(s, slab, obj);
    return;
  }
  sl_.mark_freed(slab, ref.index);
  kmem_cache_cpu& c = s.cpu_slab[static_cast<std::size_t>(mm_.cpu())];
  if (slab == c.slab) {  // do_slab_free() fast path
    // Planted defect (fuzz self-test): for objects with the free pointer
    // mid-object, the fast path stores it one word past s->offset; the slot
    // get_freepointer() reads keeps whatever the object held.
    if (mm_.planted(PlantedDefect::slub_freelist_off_by_one) && s.offset + 16 <= s.size)
        [[unlikely]]
      set_freepointer(s, obj + 8, c.freelist);
    else
      set_freepointer(s, obj, c.freelist);
    c.freelist = obj;
    c.tid++;
    mm_.count_vm_event(SLUB_FREE_FASTPATH);
    return;
  }
  slab_free_slow(s, slab, obj);
}

// __slab_free()
void Slub::slab_free_slow(kmem_cache& s, pfn_t slab, vaddr_t obj) {
  mm_.count_vm_event(SLUB_FREE_SLOWPATH);
  page& p = pg(slab);
  kmem_cache_node& n = get_node(s, slab);
  const vaddr_t prior = p.slab.freelist;
  set_freepointer(s, obj, prior);
  p.slab.freelist = obj;
  p.slab.inuse--;
  const bool was_frozen = p.slab.frozen;
  const bool has_cpu_partial = !s.debug();
  if (was_frozen) return;  // a cpu slab or on a cpu partial chain
  if (s.debug()) {
    // Debug slabs sit on the partial list or (STORE_USER) the full list.
    if (!p.slab.inuse && n.nr_partial >= s.min_partial) {
      if (prior) {
        remove_partial(n, slab);
        mm_.count_vm_event(SLUB_FREE_REMOVE_PARTIAL);
      } else {
        remove_full(s, slab);
      }
      discard_slab(s, slab);
      return;
    }
    if (!prior) {
      remove_full(s, slab);
      add_partial(n, slab, true);
      mm_.count_vm_event(SLUB_FREE_ADD_PARTIAL);
    }
    return;
  }
  if (has_cpu_partial && !prior) {
    // The slab was full and on no list: freeze it onto the cpu partial chain.
    p.slab.frozen = 1;
    put_cpu_partial(s, slab, true);
    mm_.count_vm_event(SLUB_CPU_PARTIAL_FREE);
    return;
  }
  if (!p.slab.inuse && n.nr_partial >= s.min_partial) {
    remove_partial(n, slab);
    mm_.count_vm_event(SLUB_FREE_REMOVE_PARTIAL);
    discard_slab(s, slab);
  }
}

// ---------------------------------------------------------------- maintenance

int Slub::shrink(kmem_cache& s) {
  flush_all(s);
  int ret = 0;
  for (auto& n : s.node) {
    std::vector<pfn_t> empty;
    for (pfn_t slab = sl_.lists.first(n.partial); slab != NO_PAGE;) {
      const std::uint32_t l = sl_.lists.L(sl_.lists.id_of(slab)).next;
      const pfn_t next = l == n.partial ? NO_PAGE : sl_.lists.pfn_of(l);
      if (!pg(slab).slab.inuse) empty.push_back(slab);
      slab = next;
    }
    for (pfn_t slab : empty) {
      remove_partial(n, slab);
      discard_slab(s, slab);
    }
    if (n.nr_partial || n.nr_slabs) ret = 1;
  }
  return ret;
}

bool Slub::shutdown(kmem_cache& s) {
  shrink(s);
  for (const auto& n : s.node)
    if (n.nr_partial || n.nr_slabs) return false;
  return true;
}

void Slub::release(kmem_cache& s) {
  s.random_seq.clear();
  (void)s;
}

SlabInfo Slub::slabinfo(const kmem_cache& s) const {
  SlabInfo i;
  std::uint64_t nr_free = 0;
  for (const auto& n : s.node) {
    i.num_slabs += n.nr_slabs;
    i.num_objs += n.total_objects;
    // count_partial(count_free): only the node partial lists count as free.
    for (pfn_t slab = sl_.lists.first(n.partial); slab != NO_PAGE;) {
      const page& p = mm_.pfn_to_page(slab);
      nr_free += p.slab.objects - p.slab.inuse;
      const std::uint32_t l = sl_.lists.L(sl_.lists.id_of(slab)).next;
      slab = l == n.partial ? NO_PAGE : sl_.lists.pfn_of(l);
    }
  }
  i.active_objs = i.num_objs - nr_free;
  i.active_slabs = i.num_slabs;
  i.objsize = s.size;
  i.objperslab = s.objects;
  i.pagesperslab = 1u << s.order;
  return i;
}

unsigned Slub::ksize(const kmem_cache& s) const {
  if (s.flags & (SLAB_RED_ZONE | SLAB_POISON)) return s.object_size;
  if (s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_STORE_USER)) return s.inuse;
  return s.size;
}

std::optional<ObjectRef> Slub::find_object(vaddr_t addr) const {
  ObjectRef r;
  const pfn_t slab = sl_.slab_head(mm_.virt_to_pfn(addr));
  if (slab == NO_PAGE || !find_object_in(slab, addr, &r)) return std::nullopt;
  return r;
}

bool Slub::find_object_in(pfn_t slab, vaddr_t addr, ObjectRef* out) const {
  const page& p = mm_.pfn_to_page(slab);
  const kmem_cache* s = sl_.cache(p.slab.cache);
  if (!s) return false;
  const vaddr_t base = mm_.page_address(slab);
  const unsigned i = reciprocal_divide(static_cast<std::uint32_t>(addr - base), s->reciprocal_size);
  if (i >= p.slab.objects) return false;  // the slab's tail padding
  out->cache = s->id;
  out->slab = slab;
  out->index = i;
  out->object = base + std::uint64_t{i} * s->size + s->red_left_pad;
  out->size = s->object_size;
  const auto* sh = sl_.shadow(slab);
  const bool tracked = sh && i < sh->size();
  out->allocated = tracked && (*sh)[i].allocated;
  out->requested = tracked ? (*sh)[i].requested : 0;
  return true;
}

}  // namespace

std::unique_ptr<SlabAllocator> make_slub(Slab& sl) {
  return std::make_unique<Slub>(sl);
}

}  // namespace mmfuzz::mm
