// What mm/slab_common.c shares between the allocators: cache creation and
// merging, the kmalloc caches and the kmalloc family, object validation on
// free, and (the model's own) per-object shadow and KASAN-style access checks.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "mm/mm.h"

namespace mmfuzz::mm {
namespace {

struct FlagName {
  slab_flags_t flag;
  const char* name;
};
constexpr FlagName kSlabFlagNames[] = {
    {SLAB_CONSISTENCY_CHECKS, "SLAB_CONSISTENCY_CHECKS"},
    {SLAB_RED_ZONE, "SLAB_RED_ZONE"},
    {SLAB_POISON, "SLAB_POISON"},
    {SLAB_KMALLOC, "SLAB_KMALLOC"},
    {SLAB_HWCACHE_ALIGN, "SLAB_HWCACHE_ALIGN"},
    {SLAB_CACHE_DMA, "SLAB_CACHE_DMA"},
    {SLAB_CACHE_DMA32, "SLAB_CACHE_DMA32"},
    {SLAB_STORE_USER, "SLAB_STORE_USER"},
    {SLAB_RECLAIM_ACCOUNT, "SLAB_RECLAIM_ACCOUNT"},
    {SLAB_PANIC, "SLAB_PANIC"},
    {SLAB_TYPESAFE_BY_RCU, "SLAB_TYPESAFE_BY_RCU"},
    {SLAB_MEM_SPREAD, "SLAB_MEM_SPREAD"},
    {SLAB_TRACE, "SLAB_TRACE"},
    {SLAB_NOLEAKTRACE, "SLAB_NOLEAKTRACE"},
    {SLAB_FAILSLAB, "SLAB_FAILSLAB"},
    {SLAB_ACCOUNT, "SLAB_ACCOUNT"},
};

// The flags kmem_cache_create() accepts (SLAB_FLAGS_PERMITTED).
constexpr slab_flags_t kFlagsPermitted =
    SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_HWCACHE_ALIGN | SLAB_CACHE_DMA |
    SLAB_CACHE_DMA32 | SLAB_STORE_USER | SLAB_RECLAIM_ACCOUNT | SLAB_PANIC | SLAB_TYPESAFE_BY_RCU |
    SLAB_MEM_SPREAD | SLAB_TRACE | SLAB_NOLEAKTRACE | SLAB_FAILSLAB | SLAB_ACCOUNT;

// KMALLOC_NOT_NORMAL_BITS
constexpr gfp_t kNotNormal = __GFP_RECLAIMABLE | __GFP_DMA | __GFP_ACCOUNT;

int kmalloc_type(gfp_t flags) {
  if ((flags & kNotNormal) == 0) return KMALLOC_NORMAL;
  if (flags & __GFP_DMA) return KMALLOC_DMA;
  if (flags & __GFP_RECLAIMABLE) return KMALLOC_RECLAIM;
  return KMALLOC_CGROUP;
}

std::string kmalloc_cache_name(int type, std::uint64_t size) {
  static const char* const prefix[] = {"kmalloc-", "kmalloc-cg-", "kmalloc-rcl-", "dma-kmalloc-"};
  char buf[48];
  if (size >= SZ_1M)
    std::snprintf(buf, sizeof buf, "%s%lluM", prefix[type],
                  static_cast<unsigned long long>(size >> 20));
  else if (size >= SZ_1K)
    std::snprintf(buf, sizeof buf, "%s%lluk", prefix[type],
                  static_cast<unsigned long long>(size >> 10));
  else
    std::snprintf(buf, sizeof buf, "%s%llu", prefix[type], static_cast<unsigned long long>(size));
  return buf;
}

constexpr unsigned kWord = 8;  // sizeof(void *)

}  // namespace

std::string format_slab_flags(slab_flags_t flags) {
  if (!flags) return "0";
  std::string out;
  for (const auto& f : kSlabFlagNames) {
    if (!(flags & f.flag)) continue;
    if (!out.empty()) out += '|';
    out += f.name;
    flags &= ~f.flag;
  }
  if (flags) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", flags);
    if (!out.empty()) out += '|';
    out += buf;
  }
  return out;
}

std::optional<slab_flags_t> parse_slab_flags(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<slab_flags_t> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (text == "0" || text == "none") return slab_flags_t{0};
  if (text.empty()) return fail("empty slab flags");
  slab_flags_t flags = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto bar = text.find('|', pos);
    const std::string_view tok =
        text.substr(pos, bar == std::string_view::npos ? std::string_view::npos : bar - pos);
    pos = bar == std::string_view::npos ? text.size() + 1 : bar + 1;
    if (tok.empty()) return fail("empty flag in slab flags");
    bool found = false;
    for (const auto& f : kSlabFlagNames)
      if (tok == f.name) flags |= f.flag, found = true;
    if (!found) {
      if (tok.size() > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) {
        try {
          flags |= static_cast<slab_flags_t>(parse_number(std::string(tok)));
          continue;
        } catch (const ConfigError&) {
        }
      }
      return fail("unknown slab flag '" + std::string(tok) + "'");
    }
  }
  return flags;
}

std::uint64_t Slab::kmalloc_max_size() const {
  return std::uint64_t{1} << (mm_.profile.page_shift + mm_.profile.max_order - 1);
}

vaddr_t SlabAllocator::object_start(const kmem_cache& s, pfn_t head, unsigned i) const {
  return sl_.mm().page_address(head) + std::uint64_t{i} * s.size + s.red_left_pad;
}

