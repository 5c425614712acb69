// The verifier in the runtime: programs compiled from C are refused with an explanation that names the
// source line, where the offending value came from and the fix; accepted ones run unchecked; the log
// levels give the kernel-style trace.
#include <gtest/gtest.h>

#include <filesystem>

#include "bpfvm/runtime/object.hpp"
#include "bpfvm/runtime/program_verifier.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {
namespace {

std::string prog_path(std::string_view name) { return std::string(BPFVM_PROGS_DIR) + "/" + std::string(name); }

const ProgramVerdict* find(const std::vector<ProgramVerdict>& vs, std::string_view name) {
  for (const auto& v : vs) {
    if (v.program == name) return &v;
  }
  return nullptr;
}

TEST(RuntimeVerifier, MistakesInCAreExplainedWithTheirSourceLines) {
  auto spec = obj::open_object(prog_path("rejected.bpf.o"));
  ASSERT_TRUE(spec) << spec.error().to_string();
  const auto verdicts = verify_object(*spec);
  struct Expect {
    const char* program;
    std::vector<const char*> fragments;
  };
  const Expect expects[] = {
      {"null_deref",
       {"R0 invalid mem access 'map_value_or_null'", "rejected.bpf.c:34: return *v;", "the value comes from insn",
        "rejected.bpf.c:33: __u64 *v = bpf_map_lookup_elem(&counts, &key);", "hint: check it before use"}},
      {"no_length_check",
       {"invalid access to packet", "rejected.bpf.c:40: return eth->h_proto", "hint: compare first"}},
      {"leaked_record",
       {"Unreleased reference", "rejected.bpf.c:45: __u32 *e = bpf_ringbuf_reserve", "the path here:", "-> jumped", "rejected.bpf.c:48: if (skb->len > 100) return 1;",
        "hint: call bpf_ringbuf_submit or bpf_ringbuf_discard on every path"}},
      {"unbounded_index", {"unbounded memory access", "rejected.bpf.c:59: return s->n[i];", "hint:"}},
      {"global_unchecked", {"invalid mem access 'mem_or_null'", "rejected.bpf.c:73: __noinline int first_word"}},
  };
  for (const Expect& e : expects) {
    SCOPED_TRACE(e.program);
    const ProgramVerdict* v = find(verdicts, e.program);
    ASSERT_NE(v, nullptr);
    EXPECT_FALSE(v->accepted);
    for (const char* f : e.fragments) EXPECT_NE(v->explanation.find(f), std::string::npos) << f << "\n" << v->explanation;
    if (std::getenv("BPFVM_SHOW")) std::printf("%s\n", v->explanation.c_str());
  }
  const ProgramVerdict* fine = find(verdicts, "fine");
  ASSERT_NE(fine, nullptr);
  EXPECT_TRUE(fine->accepted) << fine->explanation;
  EXPECT_GT(fine->stats.insns_processed, 5u);
}

TEST(RuntimeVerifier, LoadingARefusedObjectFailsWithTheExplanation) {
  const auto root = std::filesystem::temp_directory_path() / ("bpfvm-vtest-" + std::to_string(::getpid()));
  Runtime rt(RuntimeOptions{root.string()});
  auto obj = Object::open_file(rt, prog_path("rejected.bpf.o"));
  ASSERT_FALSE(obj);
  EXPECT_EQ(obj.error().code(), Errc::kAccess);
  EXPECT_NE(obj.error().to_string().find("program 'null_deref'"), std::string::npos) << obj.error().to_string();
  EXPECT_NE(obj.error().to_string().find("rejected.bpf.c:34"), std::string::npos) << obj.error().to_string();
  std::filesystem::remove_all(root);
}

TEST(RuntimeVerifier, LogLevelsTraceTheExploration) {
  auto spec = obj::open_object(prog_path("rejected.bpf.o"));
  ASSERT_TRUE(spec);
  const auto level1 = verify_object(*spec, std::nullopt, 1);
  const auto level2 = verify_object(*spec, std::nullopt, 2);
  const ProgramVerdict* a = find(level1, "fine");
  const ProgramVerdict* b = find(level2, "fine");
  ASSERT_TRUE(a && b);
  // Every processed instruction, as the kernel prints it; level 2 adds the registers each one changed.
  EXPECT_NE(a->log.find("(85) call bpf_map_lookup_elem#1"), std::string::npos) << a->log;
  EXPECT_NE(a->log.find("processed "), std::string::npos);
  EXPECT_NE(a->log.find(" insns (limit 1000000) max_states_per_insn "), std::string::npos);
  EXPECT_EQ(a->log.find("; R0="), std::string::npos);
  EXPECT_NE(b->log.find("; R0=map_value_or_null(id="), std::string::npos) << b->log;
  // A refusal ends with the reason.
  const ProgramVerdict* bad = find(level1, "null_deref");
  ASSERT_TRUE(bad);
  EXPECT_NE(bad->log.find("R0 invalid mem access 'map_value_or_null'"), std::string::npos) << bad->log;
}

}  // namespace
}  // namespace bpfvm::runtime
