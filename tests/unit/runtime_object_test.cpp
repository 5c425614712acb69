// Objects compiled from tests/progs/*.bpf.c, loaded into a Runtime and run with test_run: every
// feature of the object reader and the runtime with asserted results.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <sys/utsname.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

#include "bpfvm/helpers/helpers.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/ringbuf.hpp"
#include "bpfvm/runtime/context.hpp"
#include "bpfvm/runtime/object.hpp"
#include "bpfvm/runtime/program_verifier.hpp"

namespace bpfvm::runtime {
namespace {

#ifdef BPFVM_PROGS_DIR
std::string prog_path(std::string_view name) { return std::string(BPFVM_PROGS_DIR) + "/" + std::string(name); }

class ObjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-objtest-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    rt_ = std::make_unique<Runtime>(RuntimeOptions{root_.string()});
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  Object load(std::string_view file) {
    auto obj = Object::open_file(*rt_, prog_path(file));
    EXPECT_TRUE(obj) << (obj ? "" : obj.error().to_string());
    return obj ? std::move(*obj) : Object{};
  }

  std::filesystem::path root_;
  std::unique_ptr<Runtime> rt_;
};

// An IPv4/UDP frame: Ethernet (dst 0, src 0, type 0x0800), a 20-byte IP header with TTL 64, 8 bytes UDP.
std::vector<std::uint8_t> ipv4_frame() {
  std::vector<std::uint8_t> f(14 + 20 + 8, 0);
  f[12] = 0x08;
  f[13] = 0x00;
  f[14] = 0x45;
  f[14 + 8] = 64;  // TTL
  f[14 + 9] = 17;  // UDP
  return f;
}

TestRunResult run(const std::shared_ptr<Program>& p, std::vector<std::uint8_t> data, std::vector<std::uint8_t> ctx = {},
                  std::uint32_t repeat = 1) {
  EXPECT_TRUE(p);
  if (!p) return {};
  auto r = p->test_run({data, ctx, repeat});
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  return r ? *r : TestRunResult{};
}

TEST_F(ObjectTest, GlobalDataOfEveryKind) {
  Object o = load("globals.bpf.o");
  ASSERT_EQ(o.programs().size(), 5u);
  EXPECT_EQ(run(o.find_program("use_data"), ipv4_frame()).retval, 42u);
  EXPECT_EQ(run(o.find_program("use_data"), ipv4_frame()).retval, 44u);  // .data keeps its state
  EXPECT_EQ(run(o.find_program("use_rodata"), ipv4_frame()).retval, 230u);
  EXPECT_EQ(run(o.find_program("use_bss"), ipv4_frame()).retval, 12u);
  EXPECT_EQ(run(o.find_program("use_string"), ipv4_frame()).retval, 12u);
  EXPECT_EQ(run(o.find_program("use_str_table"), ipv4_frame()).retval, static_cast<std::uint32_t>('a'));
  auto odd = ipv4_frame();
  odd.push_back(0);
  EXPECT_EQ(run(o.find_program("use_str_table"), odd).retval, static_cast<std::uint32_t>('b'));
  // The maps libbpf would make, with its names and flags.
  auto rodata = o.find_map("globals.rodata");
  ASSERT_TRUE(rodata);
  EXPECT_EQ(rodata->def().map_flags, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE);
  EXPECT_TRUE(rodata->impl().frozen());
  ASSERT_TRUE(o.find_map("globals.bss"));
  ASSERT_TRUE(o.find_map(".data.custom"));
  ASSERT_TRUE(o.find_map(".rodata.custom"));
  // User space sees the program's writes to .bss.
  std::uint32_t zero = 0;
  std::vector<std::uint8_t> bss(16);
  ASSERT_TRUE(o.find_map("globals.bss")->impl().lookup(&zero, bss.data()));
  std::int32_t second;
  std::memcpy(&second, bss.data() + 4, 4);
  EXPECT_EQ(second, 5);
}

TEST_F(ObjectTest, BtfMapsAndMapInMap) {
  Object o = load("maps.bpf.o");
  EXPECT_EQ(run(o.find_program("count_runs"), ipv4_frame()).retval, 1u);
  EXPECT_EQ(run(o.find_program("count_runs"), ipv4_frame()).retval, 2u);
  // pairs[7] = {len, count}; len is what a socket filter sees: the frame minus its Ethernet header.
  auto pairs = o.find_map("pairs");
  ASSERT_TRUE(pairs);
  EXPECT_EQ(pairs->def().type, BPF_MAP_TYPE_HASH);
  EXPECT_EQ(pairs->def().value_size, 16u);
  std::uint32_t k7 = 7;
  std::uint8_t value[16];
  ASSERT_TRUE(pairs->impl().lookup(&k7, value));
  std::uint32_t len;
  std::memcpy(&len, value, 4);
  EXPECT_EQ(len, 28u);
  EXPECT_EQ(run(o.find_program("through_outer"), ipv4_frame()).retval, 11u);
  std::uint32_t k1 = 1, got = 0;
  ASSERT_TRUE(o.find_map("inner_b")->impl().lookup(&k1, &got));
  EXPECT_EQ(got, 99u);
  EXPECT_EQ(run(o.find_program("delete_pair"), ipv4_frame()).retval, 0u);
  EXPECT_EQ(static_cast<std::int32_t>(run(o.find_program("delete_pair"), ipv4_frame()).retval), -ENOENT);
  // shared_total is pinned by name under the pin root (libbpf's /sys/fs/bpf/<name>).
  EXPECT_TRUE(std::filesystem::exists(root_ / "shared_total"));
  EXPECT_EQ(run(o.find_program("add_total"), ipv4_frame()).retval, 0u);
}

TEST_F(ObjectTest, PinnedByNameMapIsReusedByTheNextLoad) {
  Object first = load("maps.bpf.o");
  run(first.find_program("add_total"), ipv4_frame());
  Object second = load("maps.bpf.o");
  EXPECT_EQ(first.find_map("shared_total").get(), second.find_map("shared_total").get());
}

TEST_F(ObjectTest, LegacyMaps) {
  Object o = load("legacy_maps.bpf.o");
  EXPECT_EQ(run(o.find_program("legacy"), ipv4_frame()).retval, 1u);
  EXPECT_EQ(run(o.find_program("legacy"), ipv4_frame()).retval, 2u);
  auto seen = o.find_map("seen");
  ASSERT_TRUE(seen);
  std::uint32_t k = 1, v = 0;
  ASSERT_TRUE(seen->impl().lookup(&k, &v));
  EXPECT_EQ(v, 1u);
}

// Helpers the kernel has and bpfvm's verifier judges by their prototypes: programs calling them verify;
// one calling a helper bpfvm cannot run is refused at load, by name, not at run time.
TEST_F(ObjectTest, KernelHelpersVerifyAndUnrunnableOnesAreRefusedAtLoad) {
  auto spec = obj::open_object(prog_path("kernel_helpers.bpf.o"));
  ASSERT_TRUE(spec) << spec.error().to_string();
  for (const ProgramVerdict& v : verify_object(*spec)) EXPECT_TRUE(v.accepted) << v.program << ": " << v.explanation;
  obj::ObjectSpec meta_only = *spec;
  meta_only.maps.clear();
  std::erase_if(meta_only.programs, [](const obj::ProgramSpec& p) { return p.name != "grow_meta"; });
  auto loaded = Object::load(*rt_, meta_only, {});
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().to_string().find("bpf_xdp_adjust_meta#54 cannot run in bpfvm"), std::string::npos)
      << loaded.error().to_string();
}