void SlabAllocator::for_each_allocated(const std::function<void(const LiveObject&)>& f) const {
  const Mm& m = sl_.mm();
  for (auto nr : m.sparse.present_sections()) {
    const pfn_t lo = nr << m.sparse.section_shift();
    const pfn_t hi = lo + (pfn_t{1} << m.sparse.section_shift());
    for (pfn_t pfn = lo; pfn < hi; ++pfn) {
      const page& p = m.pfn_to_page(pfn);
      if (!PageSlab(p) || PageTail(p)) continue;
      const kmem_cache* s = sl_.cache(p.slab.cache);
      const auto* sh = sl_.shadow(pfn);
      if (!s || !sh) continue;
      for (unsigned i = 0; i < sh->size(); ++i) {
        const ObjectTrack& t = (*sh)[i];
        if (t.allocated)
          f({s->id, object_start(*s, pfn, i), t.requested, t.alloc_seq, t.alloc_site});
      }
    }
  }
}

const char* slab_variant_name(SlabVariant v) {
  switch (v) {
    case SlabVariant::slub:
      return "slub";
    case SlabVariant::slab:
      return "slab";
    case SlabVariant::slob:
      return "slob";
  }
  return "?";
}

std::optional<SlabVariant> parse_slab_variant(std::string_view s) {
  if (s == "slub") return SlabVariant::slub;
  if (s == "slab") return SlabVariant::slab;
  if (s == "slob") return SlabVariant::slob;
  return std::nullopt;
}

Slab::Slab(Mm& mm) : mm_(mm) {}
Slab::~Slab() = default;

void Slab::kmem_cache_init(const SlabConfig& cfg) {
  config = cfg;
  variant = cfg.variant.value_or(mm_.profile.slab);
  rng_.s = cfg.random_seed;
  Sparse& sp = mm_.sparse;
  lists.bind(&mm_.pfn_to_page(sp.base_pfn()), sp.base_pfn(), sp.memmap_dirty());
  shadow_.clear();
  shadow_.resize(sp.end_pfn() - sp.base_pfn());
  shadow_touched_.assign(shadow_.size(), 0);
  shadow_touched_list_.clear();
  kmalloc_min_ = cfg.kmalloc_min_size.value_or(mm_.profile.kmalloc_min_align);
  if (kmalloc_min_ < 8 || kmalloc_min_ > 128 || (kmalloc_min_ & (kmalloc_min_ - 1)))
    throw ConfigError("kmalloc minimum size must be 8, 16, 32, 64 or 128, not " +
                      std::to_string(kmalloc_min_));
  shift_low_ = fls64(kmalloc_min_) - 1;
  switch (variant) {
    case SlabVariant::slub:
      shift_high_ = mm_.profile.page_shift + 1;
      allocator = make_slub(*this);
      break;
    case SlabVariant::slab:
      shift_high_ = std::min(mm_.profile.max_order + mm_.profile.page_shift - 1, 25u);
      allocator = make_slab(*this);
      break;
    case SlabVariant::slob:
      shift_high_ = mm_.profile.page_shift;
      allocator = make_slob(*this);
      break;
  }
  // The boot caches, then the kmalloc caches, in the kernel's order.
  const auto& sizes = mm_.profile;
  if (variant == SlabVariant::slub) {
    kmem_cache_node_cache = create_cache("kmem_cache_node", sizes.sizeof_kmem_cache_node,
                                         kmalloc_min_, SLAB_HWCACHE_ALIGN, {}, 0, 0, false);
    kmem_cache_cache = create_cache("kmem_cache", sizes.sizeof_kmem_cache, kmalloc_min_,
                                    SLAB_HWCACHE_ALIGN, {}, 0, 0, false);
  } else {
    kmem_cache_cache = create_cache("kmem_cache", sizes.sizeof_kmem_cache, kmalloc_min_,
                                    SLAB_HWCACHE_ALIGN, {}, 0, 0, false);
  }
  for (cache_id id : {kmem_cache_node_cache, kmem_cache_cache})
    if (auto* s = cache(id)) {
      s->refcount = -1;       // exempt from merging
      alloc_bookkeeping(*s);  // bootstrap(): the boot caches move into their own objects
    }
  own_kmalloc_ = allocator->own_kmalloc();
  if (!own_kmalloc_) create_kmalloc_caches();
}

unsigned Slab::kmalloc_index(std::uint64_t size) const {
  if (!size) return 0;
  if (size <= kmalloc_min_) return shift_low_;
  if (kmalloc_min_ <= 32 && size > 64 && size <= 96) return 1;
  if (kmalloc_min_ <= 64 && size > 128 && size <= 192) return 2;
  const unsigned idx = fls64(size - 1);  // smallest power of two >= size
  return idx > shift_high_ ? ~0u : std::max(idx, 3u);
}

std::uint64_t Slab::kmalloc_size(unsigned index) const {
  if (index == 1) return 96;
  if (index == 2) return 192;
  return std::uint64_t{1} << index;
}

cache_id Slab::kmalloc_slab(std::uint64_t size, gfp_t gfp) const {
  const unsigned idx = kmalloc_index(size);
  if (idx == 0 || idx == ~0u) return 0;
  return kmalloc_caches[static_cast<std::size_t>(kmalloc_type(gfp))][idx];
}

