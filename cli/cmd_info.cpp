// mmfuzz info: boot the model and print its /proc views.
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "mm/procfs/procfs.h"

namespace mmfuzz::cli {
namespace {

struct InfoOptions {
  MachineOptions machine;
  std::vector<std::string> views{"iomem", "zoneinfo", "buddyinfo"};
  bool headers = true;
};

int run_info(const InfoOptions& o) {
  const mm::MmConfig cfg = o.machine.to_config();
  for (const auto& v : o.views)
    if (v != "iomem" && v != "zoneinfo" && v != "buddyinfo" && v != "pagetypeinfo" &&
        v != "meminfo" && v != "bootlog")
      throw mm::ConfigError(
          "unknown view '" + v +
          "' (views: iomem, zoneinfo, buddyinfo, pagetypeinfo, meminfo, bootlog)");
  mm::Mm m(cfg);
  std::ostringstream out;
  for (const auto& v : o.views) {
    if (o.headers)
      out << "==> " << (v == "bootlog" ? std::string("boot log") : "/proc/" + v) << " <==\n";
    if (v == "iomem") out << mm::procfs::iomem(m);
    if (v == "zoneinfo") out << mm::procfs::zoneinfo(m);
    if (v == "buddyinfo") out << mm::procfs::buddyinfo(m);
    if (v == "pagetypeinfo") out << mm::procfs::pagetypeinfo(m);
    if (v == "meminfo") out << mm::procfs::meminfo(m);
    if (v == "bootlog")
      for (const auto& l : m.boot_log) out << l << "\n";
    if (o.headers) out << "\n";
  }
  std::fputs(out.str().c_str(), stdout);
  return EXIT_OK;
}

}  // namespace

void register_info(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* sub =
      app.add_subcommand("info", "boot the model and print iomem, zoneinfo and buddyinfo");
  opts->machine.add_to(*sub);
  sub->add_option("--view", opts->views,
                  "views to print, in order: iomem zoneinfo buddyinfo pagetypeinfo meminfo bootlog")
      ->delimiter(',');
  sub->add_flag("!--no-headers", opts->headers, "print the views without ==> name <== headers");
  sub->callback([opts, &run] { run = [opts] { return run_info(*opts); }; });
}

}  // namespace mmfuzz::cli