// Types bpfvm verifies without running them: their contexts and return ranges as the kernel has them.
TEST_F(ObjectTest, CgroupAndSocketTypesFollowTheKernelsContextAndReturnRules) {
  auto spec = obj::open_object(prog_path("cgroup_types.bpf.o"));
  ASSERT_TRUE(spec) << spec.error().to_string();
  for (const ProgramVerdict& v : verify_object(*spec)) {
    if (v.program == "bad_verdict") {
      EXPECT_FALSE(v.accepted);
      EXPECT_NE(v.message.find("should have been in [0, 1]"), std::string::npos) << v.message;
    } else {
      EXPECT_TRUE(v.accepted) << v.program << ": " << v.explanation;
    }
  }
}

// LSM programs against their hook in the running kernel's BTF: the hook's arguments read only, and its
// return rule (0 or -errno on r0's lower half, 0 or 1 for a yes-or-no hook, anything for a void hook).
TEST_F(ObjectTest, LsmProgramsFollowTheirHooksReturnRules) {
  if (!obj::running_kernel_btf()) GTEST_SKIP() << "no kernel BTF here";
  auto spec = obj::open_object(prog_path("lsm.bpf.o"));
  ASSERT_TRUE(spec) << spec.error().to_string();
  std::map<std::string, std::string> refused;
  for (const ProgramVerdict& v : verify_object(*spec)) {
    if (!v.accepted) refused[v.program] = v.message;
  }
  for (const char* ok : {"allow_or_deny", "returns_u32_errno", "void_hook"}) EXPECT_FALSE(refused.count(ok)) << ok << ": " << refused[ok];
  EXPECT_NE(refused["returns_5"].find("should have been in [-4095, 0]"), std::string::npos) << refused["returns_5"];
  EXPECT_NE(refused["yes_or_no_hook_returns_2"].find("should have been in [0, 1]"), std::string::npos);
  EXPECT_NE(refused["writes_its_argument"].find("only read is supported"), std::string::npos);
  EXPECT_NE(refused["no_such_hook"].find("no LSM hook 'no_such_hook'"), std::string::npos) << refused["no_such_hook"];
}