void Slab::create_kmalloc_caches() {
  for (int type = KMALLOC_NORMAL; type < NR_KMALLOC_TYPES; ++type) {
    for (unsigned i = shift_low_; i <= shift_high_; ++i) {
      slab_flags_t flags = 0;
      if (type == KMALLOC_RECLAIM) flags |= SLAB_RECLAIM_ACCOUNT;
      if (type == KMALLOC_CGROUP) flags |= SLAB_ACCOUNT;
      if (type == KMALLOC_DMA) flags |= SLAB_CACHE_DMA;
      const auto size = static_cast<unsigned>(kmalloc_size(i));
      // create_boot_cache(): natural alignment for power-of-two sizes.
      const unsigned align = std::max(kmalloc_min_, size);
      kmalloc_caches[static_cast<std::size_t>(type)][i] =
          create_cache(kmalloc_cache_name(type, size), size, align, flags, {}, 0, size, true);
      // 96 and 192 exist only with an 8-byte minimum (KMALLOC_MIN_SIZE <= 32/64).
      if (i == 6 && kmalloc_min_ <= 32)
        kmalloc_caches[static_cast<std::size_t>(type)][1] =
            create_cache(kmalloc_cache_name(type, 96), 96, kmalloc_min_, flags, {}, 0, 96, true);
      if (i == 7 && kmalloc_min_ <= 64)
        kmalloc_caches[static_cast<std::size_t>(type)][2] =
            create_cache(kmalloc_cache_name(type, 192), 192, kmalloc_min_, flags, {}, 0, 192, true);
    }
    // With MEMCG_KMEM the normal kmalloc caches are never merged.
    for (cache_id id : kmalloc_caches[KMALLOC_NORMAL])
      if (auto* s = cache(id)) s->refcount = -1;
  }
}

namespace {
// calculate_alignment()
unsigned calculate_alignment(slab_flags_t flags, unsigned align, unsigned size,
                             unsigned cache_line) {
  if (flags & SLAB_HWCACHE_ALIGN) {
    unsigned ralign = cache_line;
    while (size <= ralign / 2) ralign /= 2;
    align = std::max(align, ralign);
  }
  align = std::max(align, kWord);  // arch_slab_minalign()
  return static_cast<unsigned>(round_up(align, kWord));
}
}  // namespace

cache_id Slab::create_cache(std::string name, unsigned size, unsigned align, slab_flags_t flags,
                            slab_ctor ctor, unsigned useroffset, unsigned usersize, bool kmalloc) {
  auto s = std::make_unique<kmem_cache>();
  s->id = static_cast<cache_id>(caches.size() + 1);
  s->name = std::move(name);
  s->object_size = size;
  s->size = size;
  s->align = calculate_alignment(flags, align, size, mm_.profile.cache_line_size);
  s->flags = flags | config.debug_flags | (kmalloc ? SLAB_KMALLOC : 0);
  s->ctor = ctor;
  s->kmalloc = kmalloc;
  s->useroffset = useroffset;
  s->usersize = usersize;
  s->cpu_slab.assign(mm_.nr_cpus(), kmem_cache_cpu{});
  s->node.resize(mm_.machine.nr_nodes);
  if (!allocator->create(*s)) return 0;
  const cache_id id = s->id;
  caches.push_back(std::move(s));
  kmem_cache& created = *caches.back();
  if (kmem_cache_cache && !alloc_bookkeeping(created)) {
    allocator->release(created);
    caches.pop_back();
    return 0;
  }
  slab_caches.insert(slab_caches.begin(), id);  // list_add(): newest first
  return id;
}

bool Slab::alloc_bookkeeping(kmem_cache& s) {
  kmem_cache* kc = cache(kmem_cache_cache);
  if (!kc) return true;
  s.self_obj = slab_alloc(*kc, GFP_KERNEL | __GFP_ZERO, NUMA_NO_NODE, kc->object_size, false);
  if (!s.self_obj) return false;
  if (kmem_cache* kn = cache(kmem_cache_node_cache)) {
    for (unsigned nid = 0; nid < mm_.machine.nr_nodes; ++nid) {
      const vaddr_t o =
          slab_alloc(*kn, GFP_KERNEL | __GFP_ZERO, static_cast<int>(nid), kn->object_size, false);
      if (!o) {
        free_bookkeeping(s);
        return false;
      }
      s.node_objs.push_back(o);
    }
  }
  return true;
}

// kmem_cache_free()s as the kernel's (traced, so observers see them: an
// object allocated and freed in one failed kmem_cache_create is free).
void Slab::free_bookkeeping(kmem_cache& s) {
  auto release = [&](cache_id c, vaddr_t o) {
    kmem_cache& k = *cache(c);
    if (mm_.observed()) mm_.notify([&](MmObserver& ob) { ob.kmem_cache_free(o, k.name); });
    allocator->free(k, o);
  };
  for (vaddr_t o : s.node_objs) release(kmem_cache_node_cache, o);
  s.node_objs.clear();
  if (s.self_obj) release(kmem_cache_cache, s.self_obj);
  s.self_obj = 0;
}

cache_id Slab::find_mergeable(unsigned size, unsigned align, slab_flags_t flags,
                              const slab_ctor& ctor) const {
  if (config.nomerge || ctor.present || variant == SlabVariant::slob) return 0;
  size = static_cast<unsigned>(round_up(size, kWord));
  align = calculate_alignment(flags, align, size, mm_.profile.cache_line_size);
  size = static_cast<unsigned>(round_up(size, align));
  flags |= config.debug_flags;
  if (flags & SLAB_NEVER_MERGE) return 0;
  // list_for_each_entry_reverse(): the oldest cache first.
  for (auto it = slab_caches.rbegin(); it != slab_caches.rend(); ++it) {
    const kmem_cache* s = cache(*it);
    if (!s || s->destroyed) continue;
    if ((s->flags & SLAB_NEVER_MERGE) || s->ctor.present || s->usersize || s->refcount < 0)
      continue;
    if (size > s->size) continue;
    if ((flags & SLAB_MERGE_SAME) != (s->flags & SLAB_MERGE_SAME)) continue;
    if ((s->size & ~(align - 1)) != s->size) continue;
    if (s->size - size >= kWord) continue;
    if (variant == SlabVariant::slab && align && (align > s->align || s->align % align)) continue;
    return s->id;
  }
  return 0;
}

