# The two commands of the README (make demo, make check) and a few more. Each one installs what is
# missing (scripts/deps.sh), configures and builds first.
#   make check SANITIZE=1   the same suite under ASan+UBSan (build-asan/)
#   make conformance        the shared conformance suite (../shared/conformance), when present
#   make bcc-examples       the classic BCC examples (../shared/seed-examples), unchanged, on bpfvm
#   make bench              the JIT (against native code and the kernel's JIT), interpreter, map and
#                           verifier benchmarks, and bpfvm trace's overhead against strace; writes
#                           bench/RESULTS.md (dated), where the README's figures come from
#   make fuzz               the object reader under libFuzzer (FUZZ_SECONDS=60)
#   make fuzz-verifier      the verifier under libFuzzer, seeded with the verifier cases
#   CXX=clang++ make check  build with clang

SHELL := /bin/bash
SANITIZE ?= 0
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
# The project's own builds treat warnings as errors; a plain CMake build does not (BPFVM_WERROR=OFF).
CMAKE_FLAGS += -DBPFVM_WERROR=ON
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
CMAKE_FLAGS += -DBPFVM_SANITIZE=ON
else
BUILD ?= build
endif
CONFORMANCE_DIR ?= ../shared/conformance/tests
SEED_EXAMPLES_DIR ?= ../shared/seed-examples

FUZZ_SECONDS ?= 60

.PHONY: all deps configure build check demo conformance bcc-examples bench fuzz fuzz-verifier clean

all: build

deps:
	@scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

check: build
	@scripts/check_deps
	@cd $(BUILD) && { ctest -j$(JOBS) --output-on-failure --timeout 600 --output-junit ctest-junit.xml; rc=$$?; \
	  $(CURDIR)/scripts/oracle_summary ctest-junit.xml; exit $$rc; }

demo: build
	@examples/demo.sh $(BUILD)/bin/bpfvm

conformance: build
	@if [ -d "$(CONFORMANCE_DIR)" ]; then \
	  $(BUILD)/bin/bpfvm-conformance $(CONFORMANCE_DIR) && \
	  $(BUILD)/bin/bpfvm-conformance --dispatch switch $(CONFORMANCE_DIR) && \
	  $(BUILD)/bin/bpfvm-conformance --jit $(CONFORMANCE_DIR) && \
	  $(BUILD)/bin/bpfvm-conformance --jit --harden $(CONFORMANCE_DIR); \
	else echo "conformance: $(CONFORMANCE_DIR) not found, skipped"; fi

bcc-examples: build
	@if [ -d "$(SEED_EXAMPLES_DIR)" ]; then tests/bcc/seed_examples.sh $(SEED_EXAMPLES_DIR) $(BUILD)/bin/bpfvm; \
	else echo "bcc-examples: $(SEED_EXAMPLES_DIR) not found, skipped"; fi

bench: build
	@bench/run_all.sh $(BUILD)

# The object reader under libFuzzer (clang, ASan+UBSan), seeded with the test objects.
fuzz: build
	@CXX=clang++ CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBPFVM_FUZZ=ON \
	  -DBPFVM_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target object_reader_fuzz
	@mkdir -p build-fuzz/corpus && cp build/tests/progs/*.bpf.o build-fuzz/corpus/
	@build-fuzz/bin/object_reader_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus

# The verifier under libFuzzer (clang, ASan+UBSan), seeded with the assembled verifier cases.
fuzz-verifier: build
	@CXX=clang++ CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBPFVM_FUZZ=ON \
	  -DBPFVM_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target verifier_fuzz
	@fuzz/seed_verifier.sh $(BUILD)/bin/bpfvm build-fuzz/verifier-corpus
	@build-fuzz/bin/verifier_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 build-fuzz/verifier-corpus

clean:
	rm -rf build build-asan build-fuzz