// The verdicts on each program of a test object, prepared for the running kernel (CO-RE) as libbpf
// prepares it: the accepted, and the refused with the verifier's message.
std::pair<std::set<std::string>, std::map<std::string, std::string>> judge_after_core(const char* file) {
  std::set<std::string> accepted;
  std::map<std::string, std::string> refused;
  auto spec = obj::open_object(prog_path(file));
  EXPECT_TRUE(spec) << (spec ? "" : spec.error().to_string());
  if (!spec) return {};
  EXPECT_TRUE(apply_core(*spec, std::nullopt)) << "CO-RE against the running kernel";
  for (const ProgramVerdict& v : verify_object(*spec)) {
    if (v.accepted) accepted.insert(v.program);
    else refused[v.program] = v.message;
  }
  return {accepted, refused};
}

// What kernel/bpf/bpf_lsm.c decides by hook, read there (this kernel refuses LSM loads before its
// verifier): the hooks it disabled, bpf_lsm_ functions that are no hook, sleepable programs and the IMA
// hashes at the hooks that may sleep, the link's cookie for trampoline programs, and a cgroup LSM
// program's socket options at the socket hooks (bpf_lsm_func_proto, sleepable_lsm_hooks).
TEST_F(ObjectTest, LsmHooksDecideWhatAProgramMay) {
  if (!obj::running_kernel_btf()) GTEST_SKIP() << "no kernel BTF here";
  auto [accepted, refused] = judge_after_core("lsm.bpf.o");  // (CO-RE: struct socket's sk)
  for (const char* ok : {"ima_hash_sleepable", "cookie", "cgroup_sockopt"}) EXPECT_TRUE(accepted.count(ok)) << ok << ": " << refused[ok];
  const std::map<std::string, std::string> why = {
      {"disabled_hook", "points to disabled hook bpf_lsm_vm_enough_memory"},
      {"not_a_hook", "points to wrong type name bpf_lsm_verify_prog"},
      {"sleepable_at_task_free", "bpf_lsm_task_free is not sleepable"},
      {"ima_hash_not_sleepable", "helper call might sleep in a non-sleepable prog"},
      {"ima_hash_at_hook_that_cannot_sleep", "helper call is not allowed in probe"},
      {"cgroup_cookie", "bpf_get_attach_cookie#174"},
      {"cgroup_sockopt_at_file_open", "bpf_setsockopt#49"},
      {"sockopt_not_cgroup", "bpf_setsockopt#49"},
  };
  for (const auto& [program, message] : why) {
    ASSERT_TRUE(refused.count(program)) << program << " was accepted";
    EXPECT_NE(refused[program].find(message), std::string::npos) << program << ": " << refused[program];
  }
  EXPECT_EQ(refused.size(), 4u + why.size());
}

// kptr fields of map values, as the kernel judges them (check_map_kptr_access, map_kptr_match_type,
// process_kptr_func): tests/progs/kptrs.bpf.c built by clang 19, which emits the BTF type tags.
TEST_F(ObjectTest, KptrFieldsAndBpfKptrXchg) {
  if (!obj::running_kernel_btf()) GTEST_SKIP() << "no kernel BTF here";
  if (!std::filesystem::exists(prog_path("kptrs_tagged.bpf.o"))) GTEST_SKIP() << "no clang-19: no BTF type tags";
  auto [accepted, refused] = judge_after_core("kptrs_tagged.bpf.o");  // (CO-RE: task_struct)
  for (const char* ok : {"store_current", "load_unref", "load_unref_tc", "load_ref", "store_zero", "rcu_to_helper"}) {
    EXPECT_TRUE(accepted.count(ok)) << ok << ": " << refused[ok];
  }
  const std::map<std::string, std::string> why = {
      {"store_ref", "store to referenced kptr disallowed"},
      {"store_number", "invalid kptr access, type=scalar expected=ptr_task_struct"},
      {"narrow_load", "kptr access size must be BPF_DW"},
      {"unaligned_load", "kptr access misaligned expected=8 off=12"},
      {"atomic_add", "kptr in map can only be accessed using BPF_MEM instruction mode"},
      {"through_a_helper", "kptr cannot be accessed indirectly by helper"},
      {"untrusted_to_helper", "type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_"},
      {"xchg_keeps_reference", "the object bpf_kptr_xchg took out of the map there is not released"},
      {"xchg_untrusted_field", "off=8 kptr isn't referenced kptr"},
      {"xchg_not_a_kptr", "off=0 doesn't point to kptr"},
      {"xchg_unreferenced_pointer", "R2 must be referenced when passed to release function"},
  };
  for (const auto& [program, message] : why) {
    ASSERT_TRUE(refused.count(program)) << program << " was accepted";
    EXPECT_NE(refused[program].find(message), std::string::npos) << program << ": " << refused[program];
  }
  EXPECT_EQ(refused.size(), why.size());
  // bpf_kptr_xchg itself: the field's old pointer for the new one. (No program can call it and be
  // accepted without a kfunc to release what it returns, so it is called here directly.)
  const auto impls = helpers::implementations();
  const auto it = std::find_if(impls.begin(), impls.end(), [](const helpers::Implementation& i) { return i.id == BPF_FUNC_kptr_xchg; });
  ASSERT_NE(it, impls.end());
  std::uint64_t field = 0x1111;
  CallContext call(nullptr);
  EXPECT_EQ(it->fn(reinterpret_cast<std::uint64_t>(&field), 0x2222, 0, 0, 0, &call), 0x1111u);
  EXPECT_EQ(field, 0x2222u);
}