cache_id Slab::kmem_cache_create(std::string_view name, unsigned size, unsigned align,
                                 slab_flags_t flags, slab_ctor ctor) {
  int err = 0;
  if (name.empty() || size < kWord || size > kmalloc_max_size())
    err = -22;  // -EINVAL
  else if (flags & ~kFlagsPermitted)
    err = -22;
  if (!err) {
    if (const cache_id alias = find_mergeable(size, align, flags, ctor)) {
      kmem_cache* s = cache(alias);
      s->refcount++;
      s->object_size = std::max(s->object_size, size);
      s->inuse = std::max(s->inuse, static_cast<unsigned>(round_up(size, kWord)));
      s->aliases.emplace_back(name);
      return alias;
    }
    if (const cache_id id = create_cache(std::string(name), size, align, flags, ctor, 0, 0, false))
      return id;
    err = -12;  // -ENOMEM
  }
  char buf[160];
  if (flags & SLAB_PANIC)
    std::snprintf(buf, sizeof buf, "kmem_cache_create: Failed to create slab '%.*s'. Error %d",
                  static_cast<int>(name.size()), name.data(), err);
  else
    std::snprintf(buf, sizeof buf, "kmem_cache_create(%.*s) failed with error %d",
                  static_cast<int>(name.size()), name.data(), err);
  // Bad arguments are the caller's bug; so is asking to panic.
  if (err == -22 || (flags & SLAB_PANIC))
    report(MisuseKind::slab_bad_create, nullptr, 0, 0, "kmem_cache_create", buf);
  return 0;
}

cache_id Slab::find_cache(std::string_view name) const {
  for (cache_id id : slab_caches) {
    const kmem_cache* s = cache(id);
    if (!s || s->destroyed) continue;
    if (s->name == name) return id;
    for (const auto& a : s->aliases)
      if (a == name) return id;
  }
  return 0;
}

unsigned Slab::kmem_cache_size(cache_id c) const {
  const kmem_cache* s = cache(c);
  return s ? s->object_size : 0;
}

void Slab::report(MisuseKind kind, const kmem_cache* s, vaddr_t addr, vaddr_t object,
                  std::string api, std::string detail, std::uint64_t access_len, bool is_write,
                  std::string what) {
  if (!mm_.observed()) return;
  Misuse m;
  m.kind = kind;
  m.addr = addr;
  m.api = std::move(api);
  m.detail = std::move(detail);
  if (s) {
    m.cache = s->name;
    m.object_size = s->object_size;
  }
  m.what = std::move(what);
  m.object = object;
  m.access_len = access_len;
  m.is_write = is_write;
  if (addr && mm_.virt_addr_valid(addr)) m.pfn = mm_.virt_to_pfn(addr);
  mm_.notify([&](MmObserver& o) { o.misuse(m); });
}

// ---------------------------------------------------------------- slabs

pfn_t Slab::alloc_slab_page(kmem_cache& s, gfp_t gfp, int node, unsigned order,
                            unsigned nr_objects) {
  const pfn_t pfn = mm_.page_alloc.alloc_pages_node(node, gfp, order);
  if (pfn == NO_PAGE) return NO_PAGE;
  page& p = mm_.pfn_to_page(pfn);
  p.set(PG_slab);  // __folio_set_slab()
  p.slab = {};
  p.slab.cache = s.id;
  // account_slab(): the node counters are kept in bytes.
  const long bytes = static_cast<long>(mm_.profile.page_size() << order);
  auto& stat = mm_.page_alloc.node_data[p.nid].vm_stat;
  stat[(s.flags & SLAB_RECLAIM_ACCOUNT) ? NR_SLAB_RECLAIMABLE_B : NR_SLAB_UNRECLAIMABLE_B] += bytes;
  touch_shadow(pfn - mm_.sparse.base_pfn());
  shadow_[pfn - mm_.sparse.base_pfn()] = std::make_unique<std::vector<ObjectTrack>>(nr_objects);
  return pfn;
}

void Slab::free_slab_page(kmem_cache& s, pfn_t head, unsigned order) {
  page& p = mm_.pfn_to_page(head);
  const long bytes = static_cast<long>(mm_.profile.page_size() << order);
  auto& stat = mm_.page_alloc.node_data[p.nid].vm_stat;
  stat[(s.flags & SLAB_RECLAIM_ACCOUNT) ? NR_SLAB_RECLAIMABLE_B : NR_SLAB_UNRECLAIMABLE_B] -= bytes;
  p.clear(PG_slab);
  p.slab = {};
  touch_shadow(head - mm_.sparse.base_pfn());
  shadow_[head - mm_.sparse.base_pfn()].reset();
  mm_.page_alloc.__free_pages(head, order);
}

std::optional<ObjectRef> Slab::find_object(vaddr_t addr) const {
  if (!allocator || !mm_.virt_addr_valid(addr)) return std::nullopt;
  return allocator->find_object(addr);
}

std::optional<std::uint64_t> Slab::large_kmalloc_size(pfn_t head) const {
  auto it = std::lower_bound(large_.begin(), large_.end(), std::make_pair(head, std::uint64_t{0}));
  if (it == large_.end() || it->first != head) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------- kmem_cache API

// slab_post_alloc_hook(): init_on_alloc (unless the contents must survive:
// ctor, RCU, poison) or __GFP_ZERO clears the object.
void Slab::post_alloc_init(const kmem_cache& s, vaddr_t obj, gfp_t gfp) {
  const bool init = (gfp & __GFP_ZERO) || (mm_.profile.init_on_alloc && !s.ctor.present &&
                                           !(s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON)));
  if (init) mm_.ram.zero(mm_.__pa(obj), s.object_size);
}

