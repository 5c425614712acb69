// The data-driven verifier cases (tests/verifier/*.cases): each small program gets the verdict its case
// states, and, as root, the kernel's verifier agrees unless the case says it differs on purpose. Cases
// name their program type and maps; the kernel gets real maps of the same shape (through fd_array).
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/runtime/verifier_platform.hpp"
#include "bpfvm/verifier/cfg.hpp"
#include "bpfvm/verifier/liveness.hpp"
#include "bpfvm/verifier/verifier.hpp"

namespace bpfvm::verifier {
namespace {

struct MapSpec {
  maps::MapDef def;
  bool freeze = false;
};

struct Case {
  std::string file, name, source, fragment;
  bool accept = true;
  bool kernel_differs = false;
  std::string kernel_skip;  // why the kernel cannot judge it here
  std::uint32_t prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  std::vector<MapSpec> maps;
  int line = 0;
  std::string problem;  // a malformed case header
};

std::optional<std::uint32_t> map_type(std::string_view name) {
  static const std::map<std::string, std::uint32_t, std::less<>> types = {
      {"hash", BPF_MAP_TYPE_HASH},
      {"array", BPF_MAP_TYPE_ARRAY},
      {"percpu_array", BPF_MAP_TYPE_PERCPU_ARRAY},
      {"percpu_hash", BPF_MAP_TYPE_PERCPU_HASH},
      {"lru_hash", BPF_MAP_TYPE_LRU_HASH},
      {"ringbuf", BPF_MAP_TYPE_RINGBUF},
      {"prog_array", BPF_MAP_TYPE_PROG_ARRAY},
      {"perf_event_array", BPF_MAP_TYPE_PERF_EVENT_ARRAY},
      {"queue", BPF_MAP_TYPE_QUEUE},
      {"stack", BPF_MAP_TYPE_STACK},
      {"bloom_filter", BPF_MAP_TYPE_BLOOM_FILTER},
  };
  const auto it = types.find(name);
  if (it == types.end()) return std::nullopt;
  return it->second;
}

// "hash key=4 value=8 entries=16 rdonly_prog"
std::optional<MapSpec> parse_map(const std::string& text) {
  std::istringstream in(text);
  std::string word;
  in >> word;
  const auto type = map_type(word);
  if (!type) return std::nullopt;
  MapSpec m;
  m.def.type = *type;
  m.def.max_entries = 1;
  while (in >> word) {
    const auto eq = word.find('=');
    const std::string k = word.substr(0, eq);
    const std::uint32_t v = eq == std::string::npos ? 0 : static_cast<std::uint32_t>(std::stoul(word.substr(eq + 1)));
    if (k == "key") m.def.key_size = v;
    else if (k == "value") m.def.value_size = v;
    else if (k == "entries") m.def.max_entries = v;
    else if (k == "lock") m.def.spin_lock_off = static_cast<std::int32_t>(v);
    else if (k == "rdonly_prog") {
      m.def.map_flags |= BPF_F_RDONLY_PROG;
      m.freeze = true;
    } else return std::nullopt;
  }
  return m;
}

std::vector<Case> read_cases(const std::filesystem::path& file) {
  std::vector<Case> cases;
  std::ifstream in(file);
  std::string line;
  bool in_source = false;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.starts_with("== ")) {
      cases.push_back({});
      cases.back().file = file.filename().string();
      cases.back().name = line.substr(3);
      cases.back().line = n;
      in_source = false;
    } else if (cases.empty()) {
      continue;
    } else if (in_source) {
      cases.back().source += line + "\n";
    } else if (line == "--") {
      in_source = true;
    } else if (line.starts_with("expect: ")) {
      const std::string e = line.substr(8);
      cases.back().accept = e == "accept";
      if (const auto q = e.find('"'); q != std::string::npos) cases.back().fragment = e.substr(q + 1, e.rfind('"') - q - 1);
    } else if (line == "kernel: differs") {
      cases.back().kernel_differs = true;
    } else if (line.starts_with("kernel: skip ")) {
      cases.back().kernel_skip = line.substr(13);
    } else if (line.starts_with("type: ")) {
      const auto t = obj::prog_type_from_name(line.substr(6));
      if (t) cases.back().prog_type = *t;
      else cases.back().problem = "unknown type " + line.substr(6);
    } else if (line.starts_with("map: ")) {
      const auto m = parse_map(line.substr(5));
      if (m) cases.back().maps.push_back(*m);
      else cases.back().problem = "bad map " + line.substr(5);
    } else if (!line.empty() && !line.starts_with("#")) {
      cases.back().problem = "unknown header line: " + line;
    }
  }
  return cases;
}