// Extensions (freplace) are judged against the program they extend, as the kernel judges them:
// the replaced function (global, in the target's BTF) and its prototype first, then the program from
// that function's entry with the target type's context, helpers and return rule.
TEST_F(ObjectTest, ExtensionsAreJudgedAgainstTheProgramTheyExtend) {
  Object target = load("freplace_target.bpf.o");
  ASSERT_TRUE(target.find_program("classify") && target.find_program("connect4"));
  auto spec = obj::open_object(prog_path("freplace.bpf.o"));
  ASSERT_TRUE(spec) << spec.error().to_string();
  std::map<std::string, std::string> refused;
  std::map<std::string, std::shared_ptr<Program>> loaded;
  for (const obj::ProgramSpec& p : spec->programs) {
    EXPECT_EQ(p.kind.prog_type, static_cast<std::uint32_t>(BPF_PROG_TYPE_EXT)) << p.name;
    obj::ObjectSpec one = *spec;
    std::erase_if(one.programs, [&](const obj::ProgramSpec& q) { return q.name != p.name; });
    ObjectOptions options;
    options.extension_target = target.find_program(p.kind.attach_target == "connect4" ? "connect4" : "classify");
    auto o = Object::load(*rt_, one, options);
    if (o) loaded[p.name] = o->find_program(p.name);
    else refused[p.name] = o.error().to_string();
  }
  for (const char* ok : {"good_handle", "handle_calls_tc_helper", "pair_checked", "connect4_returns_1"}) {
    EXPECT_TRUE(loaded.count(ok)) << ok << ": " << refused[ok];
  }
  const std::map<std::string, std::string> why = {
      {"handle_writes_len", "invalid bpf_context access"},
      {"handle_calls_kprobe_helper", "bpf_override_return"},
      {"connect4_returns_255", "should have been in [0, 1]"},
      {"pair_unchecked", "mem_or_null"},
      {"pair_past_end", "invalid access to memory"},
      {"handle_three_args", "handle_three_args() has 3 args while handle() has 2 args"},
      {"handle_long_arg", "arg1 in handle_long_arg() has size 8 while handle() has 4"},
      {"handle_pointer_arg", "arg1 in handle_pointer_arg() is PTR while handle() has INT"},
      {"handle_other_struct", "arg0 handle_other_struct(struct xdp_md *) doesn't match handle(struct __sk_buff *)"},
      {"replaces_static", "hidden() is not a global function"},
      {"no_target", "has no function 'no_such_function'"},
  };
  EXPECT_EQ(refused.size(), why.size());
  for (const auto& [name, text] : why) {
    ASSERT_TRUE(refused.count(name)) << name << " was accepted";
    EXPECT_NE(refused[name].find(text), std::string::npos) << name << ": " << refused[name];
  }
  // It shows as an extension of that function; it does not replace it (no link), and it cannot be
  // extended in turn.
  const auto& ext = loaded["good_handle"];
  ASSERT_TRUE(ext);
  EXPECT_EQ(ext->type(), static_cast<std::uint32_t>(BPF_PROG_TYPE_EXT));
  EXPECT_EQ(ext->attach_target(), "handle");
  auto link = rt_->create_link(ext, 0, 0);
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().code(), Errc::kNotSupported);
  EXPECT_NE(link.error().to_string().find("does not replace functions of loaded programs"), std::string::npos);
  obj::ObjectSpec again = *spec;
  std::erase_if(again.programs, [](const obj::ProgramSpec& q) { return q.name != "good_handle"; });
  again.programs[0].kind.attach_target = "good_handle";
  ObjectOptions options;
  options.extension_target = ext;
  auto o = Object::load(*rt_, again, options);
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().to_string().find("Cannot recursively attach"), std::string::npos) << o.error().to_string();
  // Without the program it extends, it is not loaded, and says why.
  obj::ObjectSpec alone = *spec;
  std::erase_if(alone.programs, [](const obj::ProgramSpec& q) { return q.name != "good_handle"; });
  auto lone = Object::load(*rt_, alone, {});
  ASSERT_FALSE(lone);
  EXPECT_NE(lone.error().to_string().find("attach_prog_fd names none"), std::string::npos) << lone.error().to_string();
}