vaddr_t Slab::slab_alloc(kmem_cache& s, gfp_t gfp, int node, std::uint32_t orig_size,
                         bool from_kmalloc) {
  const vaddr_t obj = allocator->alloc(s, gfp, node, orig_size);
  if (!obj) return 0;
  post_alloc_init(s, obj, gfp);
  if (mm_.observed()) {
    const bool accounted = (gfp & __GFP_ACCOUNT) || (s.flags & SLAB_ACCOUNT);
    if (from_kmalloc)
      mm_.notify([&](MmObserver& o) { o.kmalloc(obj, orig_size, s.size, gfp, node, accounted); });
    else
      mm_.notify([&](MmObserver& o) {
        o.kmem_cache_alloc(obj, s.object_size, s.size, gfp, node, accounted);
      });
  }
  return obj;
}

vaddr_t Slab::kmem_cache_alloc_node(cache_id c, gfp_t gfp, int node) {
  kmem_cache* s = cache(c);
  if (!s) {
    report(MisuseKind::slab_bad_cache, nullptr, 0, 0, "kmem_cache_alloc", "no such kmem_cache");
    return 0;
  }
  if (s->destroyed) {
    report(MisuseKind::slab_cache_destroyed, s, 0, 0, "kmem_cache_alloc",
           "kmem_cache_alloc() on a destroyed cache");
    return 0;
  }
  if (!gfp_zone_valid(gfp) ||
      (node != NUMA_NO_NODE && (node < 0 || static_cast<unsigned>(node) >= mm_.machine.nr_nodes))) {
    report(MisuseKind::slab_bad_cache, s, 0, 0, "kmem_cache_alloc",
           "bad GFP mask " + format_gfp(gfp) + " or node " + std::to_string(node));
    return 0;
  }
  return slab_alloc(*s, gfp, node, s->object_size, false);
}

// Is obj an allocated object (of expect, if given)? Reports what the kernel
// would (cache_from_obj(), check_valid_pointer(), KASAN invalid-free).
// head: the slab page holding obj, NO_PAGE if there is none.
bool Slab::check_free(kmem_cache* expect, vaddr_t obj, pfn_t head, const char* api,
                      ObjectRef* out) {
  if (head != NO_PAGE && allocator->find_object_in(head, obj, out) && out->object == obj &&
      out->allocated && (!expect || out->cache == expect->id)) [[likely]]
    return true;
  return check_free_slow(expect, obj, head, api, out);
}

[[gnu::cold, gnu::noinline]] bool Slab::check_free_slow(kmem_cache* expect, vaddr_t obj, pfn_t head,
                                                        const char* api, ObjectRef* out) {
  if (head == NO_PAGE || !allocator->find_object_in(head, obj, out)) {
    report(MisuseKind::slab_invalid_free, expect, obj, 0, api,
           std::string(api) + ": Object is not a Slab page!");
    return false;
  }
  const kmem_cache* actual = cache(out->cache);
  if (expect && actual && actual != expect) {
    report(MisuseKind::slab_wrong_cache, actual, obj, out->object, api,
           std::string(api) + ": Wrong slab cache. " + expect->name + " but object is from " +
               actual->name);
    return false;
  }
  if (out->object != obj) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "Invalid object pointer 0x%llx (object at 0x%llx)",
                  static_cast<unsigned long long>(obj),
                  static_cast<unsigned long long>(out->object));
    report(MisuseKind::slab_invalid_free, actual, obj, out->object, api, buf);
    return false;
  }
  if (!out->allocated) {
    report(MisuseKind::slab_double_free, actual, obj, out->object, api, "Object already free");
    return false;
  }
  return true;
}

void Slab::kmem_cache_free(cache_id c, vaddr_t obj) {
  kmem_cache* s = cache(c);
  if (!s) {
    report(MisuseKind::slab_bad_cache, nullptr, obj, 0, "kmem_cache_free", "no such kmem_cache");
    return;
  }
  if (s->destroyed) {
    report(MisuseKind::slab_cache_destroyed, s, obj, 0, "kmem_cache_free",
           "kmem_cache_free() on a destroyed cache");
    return;
  }
  ObjectRef ref;
  const pfn_t head = mm_.virt_addr_valid(obj) ? slab_head(mm_.virt_to_pfn(obj)) : NO_PAGE;
  if (!check_free(s, obj, head, "kmem_cache_free", &ref)) return;
  if (mm_.observed()) mm_.notify([&](MmObserver& o) { o.kmem_cache_free(obj, s->name); });
  allocator->free_object(*s, ref);
}

std::size_t Slab::kmem_cache_alloc_bulk(cache_id c, gfp_t gfp, std::size_t nr, vaddr_t* out) {
  // Bulk allocations are not traced per object (seen in the real trace).
  std::size_t i = 0;
  for (; i < nr; ++i) {
    kmem_cache* s = cache(c);
    if (!s || s->destroyed) {
      kmem_cache_alloc(c, gfp);  // reports
      break;
    }
    out[i] = allocator->alloc(*s, gfp, NUMA_NO_NODE, s->object_size);
    if (!out[i]) break;
    post_alloc_init(*s, out[i], gfp);
  }
  if (i < nr) {  // all or nothing, as kmem_cache_alloc_bulk()
    kmem_cache_free_bulk(c, i, out);
    return 0;
  }
  return nr;
}

void Slab::kmem_cache_free_bulk(cache_id c, std::size_t nr, const vaddr_t* objs) {
  for (std::size_t i = 0; i < nr; ++i) kmem_cache_free(c, objs[i]);
}

int Slab::kmem_cache_shrink(cache_id c) {
  kmem_cache* s = cache(c);
  if (!s || s->destroyed) {
    report(s ? MisuseKind::slab_cache_destroyed : MisuseKind::slab_bad_cache, s, 0, 0,
           "kmem_cache_shrink", "kmem_cache_shrink() of no live cache");
    return 0;
  }
  return allocator->shrink(*s);
}

