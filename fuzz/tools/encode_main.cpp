// fuzz_encode: Program text -> fuzz input bytes for one model target, so a
// trace window, a regression or a property failure seeds a fuzzer.
//   fuzz_encode TARGET IN.program OUT.bin
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "fuzz/decoder.h"
#include "program/text.h"
#include "trace/source.h"

int main(int argc, char** argv) {
  using namespace mmfuzz;
  if (argc != 4) {
    std::fprintf(stderr, "usage: fuzz_encode TARGET IN.program OUT.bin\n");
    return 2;
  }
  const fuzz::TargetSpec* t = fuzz::find_target(argv[1]);
  if (!t) {
    std::fprintf(stderr, "fuzz_encode: unknown target '%s'\n", argv[1]);
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz_encode: cannot open %s\n", argv[2]);
    return 2;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    const auto p = prog::parse_program(text, argv[2]);
    const auto bytes = fuzz::encode(p, *t, fuzz::DecodeTables::builtin());
    const std::string tmp = std::string(argv[3]) + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
      if (!out) {
        std::fprintf(stderr, "fuzz_encode: cannot write %s\n", tmp.c_str());
        std::remove(tmp.c_str());
        return 2;
      }
    }
    if (std::rename(tmp.c_str(), argv[3]) != 0) {
      std::fprintf(stderr, "fuzz_encode: cannot write %s\n", argv[3]);
      return 2;
    }
    const auto back = fuzz::decode(bytes, *t, fuzz::DecodeTables::builtin());
    std::printf("%s: %zu ops -> %zu bytes (%zu ops for %s)\n", argv[2], p.ops.size(), bytes.size(),
                back.program.ops.size(), t->name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_encode: %s\n", e.what());
    return 1;
  }
  return 0;
}