long bpf(int cmd, union bpf_attr& a) { return ::syscall(__NR_bpf, cmd, &a, sizeof a); }

// The kernel's verdict, or nullopt without bpf() (or when its maps cannot be made).
std::optional<bool> kernel_accepts(const Case& c, std::span<const isa::RawInsn> insns) {
  if (::geteuid() != 0) return std::nullopt;
  std::vector<int> fds;
  auto close_all = [&] {
    for (int fd : fds) ::close(fd);
  };
  for (const MapSpec& m : c.maps) {
    union bpf_attr a {};
    a.map_type = m.def.type;
    a.key_size = m.def.key_size;
    a.value_size = m.def.value_size;
    a.max_entries = m.def.max_entries;
    a.map_flags = m.def.map_flags;
    const long fd = bpf(BPF_MAP_CREATE, a);
    if (fd < 0) {
      close_all();
      return std::nullopt;
    }
    fds.push_back(static_cast<int>(fd));
    if (m.freeze) {
      union bpf_attr f {};
      f.map_fd = static_cast<std::uint32_t>(fd);
      bpf(BPF_MAP_FREEZE, f);
    }
  }
  const auto wire = isa::to_wire(insns);
  union bpf_attr a {};
  a.prog_type = c.prog_type;
  a.insns = reinterpret_cast<std::uint64_t>(wire.data());
  a.insn_cnt = static_cast<std::uint32_t>(insns.size());
  a.license = reinterpret_cast<std::uint64_t>("GPL");
  a.fd_array = reinterpret_cast<std::uint64_t>(fds.data());
  const long fd = bpf(BPF_PROG_LOAD, a);
  const int err = errno;
  close_all();
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
    return true;
  }
  // ENOTSUPP (524) comes after verification (a map the kernel cannot fix up for this use).
  if (err == EPERM || err == ENOSYS || err == 524) return std::nullopt;
  return false;
}

TEST(VerifierCases, EveryCaseGetsItsVerdict) {
  int total = 0, rejected = 0, kernel_compared = 0, hinted = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BPFVM_VERIFIER_CASES_DIR)) {
    if (entry.path().extension() != ".cases") continue;
    for (const Case& c : read_cases(entry.path())) {
      SCOPED_TRACE(fmt::format("{}:{}: {}", c.file, c.line, c.name));
      ASSERT_TRUE(c.problem.empty()) << c.problem;
      ++total;
      rejected += !c.accept;
      std::vector<MapInfo> infos;
      for (const MapSpec& m : c.maps) infos.push_back(runtime::VerifierPlatform::map_info(m.def));
      const runtime::VerifierPlatform platform(c.prog_type, infos);
      auto insns = isa::assemble(c.source, isa::AsmSyntax::kKernel);
      Rejection rejection;
      VerifierOptions options;
      options.rejection = &rejection;
      Result<VerifierStats> verdict = insns ? verify(*insns, platform, options) : Result<VerifierStats>(insns.error());
      if (insns && !verdict) {
        // Every refusal is explained: the message and the instruction it is about.
        const std::string text = explain(rejection, *insns);
        EXPECT_NE(text.find(verdict.error().message()), std::string::npos) << text;
        EXPECT_NE(text.find(fmt::format("{:>5}: (", rejection.insn)), std::string::npos) << text;
        hinted += !rejection.hint.empty();
      }
      if (c.accept) {
        EXPECT_TRUE(verdict) << verdict.error().to_string();
      } else {
        ASSERT_FALSE(verdict) << "accepted";
        EXPECT_NE(verdict.error().to_string().find(c.fragment), std::string::npos)
            << "message: " << verdict.error().to_string() << "\nexpected to contain: " << c.fragment;
        // EACCES for unsafe programs, EINVAL for malformed ones; never "not supported".
        EXPECT_NE(verdict.error().code(), Errc::kNotSupported) << verdict.error().to_string();
      }
      if (!insns || c.kernel_differs || !c.kernel_skip.empty()) continue;
      if (const auto kernel = kernel_accepts(c, *insns)) {
        EXPECT_EQ(*kernel, c.accept) << "the kernel's verifier " << (*kernel ? "accepts" : "rejects") << " it";
        ++kernel_compared;
      }
    }
  }
  EXPECT_GT(total, 40);
  std::printf("%d cases (%d unsafe, %d of them with a fix hint), %d also given to the kernel\n", total, rejected,
              hinted, kernel_compared);
}

