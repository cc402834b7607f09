// The built-in decode tables: the workload profile of the bundled arm64 6.1
// boot trace, the one the property generators embed
// (corpus/profiles/arm64-6.1-boot-shell.profile.json, props/builtin_profile.h),
// so a fuzz target needs no files.
#include "fuzz/decoder.h"
#include "props/builtin_profile.h"

namespace mmfuzz::fuzz {

const DecodeTables& DecodeTables::builtin() {
  static const DecodeTables t = from_profile(props::builtin_profile());
  return t;
}

}  // namespace mmfuzz::fuzz
