# Front door. `make demo` runs the main job on the embedded default;
# `make test` runs every test. Both install what they need first.
WERROR ?= OFF
JOBS ?= $(shell nproc)
CMAKE_FLAGS = -DMMFUZZ_WERROR=$(WERROR)

.PHONY: all deps demo test test-asan test-clang build build-asan build-clang bench format format-check tidy clean

all: build

deps:
	@./scripts/deps.sh

configure-%: deps
	@cmake --preset $* $(CMAKE_FLAGS) >/dev/null

build: configure-default
	cmake --build --preset default -j $(JOBS)

build-asan: configure-asan
	cmake --build --preset asan -j $(JOBS)

build-clang: configure-clang
	cmake --build --preset clang -j $(JOBS)

# The main job: replay the embedded real arm64 6.1 kmem trace
# (corpus/traces/) through the model with every check on.
demo: build
	./build/default/bin/mmfuzz replay

test: build
	ctest --preset default

test-asan: build-asan
	ctest --preset asan

test-clang: build-clang
	ctest --preset clang

bench: build
	./bench/run.sh

FORMAT_FILES = $(shell git ls-files '*.cpp' '*.h' '*.hpp' '*.cc')

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

tidy: configure-default
	run-clang-tidy-14 -quiet -p build/default $(filter %.cpp,$(FORMAT_FILES)) >/dev/null 2>&1 || clang-tidy -p build/default $(filter %.cpp,$(FORMAT_FILES))

clean:
	rm -rf build