void Slab::kmem_cache_destroy(cache_id c) {
  if (c == 0) return;  // kmem_cache_destroy(NULL) is a no-op
  kmem_cache* s = cache(c);
  if (!s) {
    report(MisuseKind::slab_bad_cache, nullptr, 0, 0, "kmem_cache_destroy", "no such kmem_cache");
    return;
  }
  if (s->destroyed) {
    report(MisuseKind::slab_cache_destroyed, s, 0, 0, "kmem_cache_destroy",
           "kmem_cache_destroy() twice");
    return;
  }
  if (s->refcount < 0 || s->kmalloc) {
    report(MisuseKind::slab_bad_cache, s, 0, 0, "kmem_cache_destroy",
           "kmem_cache_destroy() of boot or kmalloc cache " + s->name);
    return;
  }
  if (--s->refcount > 0) {
    if (!s->aliases.empty()) s->aliases.pop_back();
    return;
  }
  if (!allocator->shutdown(*s)) {
    s->refcount = 1;  // the model keeps the cache usable
    report(MisuseKind::slab_destroy_busy, s, 0, 0, "kmem_cache_destroy",
           "kmem_cache_destroy " + s->name + ": Slab cache still has objects");
    return;
  }
  allocator->release(*s);
  free_bookkeeping(*s);
  s->destroyed = true;
  slab_caches.erase(std::remove(slab_caches.begin(), slab_caches.end(), c), slab_caches.end());
}

// ---------------------------------------------------------------- kmalloc

vaddr_t Slab::kmalloc_large(std::uint64_t size, gfp_t gfp, int node) {
  const unsigned order = fls64((size - 1) >> mm_.profile.page_shift);  // get_order()
  const pfn_t pfn = mm_.page_alloc.alloc_pages_node(node, gfp | __GFP_COMP, order);
  if (pfn == NO_PAGE) return 0;
  mm_.page_alloc.node_data[mm_.pfn_to_page(pfn).nid].vm_stat[NR_SLAB_UNRECLAIMABLE_B] +=
      static_cast<long>(mm_.profile.page_size() << order);
  auto it = std::lower_bound(large_.begin(), large_.end(), std::make_pair(pfn, std::uint64_t{0}));
  large_.insert(it, {pfn, size});
  return mm_.page_address(pfn);
}

// Out of line so the error strings stay off the kmalloc fast path.
[[gnu::cold, gnu::noinline]] void Slab::kmalloc_bad_args(gfp_t gfp, int node) {
  if (!gfp_zone_valid(gfp))
    report(MisuseKind::slab_bad_cache, nullptr, 0, 0, "kmalloc",
           "contradictory GFP mask " + format_gfp(gfp));
  else
    report(MisuseKind::slab_bad_cache, nullptr, 0, 0, "kmalloc_node",
           "node " + std::to_string(node) + " is not online");
}

[[gnu::cold, gnu::noinline]] void Slab::misuse(MisuseKind kind, vaddr_t addr, const char* api,
                                               const char* detail) {
  report(kind, nullptr, addr, 0, api, detail);
}

vaddr_t Slab::kmalloc_node(std::uint64_t size, gfp_t gfp, int node) {
  if ((node != NUMA_NO_NODE && (node < 0 || static_cast<unsigned>(node) >= mm_.machine.nr_nodes)) ||
      !gfp_zone_valid(gfp)) [[unlikely]] {
    kmalloc_bad_args(gfp, node);
    return 0;
  }
  if (own_kmalloc_) {
    const vaddr_t p = allocator->kmalloc(size, gfp, node);
    if (p && !ZERO_OR_NULL_PTR(p) && mm_.observed()) {
      const std::uint64_t alloc = allocator->kmalloc_bytes_alloc(size);
      mm_.notify([&](MmObserver& o) { o.kmalloc(p, size, alloc, gfp, node, gfp & __GFP_ACCOUNT); });
    }
    return p;
  }
  if (size > kmalloc_max_cache_size()) {
    const vaddr_t p = kmalloc_large(size, gfp, node);
    if (mm_.observed()) {
      const std::uint64_t alloc = mm_.profile.page_size()
                                  << fls64((size - 1) >> mm_.profile.page_shift);
      mm_.notify([&](MmObserver& o) { o.kmalloc(p, size, alloc, gfp, node, gfp & __GFP_ACCOUNT); });
    }
    return p;
  }
  const cache_id c = kmalloc_slab(size, gfp);
  if (!c) return size ? 0 : ZERO_SIZE_PTR;
  return slab_alloc(*cache(c), gfp, node, static_cast<std::uint32_t>(size), true);
}

vaddr_t Slab::kmalloc_array(std::uint64_t n, std::uint64_t size, gfp_t gfp) {
  std::uint64_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) return 0;  // check_mul_overflow()
  return kmalloc(bytes, gfp);
}

void Slab::free_large_kmalloc(pfn_t head, vaddr_t obj) {
  const page& p = mm_.pfn_to_page(head);
  const unsigned order = PageHead(p) ? mm_.pfn_to_page(head + 1).compound_order : 0;
  auto it = std::lower_bound(large_.begin(), large_.end(), std::make_pair(head, std::uint64_t{0}));
  if (it == large_.end() || it->first != head || mm_.page_address(head) != obj) {
    report(MisuseKind::slab_invalid_free, nullptr, obj, 0, "kfree",
           "kfree() of something that is neither a slab object nor a large kmalloc");
    return;
  }
  large_.erase(it);
  mm_.page_alloc.node_data[p.nid].vm_stat[NR_SLAB_UNRECLAIMABLE_B] -=
      static_cast<long>(mm_.profile.page_size() << order);
  mm_.page_alloc.__free_pages(head, order);
}