// __kconfig externs read the running kernel's values once loaded.
TEST_F(ObjectTest, KconfigExternsReadTheRunningKernel) {
  Object o = load("kconfig.bpf.o");
  struct utsname u {};
  ::uname(&u);
  EXPECT_EQ(run(o.find_program("kernel_major"), ipv4_frame()).retval, static_cast<std::uint32_t>(std::atoi(u.release)));
}

// They load too (as the kernel loads programs that run once attached), and say why they do not run.
TEST_F(ObjectTest, CgroupAndSocketTypesLoadButDoNotRun) {
  auto spec = obj::open_object(prog_path("cgroup_types.bpf.o"));
  ASSERT_TRUE(spec) << spec.error().to_string();
  std::erase_if(spec->programs, [](const obj::ProgramSpec& p) { return p.name == "bad_verdict"; });
  auto o = Object::load(*rt_, *spec, {});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->find_program("connect_port")->type(), static_cast<std::uint32_t>(BPF_PROG_TYPE_CGROUP_SOCK_ADDR));
  TestRunRequest req;
  req.data_in = ipv4_frame();
  auto r = o->find_program("count_ops")->test_run(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotSupported);
  EXPECT_NE(r.error().to_string().find("sock_ops programs are verified and loaded but do not run"), std::string::npos);
}

TEST_F(ObjectTest, ProgramArraySlotsAreFilledAndEmptiedWithTheObject) {
  std::shared_ptr<Program> chain;
  std::weak_ptr<Program> answer;
  {
    Object obj = load("prog_array_slots.bpf.o");
    EXPECT_EQ(run(obj.find_program("jump_to_answer"), ipv4_frame()).retval, 42u);
    EXPECT_EQ(run(obj.find_program("jump_to_empty"), ipv4_frame()).retval, static_cast<std::uint32_t>(-2));
    EXPECT_EQ(run(obj.find_program("chain"), ipv4_frame()).retval, 34u);  // itself, then 33 tail calls
    std::uint32_t id = 0;
    const std::uint32_t one = 1;
    ASSERT_TRUE(obj.find_map("jumps")->impl().lookup(&one, &id));
    EXPECT_EQ(id, obj.find_program("answer")->id());
    chain = obj.find_program("chain");
    answer = obj.find_program("answer");
  }
  // The object's map references are gone: the array is emptied (as the kernel does when the last fd of
  // a program array closes), which frees what only it held and breaks chain's cycle through it.
  EXPECT_TRUE(answer.expired());
  EXPECT_EQ(run(chain, ipv4_frame()).retval, 35u);  // no tail call any more
}

TEST_F(ObjectTest, Subprograms) {
  Object o = load("subprogs.bpf.o");
  EXPECT_EQ(run(o.find_program("first"), ipv4_frame()).retval, 25u);
  EXPECT_EQ(run(o.find_program("second"), ipv4_frame()).retval, 27u);
}

TEST_F(ObjectTest, Callbacks) {
  Object o = load("callbacks.bpf.o");
  EXPECT_EQ(run(o.find_program("with_loop"), ipv4_frame()).retval, 10u);
  EXPECT_EQ(run(o.find_program("loop_stops"), ipv4_frame()).retval, 3u);
  EXPECT_EQ(run(o.find_program("sum_numbers"), ipv4_frame()).retval, 6044u);
  EXPECT_EQ(run(o.find_program("sum_numbers"), ipv4_frame()).retval, 12044u);
}

TEST_F(ObjectTest, QueuesStacksAndBloomFilters) {
  Object o = load("queues.bpf.o");
  // fifo 1,2,3 then 4 replaces 1: pops 2, 3; lifo 1,2,3 then 4 replaces 1: pops 4, 3; peek 2; full.
  EXPECT_EQ(run(o.find_program("queue_and_stack"), ipv4_frame()).retval, 23u * 100000 + 43u * 100 + 2 * 10 + 1);
  EXPECT_EQ(run(o.find_program("bloom"), ipv4_frame()).retval, 11u);
  EXPECT_EQ(o.find_map("seen")->def().map_extra, 3u);
}