// The map each helper call passes, as the JIT uses it: one map on every path, different maps, none.
TEST(VerifierCallMaps, RecordsTheMapEachCallPasses) {
  maps::MapDef hash{BPF_MAP_TYPE_HASH, 4, 8, 16, 0, "h"};
  const std::vector<MapInfo> infos = {runtime::VerifierPlatform::map_info(hash), runtime::VerifierPlatform::map_info(hash)};
  const runtime::VerifierPlatform platform(BPF_PROG_TYPE_SOCKET_FILTER, infos);
  auto record = [&](const char* text) {
    auto insns = isa::assemble(text, isa::AsmSyntax::kKernel);
    EXPECT_TRUE(insns) << insns.error().to_string();
    std::vector<std::int64_t> call_maps;
    VerifierOptions options;
    options.call_maps = &call_maps;
    auto verdict = verify(*insns, platform, options);
    EXPECT_TRUE(verdict) << verdict.error().to_string();
    EXPECT_EQ(call_maps.size(), insns->size());
    return call_maps;
  };
  // r1 is map 1 on both branches: the call (instruction 8) knows it; the lddw slots know nothing.
  const char* same = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nif r1 == 0 goto one\nr1 = map[idx:1]\n"
                     "goto call\none:\nr1 = map[idx:1]\ncall:\ncall bpf_map_lookup_elem\nr0 = 0\nexit";
  auto known = record(same);
  ASSERT_EQ(known.size(), 12u);
  EXPECT_EQ(known[9], 1);
  EXPECT_EQ(known[4], kNoMap);
  EXPECT_EQ(known[11], kNoMap);
  // Map 0 on one branch, map 1 on the other.
  const char* various = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nif r1 == 0 goto one\nr1 = map[idx:0]\n"
                        "goto call\none:\nr1 = map[idx:1]\ncall:\ncall bpf_map_lookup_elem\nr0 = 0\nexit";
  EXPECT_EQ(record(various)[9], kVariousMaps);
}

// The statistics of verifying `text` (kernel assembly) for `platform`; what fails is the test's failure.
std::optional<VerifierStats> stats_of(const std::string& text, const Platform& platform) {
  auto insns = isa::assemble(text, isa::AsmSyntax::kKernel);
  if (!insns) {
    ADD_FAILURE() << insns.error().to_string();
    return std::nullopt;
  }
  auto stats = verify(*insns, platform, {});
  if (!stats) {
    ADD_FAILURE() << stats.error().to_string();
    return std::nullopt;
  }
  return *stats;
}

// A helper reads the bytes a pointer argument gives it, but their values decide nothing the verifier
// checks (the kernel marks only registers precise at a call): paths that differ only in a key prune
// into one another before the call. A function called with the same stack is verified code, whose
// reads may decide safety, so there the values keep mattering.
TEST(VerifierPruning, KeysThatDifferDoNotKeepPathsApart) {
  maps::MapDef hash{BPF_MAP_TYPE_HASH, 64, 8, 16, 0, "h"};
  const std::vector<MapInfo> infos = {runtime::VerifierPlatform::map_info(hash)};
  const runtime::VerifierPlatform platform(BPF_PROG_TYPE_SOCKET_FILTER, infos);
  std::string text;
  // Eight choices, one per 8 bytes of a 64-byte key, then a lookup: without pruning, 2^8 paths.
  for (int i = 0; i < 8; ++i) {
    text += fmt::format("r6 = *(u32 *)(r1 +0)\nr7 = 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\n*(u64 *)(r10 -{}) = {}\n"
                        "if r6 > {} goto k{}\n*(u64 *)(r10 -{}) = {}\nk{}:\n",
                        8 * (i + 1), i, i, i, 8 * (i + 1), 100 + i, i);
  }
  text += "r2 = r10\nr2 += -64\nr1 = map[idx:0]\ncall bpf_map_lookup_elem\nif r0 == 0 goto out\n"
          "r1 = *(u64 *)(r0 +0)\nout:\nr0 = 0\nexit";
  const auto stats = stats_of(text, platform);
  ASSERT_TRUE(stats);
  EXPECT_LT(stats->insns_processed, 400u);  // each choice joins its other side (4601 when keys kept paths apart)
  EXPECT_GT(stats->pruned, 6u);
}