void Slab::kfree(vaddr_t p) {
  if (mm_.observed()) mm_.notify([&](MmObserver& o) { o.kfree(p); });
  if (ZERO_OR_NULL_PTR(p)) return;
  if (own_kmalloc_) {
    allocator->kfree(p);
    return;
  }
  if (!mm_.virt_addr_valid(p)) [[unlikely]] {
    misuse(MisuseKind::slab_invalid_free, p, "kfree",
           "kfree() of an address outside the linear map");
    return;
  }
  const pfn_t pfn = mm_.virt_to_pfn(p);
  const page& pg = mm_.pfn_to_page(pfn);
  const pfn_t head = PageTail(pg) ? (pg.compound_head >> 1) : pfn;
  if (!PageSlab(mm_.pfn_to_page(head))) {
    free_large_kmalloc(head, p);
    return;
  }
  ObjectRef ref;
  if (!check_free(nullptr, p, head, "kfree", &ref)) return;
  allocator->free_object(*cache(ref.cache), ref);
}

std::uint64_t Slab::ksize(vaddr_t p) {
  if (ZERO_OR_NULL_PTR(p)) return 0;
  if (!mm_.virt_addr_valid(p)) {
    report(MisuseKind::kasan_wild_access, nullptr, p, 0, "ksize",
           "ksize() of an address outside the linear map", 1, false, "wild-memory-access");
    return 0;
  }
  const pfn_t pfn = mm_.virt_to_pfn(p);
  const page& pg = mm_.pfn_to_page(pfn);
  const pfn_t head = PageTail(pg) ? (pg.compound_head >> 1) : pfn;
  if (!PageSlab(mm_.pfn_to_page(head))) {
    if (!large_kmalloc_size(head)) {
      report(MisuseKind::kasan_wild_access, nullptr, p, 0, "ksize", "ksize() of no kmalloc object",
             1, false, "wild-memory-access");
      return 0;
    }
    const unsigned order =
        PageHead(mm_.pfn_to_page(head)) ? mm_.pfn_to_page(head + 1).compound_order : 0;
    return mm_.profile.page_size() << order;
  }
  const auto ref = allocator->find_object(p);
  if (!ref || !ref->allocated) {
    // kasan_check_byte() fails: ksize() returns 0 after a report.
    report(MisuseKind::kasan_use_after_free, ref ? cache(ref->cache) : nullptr, p,
           ref ? ref->object : 0, "ksize", "ksize() of a freed object", 1, false, "use-after-free");
    return 0;
  }
  const unsigned ks = allocator->ksize(*cache(ref->cache));
  // ksize() unpoisons the whole usable size for the caller.
  if (auto* sh = shadow(ref->slab)) (*sh)[ref->index].requested = ks;
  return ks;
}

vaddr_t Slab::krealloc(vaddr_t p, std::uint64_t new_size, gfp_t gfp) {
  if (!new_size) {
    kfree(p);
    return ZERO_SIZE_PTR;
  }
  std::uint64_t ks = 0;
  if (!ZERO_OR_NULL_PTR(p)) {
    ks = ksize_raw(p);
    if (!ks) return 0;  // not a live object: reported
  }
  if (ks >= new_size) {
    // kasan_krealloc(): the object stays, its usable size changes.
    if (const auto ref = allocator->find_object(p); ref && ref->object == p) {
      if (auto* sh = shadow(ref->slab))
        (*sh)[ref->index].requested = static_cast<std::uint32_t>(new_size);
    } else {
      const pfn_t head = mm_.virt_to_pfn(p);
      auto it =
          std::lower_bound(large_.begin(), large_.end(), std::make_pair(head, std::uint64_t{0}));
      if (it != large_.end() && it->first == head) it->second = new_size;
    }
    return p;
  }
  const vaddr_t ret = kmalloc(new_size, gfp);
  if (ret && !ZERO_OR_NULL_PTR(p)) {
    std::vector<std::uint8_t> buf(ks);
    mm_.ram.read(mm_.__pa(p), buf);
    mm_.ram.write(mm_.__pa(ret), buf);
  }
  if (ret && p != ret) kfree(p);
  return ret;
}

// __ksize() with the kasan_check_byte() of krealloc(): 0 and a report for a
// pointer that is no live object.
std::uint64_t Slab::ksize_raw(vaddr_t p) {
  if (!mm_.virt_addr_valid(p)) {
    report(MisuseKind::kasan_wild_access, nullptr, p, 0, "krealloc",
           "krealloc() of an address outside the linear map", 1, false, "wild-memory-access");
    return 0;
  }
  const pfn_t pfn = mm_.virt_to_pfn(p);
  const page& pg = mm_.pfn_to_page(pfn);
  const pfn_t head = PageTail(pg) ? (pg.compound_head >> 1) : pfn;
  if (!PageSlab(mm_.pfn_to_page(head))) {
    if (!large_kmalloc_size(head) || mm_.page_address(head) != p) {
      report(MisuseKind::kasan_wild_access, nullptr, p, 0, "krealloc",
             "krealloc() of no kmalloc object", 1, false, "wild-memory-access");
      return 0;
    }
    const unsigned order =
        PageHead(mm_.pfn_to_page(head)) ? mm_.pfn_to_page(head + 1).compound_order : 0;
    return mm_.profile.page_size() << order;
  }
  const auto ref = allocator->find_object(p);
  if (!ref || !ref->allocated || ref->object != p) {
    report(
        ref && !ref->allocated ? MisuseKind::kasan_use_after_free : MisuseKind::kasan_wild_access,
        ref ? cache(ref->cache) : nullptr, p, ref ? ref->object : 0, "krealloc",
        "krealloc() of a pointer that is no live object", 1, false,
        ref && !ref->allocated ? "use-after-free" : "wild-memory-access");
    return 0;
  }
  return allocator->ksize(*cache(ref->cache));
}

void Slab::kfree_sensitive(vaddr_t p) {
  const std::uint64_t ks = ZERO_OR_NULL_PTR(p) ? 0 : ksize(p);
  if (ks) mm_.ram.fill(mm_.__pa(p), ks, 0);  // memzero_explicit()
  kfree(p);
}

