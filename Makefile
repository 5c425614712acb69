# The two commands of the README (make demo, make check) and a few more. Each one installs what is
# missing (scripts/deps.sh), configures and builds first.
#   make check SANITIZE=1   the same suite under ASan+UBSan (build-asan/)
#   make conformance        the shared conformance suite (../shared/conformance), when present
#   make bench              the interpreter benchmark
#   CXX=clang++ make check  build with clang

SHELL := /bin/bash
SANITIZE ?= 0
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
CMAKE_FLAGS += -DBPFVM_SANITIZE=ON
else
BUILD ?= build
endif
CONFORMANCE_DIR ?= ../shared/conformance/tests

.PHONY: all deps configure build check demo conformance bench clean

all: build

deps:
	@scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

check: build
	@scripts/check_deps
	@cd $(BUILD) && ctest -j$(JOBS) --output-on-failure --timeout 600

demo: build
	@examples/demo.sh $(BUILD)/bin/bpfvm

conformance: build
	@if [ -d "$(CONFORMANCE_DIR)" ]; then \
	  $(BUILD)/bin/bpfvm-conformance $(CONFORMANCE_DIR) && \
	  $(BUILD)/bin/bpfvm-conformance --dispatch switch $(CONFORMANCE_DIR); \
	else echo "conformance: $(CONFORMANCE_DIR) not found, skipped"; fi

bench: build
	@$(BUILD)/bin/interpreter_bench --benchmark_counters_tabular=true

clean:
	rm -rf build build-asan
