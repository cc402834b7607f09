#include "invariants/page_report.h"

#include <fmt/format.h>

#include "mm/mm.h"

namespace mmfuzz::inv {

std::vector<std::string> dump_page(const mm::Mm& m, std::uint64_t pfn) {
  std::vector<std::string> out;
  if (!m.pfn_valid(pfn)) {
    out.push_back(
        fmt::format("pfn:{:#x} has no struct page (not in a present memory section)", pfn));
    return out;
  }
  const mm::page& p = m.pfn_to_page(pfn);
  out.push_back(fmt::format(
      "page:{:016x} refcount:{} mapcount:{} mapping:0000000000000000 index:{:#x} pfn:{:#x}",
      m.pfn_to_vmemmap(pfn), p._refcount, p._mapcount, p.index, pfn));
  if (mm::PageTail(p)) {
    const std::uint64_t head = p.compound_head >> 1;
    out.push_back(fmt::format("head:{:016x} order:{} (tail page)", m.pfn_to_vmemmap(head),
                              m.pfn_valid(head + 1) ? m.pfn_to_page(head + 1).compound_order : 0));
  } else if (mm::PageHead(p) && m.pfn_valid(pfn + 1)) {
    out.push_back(fmt::format("head:{:016x} order:{}", m.pfn_to_vmemmap(pfn),
                              m.pfn_to_page(pfn + 1).compound_order));
  }
  std::string names;
  for (unsigned b = 0; b < mm::__NR_PAGEFLAGS; ++b) {
    if (!((p.flags >> b) & 1)) continue;
    names += mm::pageflag_name(b);
    names += '|';
  }
  out.push_back(fmt::format("flags: {:#x}({}node={}|zone={})", p.flags, names, p.nid, p.zone));
  if ((p.page_type() & mm::PAGE_TYPE_BASE) == mm::PAGE_TYPE_BASE && p.page_type() != 0xffffffffu) {
    std::string t;
    if (mm::PageBuddy(p)) t += "buddy";
    if (mm::PageTable(p)) t += t.empty() ? "table" : "|table";
    out.push_back(fmt::format("page_type: {:#x}({}) order:{}", p.page_type(), t, p.private_));
  }
  return out;
}

std::vector<HistoryEntry> page_history(const mm::Mm& m, std::uint64_t pfn) {
  std::vector<HistoryEntry> h;
  if (!m.pfn_valid(pfn)) return h;
  const mm::PageAlloc& pa = m.page_alloc;
  std::uint64_t head = pfn;
  if (pa.owner(pfn).alloc_seq == 0 && pa.owner(pfn).free_seq == 0) {
    const auto blk = pa.owning_block(pfn, mm::PAGE_OWNER_ALLOCATED);
    if (blk != mm::NO_PAGE) head = blk;
  }
  const mm::page_owner& o = pa.owner(head);
  if (o.alloc_seq || o.state == mm::PAGE_OWNER_ALLOCATED)
    h.push_back({"allocated", op_index_of(o.alloc_seq), o.cpu, "",
                 fmt::format("pfn {:#x} order {}, migratetype {}, gfp_mask {:#x}({})", head,
                             o.order, mm::migratetype_name(mm::gfp_migratetype(o.gfp_mask)),
                             o.gfp_mask, mm::format_gfp(o.gfp_mask))});
  if (o.free_seq)
    h.push_back({"freed", op_index_of(o.free_seq), -1, "", fmt::format("pfn {:#x}", head)});
  return h;
}

Violation page_violation(const mm::Mm& m, ViolationKind kind, std::string invariant,
                         std::string title, std::uint64_t pfn, std::vector<std::string> details) {
  Violation v;
  v.kind = kind;
  v.subsystem = invariant.substr(0, invariant.find('.'));
  if (v.subsystem == "buddy") v.subsystem = "page_alloc";
  v.invariant = std::move(invariant);
  v.title = std::move(title);
  v.details = std::move(details);
  if (pfn != mm::NO_PAGE) {
    v.pfns.push_back(pfn);
    for (auto& l : dump_page(m, pfn)) v.details.push_back(std::move(l));
    v.history = page_history(m, pfn);
  }
  return v;
}

}  // namespace mmfuzz::inv
