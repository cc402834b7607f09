#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script (the OSS-Fuzz contract): the
# compilers and flags come from $CC $CXX $CFLAGS $CXXFLAGS, the engine from
# $LIB_FUZZING_ENGINE; the sources are in $SRC/mmfuzz; everything a fuzzer
# needs goes to $OUT: fuzz_<t>, fuzz_<t>_seed_corpus.zip, fuzz_<t>.dict,
# fuzz_<t>.options, and lib/ with the shared libraries the runner image lacks.
# Checked locally with clang-14 + libFuzzer and AFL++ (docs/fuzzing.md).
src="$SRC/mmfuzz"
build="${WORK:-/tmp}/mmfuzz-cflite-build"
jobs="${MMFUZZ_BUILD_JOBS:-$(nproc)}"

rm -rf "$build"
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
# CFLAGS/CXXFLAGS carry the sanitizer and -fsanitize=fuzzer-no-link; no
# build type so CMake adds no optimisation flags of its own. The fuzzers find
# their shared libraries in $OUT/lib.
cmake -S "$src" -B "$build" "${generator[@]}" \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DCMAKE_BUILD_TYPE= \
  -DCMAKE_BUILD_RPATH='$ORIGIN/lib' \
  -DMMFUZZ_FUZZ_ENGINE=external -DMMFUZZ_LIB_FUZZING_ENGINE="$LIB_FUZZING_ENGINE" \
  -DMMFUZZ_WERROR=OFF -DMMFUZZ_SANITIZE=OFF -DMMFUZZ_PLANTED_DEFECTS=OFF \
  -DMMFUZZ_BUILD_TESTS=OFF -DMMFUZZ_BUILD_BENCH=OFF
cmake --build "$build" --target fuzz_targets -j "$jobs"

# The runner image has the C and C++ runtimes, nothing else we link.
copy_libs() {
  mkdir -p "$OUT/lib"
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | ld-linux* | \
        libgcc_s.so* | libstdc++.so* | libresolv.so*) ;;
      *) [ -e "$OUT/lib/$(basename "$lib")" ] || cp -L "$lib" "$OUT/lib/" ;;
    esac
  done
}

zip_dir() {  # zip_dir ZIP DIR: the files of DIR, flat
  rm -f "$1"
  if command -v zip >/dev/null 2>&1; then
    (cd "$2" && find . -maxdepth 1 -type f ! -name '.*' -print0 | xargs -0 -r zip -q -j "$1")
  else
    python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir(sys.argv[2])):
        p = os.path.join(sys.argv[2], name)
        if os.path.isfile(p) and not name.startswith("."):
            z.write(p, name)
PY
  fi
}

n=0
for bin in "$build"/bin/fuzz_*; do
  [ -x "$bin" ] || continue
  name="$(basename "$bin")"
  t="${name#fuzz_}"
  cp "$bin" "$OUT/"
  copy_libs "$bin"
  seeds="$src/corpus/seeds/$t"
  if [ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ]; then
    zip_dir "$OUT/${name}_seed_corpus.zip" "$seeds"
  fi
  {
    echo "[libfuzzer]"
    echo "max_len = 4096"
    echo "rss_limit_mb = 2560"
    echo "timeout = 25"
    if [ -f "$src/corpus/dict/$t.dict" ]; then
      cp "$src/corpus/dict/$t.dict" "$OUT/$name.dict"
      echo "dict = $name.dict"
    fi
  } >"$OUT/$name.options"
  n=$((n + 1))
done
if [ "$n" = 0 ]; then
  echo "build.sh: no fuzz target was built" >&2
  exit 1
fi
echo "build.sh: $n fuzz targets in $OUT"