TEST_F(ObjectTest, PerCpuMaps) {
  Object o = load("percpu.bpf.o");
  auto p = o.find_program("count_per_cpu");
  EXPECT_EQ(run(p, ipv4_frame()).retval, 1u);
  EXPECT_EQ(run(p, ipv4_frame()).retval, 2u);
  // User space sees one 8-byte slot per possible CPU; this thread's holds the count.
  const std::uint32_t cpus = maps::possible_cpus();
  const std::uint32_t me = maps::this_cpu();
  auto counts = o.find_map("per_cpu_counts");
  ASSERT_EQ(counts->impl().user_value_size(), 8u * cpus);
  std::vector<std::uint64_t> all(cpus);
  const std::uint32_t zero = 0, seven = 7;
  ASSERT_TRUE(counts->impl().lookup(&zero, all.data()));
  for (std::uint32_t cpu = 0; cpu < cpus; ++cpu) EXPECT_EQ(all[cpu], cpu == me ? 2u : 0u) << cpu;
  auto bytes = o.find_map("per_cpu_bytes");
  std::vector<std::uint64_t> slots(cpus);  // u32 values padded to 8 bytes each
  ASSERT_TRUE(bytes->impl().lookup(&seven, slots.data()));
  for (std::uint32_t cpu = 0; cpu < cpus; ++cpu) EXPECT_EQ(slots[cpu], cpu == me ? 56u : 0u) << cpu;
  // User space writes every CPU's value at once.
  for (std::uint32_t cpu = 0; cpu < cpus; ++cpu) all[cpu] = 100 + cpu;
  ASSERT_TRUE(counts->impl().update(&zero, all.data(), BPF_ANY));
  EXPECT_EQ(run(p, ipv4_frame()).retval, 100u + me + 1);
}

TEST_F(ObjectTest, RingBufferRecordsAndConsumer) {
  Object o = load("ringbuf.bpf.o");
  auto p = o.find_program("emit");
  // Three records of 8 + 16 bytes per run (one discarded, still taking room until consumed).
  EXPECT_EQ(run(p, ipv4_frame()).retval, 72u);
  EXPECT_EQ(run(p, ipv4_frame()).retval, 144u);
  auto* rb = dynamic_cast<maps::RingBuffer*>(&o.find_map("events")->impl());
  ASSERT_TRUE(rb);
  EXPECT_TRUE(rb->wait(0));  // FORCE_WAKEUP notified
  std::vector<std::string> seen;
  const std::size_t n = rb->consume([&](std::span<const std::uint8_t> rec) {
    std::uint32_t seq, len;
    std::memcpy(&seq, rec.data(), 4);
    std::memcpy(&len, rec.data() + 4, 4);
    seen.push_back(fmt::format("{}:{}:{}:{}", rec.size(), seq, len, reinterpret_cast<const char*>(rec.data() + 8)));
    return 0;
  });
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(seen, (std::vector<std::string>{"16:0:28:reserve", "16:1001:0:output", "16:1:28:reserve", "16:1002:0:output"}));
  EXPECT_EQ(rb->query(BPF_RB_AVAIL_DATA), 0u);
  EXPECT_EQ(*rb->consumer_pos(), *rb->producer_pos());
  // Fill it: 56 runs of 72 bytes fit; the 57th reserves twice more and its output finds no room.
  std::int32_t last = 0;
  int runs = 0;
  while (last >= 0 && runs < 100) {
    last = static_cast<std::int32_t>(run(p, ipv4_frame()).retval);
    ++runs;
  }
  EXPECT_EQ(last, -2);
  EXPECT_EQ(runs, 57);
}

TEST_F(ObjectTest, SpinLockedValues) {
  Object o = load("spinlock.bpf.o");
  auto p = o.find_program("deposit");
  auto accounts = o.find_map("accounts");
  ASSERT_EQ(accounts->def().spin_lock_off, 8);  // found through BTF
  struct Account {
    std::uint64_t deposits;
    std::uint32_t lock, pad;
    std::uint64_t balance;
  };
  constexpr int kRuns = 5000;
  std::atomic<bool> torn{false};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    const std::uint32_t zero = 0;
    while (!done) {
      Account a{};
      if (accounts->impl().lookup_locked(&zero, &a) && a.balance != a.deposits * 42) torn = true;
    }
  });
  std::thread t1([&] { for (int i = 0; i < kRuns; ++i) run(p, ipv4_frame()); });
  std::thread t2([&] { for (int i = 0; i < kRuns; ++i) run(p, ipv4_frame()); });
  t1.join();
  t2.join();
  done = true;
  reader.join();
  EXPECT_FALSE(torn);
  const std::uint32_t zero = 0;
  Account a{};
  ASSERT_TRUE(accounts->impl().lookup_locked(&zero, &a));
  EXPECT_EQ(a.deposits, 2u * kRuns);
  EXPECT_EQ(a.balance, 2u * kRuns * 42);  // tc programs see the whole frame
  EXPECT_EQ(a.lock, 0u);
  // BPF_F_LOCK on a map without a lock is EINVAL.
  EXPECT_EQ(o.find_map("accounts")->impl().update_locked(&zero, &a, BPF_F_LOCK).has_value(), true);
}