vaddr_t Slab::kmemdup(vaddr_t src, std::uint64_t len, gfp_t gfp) {
  std::vector<std::uint8_t> buf(len);
  if (len && !read(src, buf)) return 0;
  const vaddr_t p = kmalloc(len, gfp);
  if (p && !ZERO_OR_NULL_PTR(p) && len) mm_.ram.write(mm_.__pa(p), buf);
  return p;
}

vaddr_t Slab::kstrdup(vaddr_t str, gfp_t gfp) {
  if (!str) return 0;
  // strlen() over simulated memory, one checked byte at a time, bounded.
  std::uint64_t len = 0;
  std::uint8_t c = 1;
  const std::uint64_t limit = kmalloc_max_size();
  while (len < limit) {
    std::uint8_t one[1];
    if (!read(str + len, one)) return 0;
    c = one[0];
    ++len;
    if (!c) break;
  }
  return kmemdup(str, len, gfp);
}

// ---------------------------------------------------------------- client accesses

bool Slab::write(vaddr_t addr, std::span<const std::uint8_t> bytes, bool only_if_valid) {
  const bool ok = access(addr, bytes.size(), true);
  if (!ok && only_if_valid) return false;
  if (!bytes.empty() && mm_.virt_addr_valid(addr) && mm_.virt_addr_valid(addr + bytes.size() - 1) &&
      mm_.ram.contains(mm_.__pa(addr), bytes.size()))
    mm_.ram.write(mm_.__pa(addr), bytes);
  return ok;
}

bool Slab::fill(vaddr_t addr, std::uint64_t len, std::uint8_t byte) {
  const bool ok = access(addr, len, true);
  if (len && mm_.virt_addr_valid(addr) && mm_.virt_addr_valid(addr + len - 1) &&
      mm_.ram.contains(mm_.__pa(addr), len))
    mm_.ram.fill(mm_.__pa(addr), len, byte);
  return ok;
}

bool Slab::read(vaddr_t addr, std::span<std::uint8_t> out) {
  const bool ok = access(addr, out.size(), false);
  if (!out.empty() && mm_.virt_addr_valid(addr) && mm_.virt_addr_valid(addr + out.size() - 1) &&
      mm_.ram.contains(mm_.__pa(addr), out.size()))
    mm_.ram.read(mm_.__pa(addr), out);
  else
    std::fill(out.begin(), out.end(), 0);
  return ok;
}

// KASAN's view of an access: the first bad byte decides the report.
bool Slab::access(vaddr_t addr, std::uint64_t len, bool is_write) {
  const char* api = is_write ? "write" : "read";
  const std::uint64_t ps = mm_.profile.page_size();
  if (len == 0) return true;
  if (addr + len < addr) {
    report(MisuseKind::kasan_wild_access, nullptr, addr, 0, api,
           "wild-memory-access: the range wraps", len, is_write, "wild-memory-access");
    return false;
  }
  vaddr_t a = addr;
  const vaddr_t end = addr + len;
  while (a < end) {
    if (a < ps) {
      report(MisuseKind::kasan_wild_access, nullptr, a, 0, api, "null-ptr-deref", len, is_write,
             "null-ptr-deref");
      return false;
    }
    if (!mm_.virt_addr_valid(a)) {
      report(MisuseKind::kasan_wild_access, nullptr, a, 0, api, "wild-memory-access", len, is_write,
             "wild-memory-access");
      return false;
    }
    const pfn_t pfn = mm_.virt_to_pfn(a);
    const page& pg = mm_.pfn_to_page(pfn);
    const pfn_t head = PageTail(pg) ? (pg.compound_head >> 1) : pfn;
    const vaddr_t page_end = mm_.page_address(pfn) + ps;
    if (PageSlab(mm_.pfn_to_page(head))) {
      const auto ref = allocator->find_object(a);
      if (!ref) {
        report(MisuseKind::kasan_out_of_bounds, slab_cache_of(head), a, 0, api, "slab padding", len,
               is_write, "slab-out-of-bounds");
        return false;
      }
      const kmem_cache* s = cache(ref->cache);
      if (!ref->allocated) {
        report(MisuseKind::kasan_use_after_free, s, a, ref->object, api, "use-after-free", len,
               is_write, "use-after-free");
        return false;
      }
      if (a < ref->object || a >= ref->object + ref->requested) {
        report(MisuseKind::kasan_out_of_bounds, s, a, ref->object, api, "slab-out-of-bounds", len,
               is_write, "slab-out-of-bounds");
        return false;
      }
      a = std::min<vaddr_t>(ref->object + ref->requested, end);
      continue;
    }
    // Page allocator memory: allocated blocks are fair game, free ones not.
    const auto& pa = mm_.page_alloc;
    if (PageReserved(pg)) {
      a = std::min(page_end, end);
      continue;
    }
    const pfn_t blk = pa.owning_block(pfn, PAGE_OWNER_ALLOCATED);
    if (blk == NO_PAGE || PageBuddy(pg) || pa.is_free_buddy_page(pfn)) {
      report(MisuseKind::kasan_use_after_free, nullptr, a, 0, api, "use-after-free", len, is_write,
             "use-after-free");
      return false;
    }
    if (const auto req = large_kmalloc_size(blk)) {
      const vaddr_t obj = mm_.page_address(blk);
      if (a >= obj + *req) {
        report(MisuseKind::kasan_out_of_bounds, nullptr, a, obj, api, "slab-out-of-bounds", len,
               is_write, "slab-out-of-bounds");
        return false;
      }
      a = std::min<vaddr_t>(obj + *req, end);
      continue;
    }
    a = std::min(page_end, end);
  }
  return true;
}

void Slab::tick() {
  if (allocator) allocator->tick();
}

}  // namespace mmfuzz::mm
