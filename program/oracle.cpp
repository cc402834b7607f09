// The reference models behind oracle.h. Each check reads only what a caller
// of the op could see; the live set and the writes come from the ops and
// the Executor's handle records (the Program's view), never from the
// allocator's own structures.
#include "program/oracle.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "invariants/violation.h"
#include "program/executor.h"

namespace mmfuzz::prog {

using namespace mmfuzz::mm;

namespace {

constexpr std::size_t kMaxWrites = 32;  // per handle; older ones are forgotten

unsigned get_order(std::uint64_t size, unsigned page_shift) {
  const std::uint64_t pages = (size + (std::uint64_t{1} << page_shift) - 1) >> page_shift;
  return pages <= 1 ? 0 : static_cast<unsigned>(std::bit_width(pages - 1));
}

}  // namespace

// What kmalloc(size) reports as bytes_alloc on a 6.1 kernel: SLUB and SLAB
// the size class kmalloc_index() picks below KMALLOC_MAX_CACHE_SIZE, whole
// pages above it; SLOB the size plus its minimum alignment (the size header)
// below a page, whole pages above. Computed from the kernel's rules, not
// from the model's caches.
std::uint64_t kmalloc_size_class(SlabVariant v, std::uint64_t size, unsigned kmalloc_min,
                                 unsigned page_shift, unsigned max_order) {
  const std::uint64_t page = std::uint64_t{1} << page_shift;
  const std::uint64_t minalign = std::max<std::uint64_t>(kmalloc_min, 8);
  if (v == SlabVariant::slob)
    return size < page - minalign ? size + minalign : page << get_order(size, page_shift);
  // KMALLOC_SHIFT_HIGH: SLUB PAGE_SHIFT + 1, SLAB min(MAX_ORDER + PAGE_SHIFT - 1, 25).
  const unsigned high =
      v == SlabVariant::slub ? page_shift + 1 : std::min(max_order + page_shift - 1, 25u);
  if (size > (std::uint64_t{1} << high)) return page << get_order(size, page_shift);
  if (size <= kmalloc_min) return kmalloc_min;
  if (kmalloc_min <= 32 && size > 64 && size <= 96) return 96;
  if (kmalloc_min <= 64 && size > 128 && size <= 192) return 192;
  return std::bit_ceil(size);
}

Oracle::Oracle(Executor& ex) : ex_(ex) {}
Oracle::~Oracle() = default;

void Oracle::fail(const Op& op, const char* id, const char* subsystem, std::string title,
                  std::vector<std::string> details, std::uint64_t addr) {
  if (!ex_.wants(id)) return;
  inv::Violation v;
  v.invariant = id;
  v.subsystem = subsystem;
  v.title = "mmfuzz: " + std::move(title);
  v.details = std::move(details);
  if (addr) v.addrs.push_back(addr);
  ex_.report(op, std::move(v));
}

void Oracle::before(const Op& op) {
  sleeper_tickets_.clear();
  for (const auto& [ticket, h] : ex_.sleepers_) sleeper_tickets_.push_back(ticket);
  pool_curr_ = pool_min_ = 0;
  Handle pool = 0;
  if (const auto* a = op.get_if<MempoolAlloc>()) pool = a->pool;
  if (const auto* a = op.get_if<MempoolFree>()) pool = a->pool;
  pool_id_ = 0;
  pool_element_ = false;
  if (pool) {
    const auto it = ex_.pools_.find(pool);
    const mempool_t* p = it == ex_.pools_.end() ? nullptr : ex_.mm_.mempools.pool(it->second);
    if (p) pool_curr_ = p->curr_nr(), pool_min_ = p->min_nr, pool_id_ = p->id;
  }
  if (const auto* a = op.get_if<MempoolFree>()) {
    const auto it = ex_.objects_.find(a->obj);
    pool_element_ = it != ex_.objects_.end() && it->second.live &&
                    it->second.kind == Executor::ObjKind::pool && it->second.pool == pool_id_;
  }
  if (const auto* a = op.get_if<SplitPage>()) {
    const auto it = ex_.pages_.find(a->page);
    split_order_ = it == ex_.pages_.end() ? 0 : it->second.order;
  }
  if (const auto* a = op.get_if<KmemCacheCreate>()) cache_size_[a->name] = a->size;
}

void Oracle::after(const Op& op) {
  if (!zones_checked_ || op.kind() == OpKind::tick) check_zones(op);
  const OpResult& r = ex_.last();
  if (!r.ran) return;
  std::vector<std::pair<Space, Handle>> hs;
  touched(op, hs);
  for (const auto& [s, h] : hs) reconcile(op, s, h);
  if (op.kind() == OpKind::write || op.kind() == OpKind::read) check_access(op);
  if (op.kind() == OpKind::mempool_alloc || op.kind() == OpKind::mempool_free) check_mempool(op);
}

// The handles whose binding the op may have changed.
void Oracle::touched(const Op& op, std::vector<std::pair<Space, Handle>>& out) const {
  Space s{};
  Handle h = 0;
  HandleRole role{};
  if (op_target(op, s, h, role) && h && role != HandleRole::use) out.emplace_back(s, h);
  if (const auto* a = op.get_if<KmemCacheAllocBulk>())
    for (std::uint32_t i = 0; i < std::min(a->nr, kMaxBulk); ++i)
      out.emplace_back(Space::object, a->obj + i);
  if (const auto* a = op.get_if<KmemCacheFreeBulk>())
    for (std::uint32_t i = 0; i < std::min(a->nr, kMaxBulk); ++i)
      out.emplace_back(Space::object, a->obj + i);
  // put_page uses its handle, and frees the page with the last reference.
  if (const auto* a = op.get_if<PutPage>()) out.emplace_back(Space::page, a->page);
  if (const auto* a = op.get_if<SplitPage>())
    for (Handle i = 0; i < (Handle{1} << split_order_); ++i)
      out.emplace_back(Space::page, a->page + i);
  // Sleepers a free (or resize) woke: their handles are bound now.
  for (const std::uint64_t t : sleeper_tickets_)
    if (!ex_.sleepers_.count(t))
      for (const auto& [pool, q] : queues_)
        for (const auto& [ticket, hh] : q)
          if (ticket == t) out.emplace_back(Space::object, hh);
}

// The bytes a handle names now, per the Executor's records; false: none.
bool Oracle::current(Space s, Handle h, std::uint64_t& start, std::uint64_t& end) const {
  const unsigned shift = ex_.mm_.profile.page_shift;
  const std::uint64_t page = std::uint64_t{1} << shift;
  switch (s) {
    case Space::object: {
      const auto it = ex_.objects_.find(h);
      if (it == ex_.objects_.end() || !it->second.live || ZERO_OR_NULL_PTR(it->second.addr))
        return false;
      const Executor::Object& o = it->second;
      std::uint64_t size = o.size;
      if (o.kind == Executor::ObjKind::pool) {
        const mempool_t* p = ex_.mm_.mempools.pool(o.pool);
        if (!p) return false;
        size = p->kind == MempoolKind::pages     ? page << p->order
               : p->kind == MempoolKind::kmalloc ? p->size
                                                 : ex_.mm_.slab.kmem_cache_size(p->cache);
      }
      start = o.addr, end = o.addr + std::max<std::uint64_t>(size, 1);
      return true;
    }
    case Space::page: {
      const auto it = ex_.pages_.find(h);
      if (it == ex_.pages_.end() || !it->second.live) return false;
      const auto ex = exact_size_.find(h);
      start = ex_.mm_.page_address(it->second.pfn);
      end = start + (ex != exact_size_.end() ? (ex->second + page - 1) / page * page
                                             : page << it->second.order);
      return true;
    }
    case Space::area: {
      const auto it = ex_.areas_.find(h);
      if (it == ex_.areas_.end() || !it->second.live) return false;
      start = it->second.addr & ~(page - 1);
      end = (it->second.addr + it->second.size + page - 1) & ~(page - 1);
      return true;
    }
  }
  return false;
}

void Oracle::reconcile(const Op& op, Space s, Handle h) {
  const Key k = key(s, h);
  std::uint64_t start = 0, end = 0;
  const bool now = current(s, h, start, end);
  const auto it = live_.find(k);
  if (it != live_.end() && now && it->second.start == start && it->second.end == end) return;
  std::vector<Write> carried;
  std::uint64_t old_start = 0, old_end = 0;
  if (it != live_.end()) {
    old_start = it->second.start, old_end = it->second.end;
    if (op.kind() == OpKind::krealloc) carried = std::move(it->second.writes);
    remove(k);
    // A refused misuse (vunmap of a vmalloc area) may leave the area mapped.
    if (s == Space::area && !now && !ex_.last().misuse) check_area_unmapped(op, old_start, old_end);
  }
  if (!now) return;
  if (s == Space::page && op.kind() == OpKind::alloc_pages_exact)
    if (const auto* a = op.get_if<AllocPagesExact>()) {
      exact_size_[h] = a->size;
      current(s, h, start, end);
    }
  add(op, s, h, start, end);
  Live& l = live_[k];
  for (Write w : carried) {  // krealloc keeps the old bytes up to the new size
    if (w.off >= end - start) continue;
    w.len = std::min(w.len, end - start - w.off);
    l.writes.push_back(w);
  }
  if (carried.empty()) on_alloc(op, s, h, l);
}

void Oracle::add(const Op& op, Space s, Handle h, std::uint64_t start, std::uint64_t end) {
  auto next = by_start_.lower_bound(start);
  const Key* other = nullptr;
  if (next != by_start_.end() && next->first < end) other = &next->second;
  if (!other && next != by_start_.begin()) {
    const auto prev = std::prev(next);
    if (live_.at(prev->second).end > start) other = &prev->second;
  }
  if (other) {
    const Live& o = live_.at(*other);
    static constexpr const char* kSpace[] = {"object", "page", "area"};
    fail(op, "oracle.overlap", "oracle",
         fmt::format("{} {} [{:#x}-{:#x}) overlaps live {} {} [{:#x}-{:#x})", kSpace[int(s)], h,
                     start, end, kSpace[*other >> 62], *other & ((Key{1} << 62) - 1), o.start,
                     o.end),
         {"two live allocations share memory: the allocator handed out bytes still in use"}, start);
  } else {
    by_start_.emplace(start, key(s, h));
  }
  live_[key(s, h)] = Live{start, end, false, {}};
}

void Oracle::remove(Key k) {
  const auto it = live_.find(k);
  if (it == live_.end()) return;
  const auto b = by_start_.find(it->second.start);
  if (b != by_start_.end() && b->second == k) by_start_.erase(b);
  live_.erase(it);
}

namespace {

gfp_t alloc_gfp(const Op& op, bool& zero) {
  gfp_t gfp = 0;
  zero = false;
  if (const auto* a = op.get_if<Kmalloc>()) gfp = a->gfp;
  if (const auto* a = op.get_if<KmemCacheAlloc>()) gfp = a->gfp;
  if (const auto* a = op.get_if<KmemCacheAllocBulk>()) gfp = a->gfp;
  if (const auto* a = op.get_if<Krealloc>()) gfp = a->gfp;
  if (const auto* a = op.get_if<Kvmalloc>()) gfp = a->gfp;
  if (const auto* a = op.get_if<AllocPages>()) gfp = a->gfp;
  if (const auto* a = op.get_if<AllocPagesExact>()) gfp = a->gfp;
  if (const auto* a = op.get_if<Vmalloc>()) {
    gfp = a->gfp;
    zero = a->api == VmallocApi::vzalloc;
  }
  zero = zero || (gfp & __GFP_ZERO);
  return gfp;
}

}  // namespace

void Oracle::on_alloc(const Op& op, Space s, Handle h, Live& l) {
  bool zero = false;
  alloc_gfp(op, zero);
  if (s == Space::area) {
    const auto it = ex_.areas_.find(h);
    l.device = it != ex_.areas_.end() && it->second.kind == 2;
  }
  if (zero && op.kind() != OpKind::split_page)
    l.writes.push_back({0, l.end - l.start, ex_.ops(), 0});
  switch (op.kind()) {
    case OpKind::kmalloc:
      return check_kmalloc(op);
    case OpKind::kmem_cache_alloc:
      return check_cache_alloc(op);
    case OpKind::alloc_pages:
    case OpKind::alloc_pages_exact:
      return check_page(op, h);
    case OpKind::vmalloc:
    case OpKind::vmap:
    case OpKind::ioremap:
      return check_area_mapped(op, h);
    default:
      return;
  }
}

void Oracle::check_access(const Op& op) {
  const auto* w = op.get_if<prog::Write>();
  const auto* r = op.get_if<Read>();
  const Space s = w ? w->space : r->space;
  const Handle h = w ? w->h : r->h;
  const std::uint64_t off = w ? w->offset : r->offset;
  const auto it = live_.find(key(s, h));
  if (ex_.last().failed || it == live_.end() || it->second.device) return;
  Live& l = it->second;
  const std::uint64_t size = l.end - l.start;
  const auto data = ex_.last_access();
  if (off >= size) return;
  const std::uint64_t len = std::min<std::uint64_t>(data.size(), size - off);
  if (w) {
    if (l.writes.size() >= kMaxWrites) l.writes.erase(l.writes.begin());
    l.writes.push_back({off, len, ex_.ops(), w->byte});
    return;
  }
  for (std::uint64_t i = 0; i < len; ++i) {
    const std::uint64_t pos = off + i;
    const auto last = std::find_if(l.writes.rbegin(), l.writes.rend(), [pos](const Write& x) {
      return pos >= x.off && pos - x.off < x.len;
    });
    if (last == l.writes.rend() || data[i] == last->byte) continue;
    static constexpr const char* kSpace[] = {"object", "page", "area"};
    fail(op, "oracle.contents", "oracle",
         fmt::format("read of {} {} at offset {} returned {:#04x}, op {} wrote {:#04x} there",
                     kSpace[int(s)], h, pos, data[i], last->op, last->byte),
         {"the bytes a caller wrote to its live allocation changed before it freed it"},
         l.start + pos);
    return;
  }
}

void Oracle::check_kmalloc(const Op& op) {
  const auto& a = *op.get_if<Kmalloc>();
  const OpResult& r = ex_.last();
  if (r.failed || !a.size || !r.bytes_alloc) return;
  Mm& m = ex_.mm_;
  if (r.bytes_alloc < a.size)
    return fail(op, "oracle.ksize", "oracle",
                fmt::format("kmalloc({}) gave {} bytes", a.size, r.bytes_alloc),
                {"ksize() is below the size asked for"}, r.addr);
  const std::uint64_t want = kmalloc_size_class(m.slab.variant, a.size, m.slab.kmalloc_min_size(),
                                                m.profile.page_shift, m.page_alloc.max_order());
  // Debug metadata (red zones, tracking) widens the slot: at least the class then.
  const bool debug = m.config.slab.debug_flags != 0;
  if (r.bytes_alloc == want || (debug && r.bytes_alloc > want)) return check_kmalloc_type(op);
  fail(op, "oracle.kmalloc_size", "oracle",
       fmt::format("kmalloc({}) reported bytes_alloc {}, the kernel's {} gives {}", a.size,
                   r.bytes_alloc, slab_variant_name(m.slab.variant), want),
       {"kmalloc_index() (or SLOB's size header, or the large-kmalloc page order) picks another "
        "size class"},
       r.addr);
}

const char* kernel_kmalloc_type(gfp_t gfp) {
  if (gfp & mm::__GFP_DMA) return "dma";
  if (gfp & mm::__GFP_RECLAIMABLE) return "rcl";
  if (gfp & mm::__GFP_ACCOUNT) return "cg";
  return "normal";
}

// The name prefix of a kmalloc cache of each kernel_kmalloc_type().
std::string_view kmalloc_type_prefix(std::string_view type) {
  if (type == "dma") return "dma-kmalloc-";
  if (type == "rcl") return "kmalloc-rcl-";
  if (type == "cg") return "kmalloc-cg-";
  return "kmalloc-";
}

void Oracle::check_kmalloc_type(const Op& op) {
  const auto& a = *op.get_if<Kmalloc>();
  const OpResult& r = ex_.last();
  Mm& m = ex_.mm_;
  if (m.slab.variant == mm::SlabVariant::slob) return;  // SLOB has no kmalloc caches
  const auto ref = m.slab.find_object(r.addr);
  const mm::kmem_cache* s = ref ? m.slab.cache(ref->cache) : nullptr;
  if (!s) return;  // a large kmalloc: whole pages, no cache
  const std::string_view name = s->name,
                         want = kmalloc_type_prefix(kernel_kmalloc_type(static_cast<gfp_t>(a.gfp)));
  if (name.starts_with(want) && name.size() > want.size() &&
      std::isdigit(static_cast<unsigned char>(name[want.size()])))
    return;
  fail(op, "oracle.kmalloc_type", "oracle",
       fmt::format("kmalloc({}, {}) was served by {}, the kernel's kmalloc_type() picks {}*",
                   a.size, mm::format_gfp(a.gfp), name, want),
       {"__GFP_DMA, then __GFP_RECLAIMABLE, then __GFP_ACCOUNT choose the cache type"}, r.addr);
}

// pcp batch of a zone (zone_batchsize()): about a thousandth of it, at most
// 1 MiB, a quarter of that, then the largest 2^n - 1 under 1.5 times it.
long ref_pcp_batch(std::uint64_t managed, std::uint64_t page_size) {
  std::uint64_t b =
      std::min<std::uint64_t>(managed >> 10, (std::uint64_t{1} << 20) / page_size) / 4;
  b = std::max<std::uint64_t>(b, 1);
  return std::max<long>(1, static_cast<long>(std::bit_floor(b + b / 2)) - 1);
}

// The kernel computes these from the managed pages of the moment
// (init_per_zone_wmark_min, then THP's recomputation) and keeps them while
// __init memory is freed later: a caller sees today's managed pages, not
// those. So the check is what holds whenever they were computed, with
// managed pages that have only grown since: the min watermarks share
// pages_min out (each rounded down), low and high are min plus one and two
// steps of max(min / 4, managed * watermark_scale_factor / 10000), the
// protections are the zones above over lowmem_reserve_ratio, pcp batch is
// zone_batchsize() of at most today's size and 6.1's pcp high is the low
// watermark shared by the node's CPUs, at least four batches.
void Oracle::check_zones(const Op& op) {
  zones_checked_ = true;
  const Mm& m = ex_.mm_;
  const auto& pa = m.page_alloc;
  const auto& prof = m.profile;
  const long pages_min = static_cast<long>(pa.min_free_kbytes >> (prof.page_shift - 10));
  std::vector<std::string> bad;
  // `what` formats the complaint, only for a check that fails.
  const auto check = [&](const mm::zone& z, bool ok, const auto& what) {
    if (!ok)
      bad.push_back(fmt::format("Node {}, zone {}: {}", z.node, mm::zone_name(z.zone_idx), what()));
  };
  long min_sum = 0, zones = 0;
  for (const auto& n : pa.node_data)
    for (std::size_t i = 0; i < n.node_zones.size(); ++i) {
      const mm::zone& z = n.node_zones[i];
      if (!z.managed_zone()) continue;
      const auto wmin = static_cast<long>(z._watermark[mm::WMARK_MIN]);
      const auto low = static_cast<long>(z._watermark[mm::WMARK_LOW]);
      const auto high = static_cast<long>(z._watermark[mm::WMARK_HIGH]);
      min_sum += wmin, ++zones;
      const long step = low - wmin;
      const long most = std::max(
          wmin >> 2, static_cast<long>(z.managed_pages * prof.watermark_scale_factor / 10000));
      check(z, high - low == step, [&] {
        return fmt::format("min {} low {} high {}: low and high are not one step apart", wmin, low,
                           high);
      });
      check(z, step >= wmin >> 2 && step <= most, [&] {
        return fmt::format(
            "watermark step {} outside [min/4 = {}, max(min/4, managed {} x {}/10000) = {}]", step,
            wmin >> 2, z.managed_pages, prof.watermark_scale_factor, most);
      });
      const unsigned ratio = i + 1 < n.node_zones.size() ? prof.lowmem_reserve_ratio[i] : 0;
      std::uint64_t above = 0;
      long prev = 0;
      for (std::size_t j = i + 1; j < n.node_zones.size(); ++j) {
        above += n.node_zones[j].managed_pages;
        const long got = z.lowmem_reserve[j];
        const long cap = ratio ? static_cast<long>(above / ratio) : 0;
        check(z, got >= prev && got <= cap, [&] {
          return fmt::format(
              "protection[{}] {}: want between {} and the zones above / ratio {} = {}", j, got,
              prev, ratio, cap);
        });
        prev = got;
      }
      const long batch_cap = ref_pcp_batch(z.managed_pages, prof.page_size());
      long cpus = 0;  // zone_highsize(): the node's CPUs share the low watermark
      for (unsigned c = 0; c < m.nr_cpus(); ++c)
        cpus += m.cpu_to_node(static_cast<int>(c)) == z.node;
      if (!cpus) cpus = m.nr_cpus();
      for (const auto& pcp : z.per_cpu_pageset) {
        const long b = pcp.batch;
        check(z, b >= 1 && b <= batch_cap && std::has_single_bit(static_cast<unsigned long>(b + 1)),
              [&] {
                return fmt::format("pcp batch {}: want 2^n - 1, at most zone_batchsize() = {}", b,
                                   batch_cap);
              });
        const long want = prof.pcp == mm::PcpModel::v6_1 ? std::max(low / cpus, b << 2) : 6 * b;
        check(z, pcp.high == want, [&] {
          return fmt::format("pcp high {}, the kernel's {} (batch {}, low {})", pcp.high, want, b,
                             low);
        });
      }
    }
  if (zones && (min_sum > pages_min || min_sum <= pages_min - zones))
    bad.push_back(
        fmt::format("the min watermarks sum to {}, want min_free_kbytes' {} pages less "
                    "under one per zone ({} zones)",
                    min_sum, pages_min, zones));
  if (bad.empty()) return;
  std::string title = bad.front();
  fail(op, "oracle.zone", "oracle", "zone policy differs from 6.1's formulas: " + title,
       std::move(bad));
}

void Oracle::check_cache_alloc(const Op& op) {
  const auto& a = *op.get_if<KmemCacheAlloc>();
  const OpResult& r = ex_.last();
  const auto it = cache_size_.find(a.name);
  if (r.failed || !r.bytes_alloc || it == cache_size_.end() || r.bytes_alloc >= it->second) return;
  fail(
      op, "oracle.ksize", "oracle",
      fmt::format("kmem_cache_alloc() of a {}-byte cache gave {} bytes", it->second, r.bytes_alloc),
      {"the object is smaller than the cache's object size"}, r.addr);
}

void Oracle::check_page(const Op& op, Handle h) {
  const auto it = ex_.pages_.find(h);
  const auto l = live_.find(key(Space::page, h));
  if (it == ex_.pages_.end() || l == live_.end()) return;
  Mm& m = ex_.mm_;
  const pfn_t first = it->second.pfn;
  const std::uint64_t n = (l->second.end - l->second.start) >> m.profile.page_shift;
  if (m.pfn_to_page(first)._refcount < 1)
    return fail(op, "oracle.page", "oracle",
                fmt::format("allocated pfn {:#x} has no reference", first),
                {"a page the allocator returned must have page_count() >= 1"});
  for (std::uint64_t i = 0; i < n; ++i)
    if (PageBuddy(m.pfn_to_page(first + i)))
      return fail(op, "oracle.page", "oracle",
                  fmt::format("pfn {:#x} (page {} of the allocation at pfn {:#x}) is still free",
                              first + i, i, first),
                  {"a page the allocator returned is on a free list (PageBuddy)"});
}

void Oracle::check_area_mapped(const Op& op, Handle h) {
  const auto it = ex_.areas_.find(h);
  const auto l = live_.find(key(Space::area, h));
  if (it == ex_.areas_.end() || l == live_.end()) return;
  Mm& m = ex_.mm_;
  const std::uint64_t page = m.profile.page_size();
  const std::uint64_t n = (l->second.end - l->second.start) / page;
  const auto* io = op.get_if<Ioremap>();
  for (std::uint64_t i = 0; i < n; ++i) {
    const vaddr_t va = l->second.start + i * page;
    const auto pa = m.pgtable.translate(va);
    std::string bad;
    if (!pa)
      bad = "is not mapped";
    else if (io && *pa != (io->phys & ~(page - 1)) + i * page)
      bad = fmt::format("maps {:#x}, not the device's {:#x}", *pa,
                        (io->phys & ~(page - 1)) + i * page);
    else if (it->second.kind == 1 && i < it->second.pfns.size() &&
             (*pa >> m.profile.page_shift) != it->second.pfns[i])
      bad = fmt::format("maps pfn {:#x}, not the vmap()ped pfn {:#x}", *pa >> m.profile.page_shift,
                        it->second.pfns[i]);
    else if (!io && PageBuddy(m.pfn_to_page(*pa >> m.profile.page_shift)))
      bad = fmt::format("maps pfn {:#x}, a free page", *pa >> m.profile.page_shift);
    if (!bad.empty())
      return fail(op, "oracle.vmap", "oracle",
                  fmt::format("page {} of the area at {:#x} {}", i, it->second.addr, bad),
                  {"an area maps each of its pages, as its call asked"}, va);
  }
  if (m.pgtable.translate(l->second.end))
    fail(op, "oracle.vmap", "oracle",
         fmt::format("the guard page {:#x} after the area at {:#x} is mapped", l->second.end,
                     it->second.addr),
         {"every vmalloc/vmap/ioremap area is followed by an unmapped guard page"}, l->second.end);
}

void Oracle::check_area_unmapped(const Op& op, std::uint64_t start, std::uint64_t end) {
  Mm& m = ex_.mm_;
  for (vaddr_t va = start; va < end; va += m.profile.page_size())
    if (m.pgtable.translate(va))
      return fail(
          op, "oracle.vmap", "oracle",
          fmt::format("{:#x} of the freed area [{:#x}-{:#x}) is still mapped", va, start, end),
          {"vfree()/vunmap()/iounmap() unmaps the whole area before returning"}, va);
}

void Oracle::check_mempool(const Op& op) {
  const OpResult& r = ex_.last();
  if (!pool_id_) return;
  const mempool_t* p = ex_.mm_.mempools.pool(pool_id_);
  if (const auto* a = op.get_if<MempoolAlloc>()) {
    if ((r.blocked || r.failed) && pool_curr_ > 0)
      fail(op, "oracle.mempool", "oracle",
           fmt::format("mempool_alloc() {} with {} elements in the reserve",
                       r.blocked ? "slept" : "returned NULL", pool_curr_),
           {"mempool_alloc() lends the reserve before it fails or sleeps"});
    const auto it = ex_.objects_.find(a->obj);
    if (r.blocked && it != ex_.objects_.end())
      queues_[pool_id_].emplace_back(it->second.ticket, a->obj);
    return;
  }
  if (!pool_element_ || !p) return;
  std::vector<std::uint64_t> woken;
  for (const std::uint64_t t : sleeper_tickets_)
    if (!ex_.sleepers_.count(t)) woken.push_back(t);
  auto& q = queues_[pool_id_];
  std::erase_if(q, [this](const auto& e) {
    return !ex_.sleepers_.count(e.first) &&
           std::find(sleeper_tickets_.begin(), sleeper_tickets_.end(), e.first) ==
               sleeper_tickets_.end();
  });  // sleepers gone another way (their handle rebound)
  for (std::size_t i = 0; i < woken.size(); ++i)
    if (i >= q.size() || std::find(woken.begin(), woken.end(), q[i].first) == woken.end())
      return fail(op, "oracle.mempool", "oracle",
                  "mempool_free() woke a sleeper before one that slept earlier",
                  {"mempool_alloc() callers asleep on pool->wait are served in order"});
  q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(std::min(woken.size(), q.size())));
  const int curr = p->curr_nr();
  if (pool_curr_ < pool_min_ && woken.empty() && curr != pool_curr_ + 1)
    fail(op, "oracle.mempool", "oracle",
         fmt::format("mempool_free() below min_nr (curr_nr {} < min_nr {}) left curr_nr {}",
                     pool_curr_, pool_min_, curr),
         {"mempool_free() returns the element to the reserve while curr_nr < min_nr"});
  else if (pool_curr_ >= pool_min_ && curr > pool_curr_)
    fail(op, "oracle.mempool", "oracle",
         fmt::format("mempool_free() at curr_nr {} >= min_nr {} grew the reserve to {}", pool_curr_,
                     pool_min_, curr),
         {"mempool_free() frees the element to its allocator once the reserve is full"});
}

}  // namespace mmfuzz::prog