TEST_F(ObjectTest, SocketFilterSeesTheNetworkHeader) {
  Object o = load("prog_types.bpf.o");
  EXPECT_EQ(run(o.find_program("sock_len"), ipv4_frame()).retval, 28u + 1000u);
  EXPECT_EQ(run(o.find_program("sock_ldabs"), ipv4_frame()).retval, 4u);
}

TEST_F(ObjectTest, SkbTestRunRefusesTruncatedNetworkHeaders) {
  Object o = load("prog_types.bpf.o");
  auto p = o.find_program("sock_len");
  ASSERT_TRUE(p);
  std::vector<std::uint8_t> short_ipv6(14 + 39, 0);
  short_ipv6[12] = 0x86;
  short_ipv6[13] = 0xdd;
  auto r = p->test_run({short_ipv6, {}, 1});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errno_value(), EINVAL);
  std::vector<std::uint8_t> tiny(10, 0);
  EXPECT_FALSE(p->test_run({tiny, {}, 1}));
  std::vector<std::uint8_t> bad_ctx(sizeof(struct __sk_buff), 0);
  bad_ctx[0] = 1;  // len: not settable
  r = p->test_run({ipv4_frame(), bad_ctx, 1});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errno_value(), EINVAL);
}

TEST_F(ObjectTest, XdpRewritesThePacket) {
  Object o = load("prog_types.bpf.o");
  auto r = run(o.find_program("xdp_ttl"), ipv4_frame());
  EXPECT_EQ(r.retval, static_cast<std::uint32_t>(XDP_PASS));
  ASSERT_EQ(r.data_out.size(), ipv4_frame().size());
  EXPECT_EQ(r.data_out[14 + 8], 63);
  auto frame = ipv4_frame();
  frame[12] = 0x86;
  frame[13] = 0xdd;
  EXPECT_EQ(run(o.find_program("xdp_ttl"), frame).retval, static_cast<std::uint32_t>(XDP_DROP));
}

TEST_F(ObjectTest, XdpMetadataFromCtxIn) {
  Object o = load("prog_types.bpf.o");
  EXPECT_EQ(run(o.find_program("xdp_meta"), ipv4_frame()).retval, 1u);
  // 4 bytes of metadata (value 41) before the frame; ctx_in says data = 4, data_end = size.
  std::vector<std::uint8_t> data = {41, 0, 0, 0};
  auto frame = ipv4_frame();
  data.insert(data.end(), frame.begin(), frame.end());
  struct xdp_md md {};
  md.data = 4;
  md.data_end = static_cast<std::uint32_t>(data.size());
  std::vector<std::uint8_t> ctx(reinterpret_cast<std::uint8_t*>(&md), reinterpret_cast<std::uint8_t*>(&md + 1));
  auto r = run(o.find_program("xdp_meta"), data, ctx);
  EXPECT_EQ(r.retval, 2u);
  ASSERT_EQ(r.data_out.size(), data.size());
  EXPECT_EQ(r.data_out[0], 42);
  struct xdp_md out {};
  ASSERT_EQ(r.ctx_out.size(), sizeof out);
  std::memcpy(&out, r.ctx_out.data(), sizeof out);
  EXPECT_EQ(out.data, 4u);
  EXPECT_EQ(out.data_end, data.size());
}

TEST_F(ObjectTest, TcSeesTheEthernetHeaderAndCanWrite) {
  Object o = load("prog_types.bpf.o");
  struct __sk_buff skb {};
  skb.mark = 5;
  std::vector<std::uint8_t> ctx(reinterpret_cast<std::uint8_t*>(&skb), reinterpret_cast<std::uint8_t*>(&skb + 1));
  auto r = run(o.find_program("tc_mark"), ipv4_frame(), ctx);
  EXPECT_EQ(r.retval, 42u + 5u);
  ASSERT_FALSE(r.data_out.empty());
  EXPECT_EQ(r.data_out[0], 0xaa);
}