// A scalar id that no other number shares links nothing: a kept state forgets it, so a path whose copy
// of a number was made and then overwritten prunes into one where it never was (the kernel's
// clear_singular_ids). Here r8 decides the last access, so it is compared on every join; its id differs
// from one path to another only by such dead copies.
TEST(VerifierPruning, AnIdNoOtherNumberSharesDoesNotKeepPathsApart) {
  maps::MapDef array{BPF_MAP_TYPE_ARRAY, 4, 16, 1, 0, "a"};
  const std::vector<MapInfo> infos = {runtime::VerifierPlatform::map_info(array)};
  const runtime::VerifierPlatform platform(BPF_PROG_TYPE_SOCKET_FILTER, infos);
  std::string text = "r9 = r1\nr8 = *(u32 *)(r9 +4)\n";
  // Eight choices, each making a copy of r8 on one side and overwriting it (the arithmetic before gives
  // r8 no id on either side): each join compares a dead copy's id with none.
  for (int i = 0; i < 8; ++i) {
    text += fmt::format("r6 = *(u32 *)(r9 +0)\nr8 += 0\nr7 = 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\n"
                        "if r6 > {0} goto k{0}\nr7 = r8\nr7 = 0\ngoto k{0}\nk{0}:\n",
                        i);
  }
  text += "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem\n"
          "if r0 == 0 goto out\nif r8 > 8 goto out\nr0 += r8\nr1 = *(u64 *)(r0 +0)\nout:\nr0 = 0\nexit";
  const auto stats = stats_of(text, platform);
  ASSERT_TRUE(stats);
  EXPECT_LT(stats->insns_processed, 180u);  // 119; 247 when kept states kept singular ids (each join failed)
  EXPECT_GT(stats->pruned, 6u);
}

// A spill of fewer than 8 bytes at a slot's start is a spill as much as an 8-byte one: what the slot
// held before it decides nothing read after it, so a decision on the value read back marks the spilled
// register, not the older writes (the kernel's backtrack_insn moves a spilled slot's mark to the
// register whatever the spill's size).
TEST(VerifierPruning, WhatANarrowSpillOverwroteDoesNotKeepPathsApart) {
  const runtime::VerifierPlatform platform(BPF_PROG_TYPE_SOCKET_FILTER, {});
  std::string text = "r9 = r1\n";
  // Eight choices, each leaving a different number in a slot of its own (unknown or 5).
  for (int i = 0; i < 8; ++i) {
    text += fmt::format("r6 = *(u32 *)(r9 +0)\nr7 = 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\n"
                        "*(u64 *)(r10 -{0}) = r6\nif r6 > {1} goto k{1}\n*(u64 *)(r10 -{0}) = 5\nk{1}:\n",
                        8 + 8 * i, i);
  }
  // Then, on one side, a 4-byte spill over each slot, read back and decided on; on the other, the
  // slots read whole (so that they stay live), deciding nothing.
  text += "r4 = *(u32 *)(r9 +8)\nif r4 > 5 goto other\nr5 = 3\n";
  for (int i = 0; i < 8; ++i) {
    text += fmt::format("*(u32 *)(r10 -{0}) = r5\nr2 = *(u32 *)(r10 -{0})\nif r2 != 3 goto bad\n", 8 + 8 * i);
  }
  text += "goto out\nbad:\nr0 = *(u64 *)(r2 +0)\nother:\n";
  for (int i = 0; i < 8; ++i) text += fmt::format("r3 = *(u64 *)(r10 -{0})\n", 8 + 8 * i);
  text += "out:\nr0 = 0\nexit";
  const auto stats = stats_of(text, platform);
  ASSERT_TRUE(stats);
  EXPECT_LT(stats->insns_processed, 600u);  // 173; 5,239 when the marks went on past the narrow spills
  EXPECT_GT(stats->pruned, 6u);
}