TEST_F(ObjectTest, TracingTypesTakeTheirContextRaw) {
  Object o = load("prog_types.bpf.o");
  std::uint64_t rec[8] = {0, 257, 3};  // common header, id 257 (openat), args[0] = 3
  std::vector<std::uint8_t> tp(reinterpret_cast<std::uint8_t*>(rec), reinterpret_cast<std::uint8_t*>(rec + 8));
  EXPECT_EQ(run(o.find_program("tp_sys_enter"), {}, tp).retval, 260u);
  std::uint64_t args[2] = {0, 21};
  std::vector<std::uint8_t> raw(reinterpret_cast<std::uint8_t*>(args), reinterpret_cast<std::uint8_t*>(args + 2));
  EXPECT_EQ(run(o.find_program("raw_sys_enter"), {}, raw).retval, 42u);
  struct pt_regs regs {};
  regs.rdi = 40;
  regs.rsi = 2;
  regs.rax = 7;
  std::vector<std::uint8_t> r(reinterpret_cast<std::uint8_t*>(&regs), reinterpret_cast<std::uint8_t*>(&regs + 1));
  EXPECT_EQ(run(o.find_program("kprobe_regs"), {}, r).retval, 42u);
  EXPECT_EQ(run(o.find_program("uprobe_ret"), {}, r).retval, 7u);
  std::vector<std::uint8_t> perf(sizeof(struct pt_regs) + 16, 0);
  perf[sizeof(struct pt_regs)] = 99;  // sample_period
  EXPECT_EQ(run(o.find_program("perf_period"), {}, perf).retval, 99u);
}

TEST_F(ObjectTest, ProgramsKeepTheirSourceLines) {
  Object o = load("prog_types.bpf.o");
  auto p = o.find_program("xdp_ttl");
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->btf());
  ASSERT_FALSE(p->line_info().empty());
  ASSERT_EQ(p->func_info().size(), 1u);
  EXPECT_EQ(p->btf()->btf().type_name(p->func_info()[0].type_id), "xdp_ttl");
  bool saw_ttl = false;
  for (const auto& l : p->line_info()) {
    const auto text = p->btf()->btf().string_at(l.line_off);
    if (text.find("ip->ttl -= 1;") != std::string_view::npos) {
      saw_ttl = true;
      EXPECT_NE(p->btf()->btf().string_at(l.file_name_off).find("prog_types.bpf.c"), std::string_view::npos);
      EXPECT_GT(l.line(), 0u);
    }
  }
  EXPECT_TRUE(saw_ttl);
}

TEST_F(ObjectTest, RepeatRunsEveryTime) {
  Object o = load("maps.bpf.o");
  EXPECT_EQ(run(o.find_program("count_runs"), ipv4_frame(), {}, 10).retval, 10u);
}

TEST_F(ObjectTest, UnsupportedProgramTypesAreRefusedByName) {
  auto obj = Object::open_file(*rt_, prog_path("iterator.bpf.o"));
  ASSERT_FALSE(obj);
  EXPECT_EQ(obj.error().errno_value(), EOPNOTSUPP);
  EXPECT_NE(obj.error().to_string().find("each_task"), std::string::npos) << obj.error().to_string();
  EXPECT_NE(obj.error().to_string().find("iter/task"), std::string::npos);
}

TEST_F(ObjectTest, EveryCpuVersionAndCompilerGivesTheSameResults) {
  for (const auto& entry : std::filesystem::directory_iterator(BPFVM_PROGS_DIR)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".clang") == std::string::npos) continue;
    SCOPED_TRACE(name);
    auto obj = Object::open_file(*rt_, entry.path().string());
    ASSERT_TRUE(obj) << obj.error().to_string();
    if (name.starts_with("subprogs")) {
      EXPECT_EQ(run(obj->find_program("first"), ipv4_frame()).retval, 25u);
      EXPECT_EQ(run(obj->find_program("second"), ipv4_frame()).retval, 27u);
    } else if (name.starts_with("globals")) {
      EXPECT_EQ(run(obj->find_program("use_rodata"), ipv4_frame()).retval, 230u);
      EXPECT_EQ(run(obj->find_program("use_bss"), ipv4_frame()).retval, 12u);
    } else if (name.starts_with("maps")) {
      EXPECT_EQ(run(obj->find_program("through_outer"), ipv4_frame()).retval, 11u);
    } else if (name.starts_with("prog_types")) {
      EXPECT_EQ(run(obj->find_program("xdp_ttl"), ipv4_frame()).data_out[14 + 8], 63);
      EXPECT_EQ(run(obj->find_program("sock_len"), ipv4_frame()).retval, 1028u);
    }
  }
}
#endif

}  // namespace
}  // namespace bpfvm::runtime