// A helper reads only its own argument registers, and of the stack only what its pointer arguments
// may reach (from where they point to the frame's top): slots below the key and registers the
// prototype has no argument in are dead at the call, so paths that differ only there prune into one
// another (the kernel marks only what a helper reads, check_helper_mem_access).
TEST(VerifierPruning, WhatAHelperCannotReadDoesNotKeepPathsApart) {
  maps::MapDef hash{BPF_MAP_TYPE_HASH, 8, 8, 16, 0, "h"};
  const std::vector<MapInfo> infos = {runtime::VerifierPlatform::map_info(hash)};
  const runtime::VerifierPlatform platform(BPF_PROG_TYPE_SOCKET_FILTER, infos);
  std::string text = "r9 = r1\n*(u64 *)(r10 -8) = 0\n";
  // Eight choices, each leaving the context or a stack pointer in a slot deep below the key (and in
  // r3, which bpf_map_lookup_elem does not take), then a lookup: without pruning, 2^8 paths.
  for (int i = 0; i < 8; ++i) {
    text += fmt::format("r6 = *(u32 *)(r9 +0)\nr7 = 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\nr7 += 1\n"
                        "*(u64 *)(r10 -{0}) = r9\nr3 = r9\nif r6 > {1} goto k{1}\n*(u64 *)(r10 -{0}) = r10\nr3 = r10\nk{1}:\n",
                        200 + 8 * i, i);
  }
  text += "r2 = r10\nr2 += -8\nr1 = map[idx:0]\ncall bpf_map_lookup_elem\nif r0 == 0 goto out\n"
          "r1 = *(u64 *)(r0 +0)\nout:\nr0 = 0\nexit";
  const auto stats = stats_of(text, platform);
  ASSERT_TRUE(stats);
  EXPECT_LT(stats->insns_processed, 400u);  // every path apart when every slot and r1-r5 were live at each call
  EXPECT_GT(stats->pruned, 6u);
  // The same, statically: at the call, r1 and r2 are read, r3 is not; the key's slot is, fp-200 is not.
  const auto insns = isa::assemble(text, isa::AsmSyntax::kKernel);
  ASSERT_TRUE(insns) << insns.error().to_string();
  const auto cfg = build_cfg(*insns);
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  const Liveness l = compute_liveness(*cfg, &platform);
  std::size_t call = 0;
  for (std::size_t k = 0; k < cfg->insns.size(); ++k) {
    if (cfg->starts[k] && std::holds_alternative<isa::Call>(cfg->insns[k])) call = k;
  }
  EXPECT_EQ(l.live_regs[call] & 0x3e, 0x06);
  EXPECT_TRUE(l.live_slots[call] & 1);
  EXPECT_FALSE(l.live_slots[call] & (1ull << 24));
  const Liveness coarse = compute_liveness(*cfg);
  EXPECT_TRUE(coarse.live_slots[call] & (1ull << 24));
}

// A number compared where both sides of the branch go on decides nothing: paths that differ only in
// it prune into one another (the kernel marks a jump's operands precise only when their values decided
// it). tests/verifier/pruning.cases holds the cases where they must not.
TEST(VerifierPruning, NumbersOnlyComparedBothWaysDoNotKeepPathsApart) {
  const runtime::VerifierPlatform platform(BPF_PROG_TYPE_SOCKET_FILTER, {});
  std::string text = "r9 = r1\n";
  // Eight choices of a number (1 or 2) kept on the stack, each compared at the end with an unknown
  // number read afresh, both ways: 2^8 paths unless those comparisons leave the numbers out of the
  // states..
  for (int i = 0; i < 8; ++i) {
    text += fmt::format("r7 = *(u32 *)(r9 +4)\nr8 = 1\nr8 += 1\nr8 += 1\nr8 += 1\nr8 += 1\nr8 += 1\n"
                        "r8 = 1\nif r7 > {0} goto k{0}\nr8 = 2\nk{0}:\n*(u64 *)(r10 -{1}) = r8\n",
                        i, 8 * (i + 1));
  }
  for (int i = 0; i < 8; ++i) {
    text += fmt::format("r6 = *(u32 *)(r9 +0)\nr8 = *(u64 *)(r10 -{1})\nif r8 > r6 goto e{0}\nr7 = 0\ne{0}:\n", i,
                        8 * (i + 1));
  }
  text += "r0 = 0\nexit";
  const auto stats = stats_of(text, platform);
  ASSERT_TRUE(stats);
  EXPECT_LT(stats->insns_processed, 1000u);
  EXPECT_GT(stats->pruned, 6u);
}


}  // namespace
}  // namespace bpfvm::verifier
