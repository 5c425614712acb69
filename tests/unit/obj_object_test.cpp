// The object reader on objects compiled from tests/progs, and on malformed ones.
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <random>

#include "bpfvm/base/file.hpp"
#include "bpfvm/obj/object_spec.hpp"

namespace bpfvm::obj {
namespace {

#ifdef BPFVM_PROGS_DIR
std::string path_of(std::string_view name) { return std::string(BPFVM_PROGS_DIR) + "/" + std::string(name); }

ObjectSpec open(std::string_view name) {
  auto spec = open_object(path_of(name));
  EXPECT_TRUE(spec) << (spec ? "" : spec.error().to_string());
  return spec ? std::move(*spec) : ObjectSpec{};
}

std::size_t count_lddw(const ProgramSpec& p, std::uint8_t src) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < p.insns.size(); ++i) {
    if (p.insns[i].is_lddw() && p.insns[i].src == src) ++n;
  }
  return n;
}

TEST(ObjectSpec, BtfDefinedMaps) {
  ObjectSpec o = open("maps.bpf.o");
  EXPECT_EQ(o.name, "maps");
  EXPECT_EQ(o.license, "GPL");
  const MapSpec* counts = o.find_map("counts");
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->type, BPF_MAP_TYPE_ARRAY);
  EXPECT_EQ(counts->key_size, 4u);
  EXPECT_EQ(counts->value_size, 8u);
  EXPECT_EQ(counts->max_entries, 4u);
  const MapSpec* pairs = o.find_map("pairs");
  ASSERT_TRUE(pairs);
  EXPECT_EQ(pairs->value_size, 16u);  // struct pair, by type
  EXPECT_EQ(pairs->map_flags, static_cast<std::uint32_t>(BPF_F_NO_PREALLOC));
  EXPECT_NE(pairs->btf_value_type_id, 0u);
  EXPECT_EQ(o.btf->type_name(pairs->btf_value_type_id), "pair");
  EXPECT_TRUE(o.find_map("shared_total")->pin_by_name);
  EXPECT_FALSE(counts->pin_by_name);
  const MapSpec* outer = o.find_map("outer");
  ASSERT_TRUE(outer);
  EXPECT_EQ(outer->type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  ASSERT_TRUE(outer->inner);
  EXPECT_EQ(outer->inner->type, BPF_MAP_TYPE_ARRAY);
  EXPECT_EQ(outer->inner->max_entries, 2u);
  ASSERT_EQ(outer->initial_slots.size(), 1u);
  EXPECT_EQ(outer->initial_slots[0].first, 1u);
  EXPECT_EQ(o.maps[outer->initial_slots[0].second].name, "inner_b");
  const ProgramSpec* count_runs = o.find_program("count_runs");
  ASSERT_TRUE(count_runs);
  EXPECT_EQ(count_lddw(*count_runs, BPF_PSEUDO_MAP_FD), 2u);
  EXPECT_EQ(count_runs->maps_used.size(), 2u);
}

TEST(ObjectSpec, LegacyMapsAndVersion) {
  ObjectSpec o = open("legacy_maps.bpf.o");
  EXPECT_EQ(o.kern_version, 0x060100u);
  ASSERT_EQ(o.maps.size(), 2u);
  EXPECT_EQ(o.maps[0].origin, MapOrigin::kLegacy);
  EXPECT_EQ(o.find_map("seen")->type, BPF_MAP_TYPE_HASH);
  EXPECT_EQ(o.find_map("seen")->max_entries, 8u);
}

TEST(ObjectSpec, GlobalDataSections) {
  ObjectSpec o = open("globals.bpf.o");
  const MapSpec* data = o.find_map("globals.data");
  const MapSpec* rodata = o.find_map("globals.rodata");
  const MapSpec* bss = o.find_map("globals.bss");
  ASSERT_TRUE(data && rodata && bss);
  EXPECT_EQ(rodata->origin, MapOrigin::kRodata);
  EXPECT_EQ(rodata->map_flags, static_cast<std::uint32_t>(BPF_F_RDONLY_PROG | BPF_F_MMAPABLE));
  EXPECT_EQ(bss->value_size, 16u);
  EXPECT_TRUE(bss->initial_value.empty());
  ASSERT_EQ(data->initial_value.size(), 4u);
  EXPECT_EQ(data->initial_value[0], 40);
  EXPECT_TRUE(o.find_map(".data.custom"));
  EXPECT_TRUE(o.find_map(".rodata.custom"));
  const MapSpec* strings = o.find_map(".rodata.str1.1");  // clang 14 makes it for the string table
  ASSERT_TRUE(strings);
  EXPECT_EQ(strings->origin, MapOrigin::kRodata);
  const std::string text(strings->initial_value.begin(), strings->initial_value.end());
  EXPECT_EQ(text.size(), 11u);
  EXPECT_NE(text.find(std::string("alpha\0", 6)), std::string::npos);
  EXPECT_NE(text.find(std::string("beta\0", 5)), std::string::npos);
  const ProgramSpec* use_rodata = o.find_program("use_rodata");
  ASSERT_TRUE(use_rodata);
  EXPECT_GE(count_lddw(*use_rodata, BPF_PSEUDO_MAP_VALUE), 1u);
}

TEST(ObjectSpec, SubprogramsAreAppendedAndCallsRetargeted) {
  ObjectSpec o = open("subprogs.bpf.o");
  for (const char* name : {"first", "second"}) {
    const ProgramSpec* p = o.find_program(name);
    ASSERT_TRUE(p) << name;
    EXPECT_GE(p->func_info.size(), 2u) << name;  // the entry and at least one subprogram
    EXPECT_EQ(p->func_info[0].insn, 0u);
    for (std::size_t i = 0; i < p->insns.size(); ++i) {
      const auto& in = p->insns[i];
      if (in.opcode != 0x85 || in.src != BPF_PSEUDO_CALL) continue;
      const std::int64_t target = static_cast<std::int64_t>(i) + 1 + in.imm;
      ASSERT_GE(target, 0);
      ASSERT_LT(target, static_cast<std::int64_t>(p->insns.size()));
      bool starts_function = false;
      for (const auto& f : p->func_info) starts_function |= f.insn == target;
      EXPECT_TRUE(starts_function) << name << ": call at " << i << " lands at " << target;
    }
    EXPECT_FALSE(p->line_info.empty());
  }
  EXPECT_EQ(o.btf->string_at(o.find_program("first")->line_info[0].file_name_off).find("subprogs.bpf.c") != std::string::npos,
            true);
}

TEST(ObjectSpec, FunctionReferencesBecomePseudoFunc) {
  ObjectSpec o = open("callbacks.bpf.o");
  const ProgramSpec* p = o.find_program("with_loop");
  ASSERT_TRUE(p);
  EXPECT_EQ(count_lddw(*p, BPF_PSEUDO_FUNC), 1u);
}

TEST(ObjectSpec, SectionNamesGiveProgramTypes) {
  ObjectSpec o = open("prog_types.bpf.o");
  EXPECT_EQ(o.find_program("sock_len")->kind.prog_type, BPF_PROG_TYPE_SOCKET_FILTER);
  EXPECT_EQ(o.find_program("xdp_ttl")->kind.prog_type, BPF_PROG_TYPE_XDP);
  EXPECT_EQ(o.find_program("tc_mark")->kind.prog_type, BPF_PROG_TYPE_SCHED_CLS);
  EXPECT_EQ(o.find_program("tp_sys_enter")->kind.prog_type, BPF_PROG_TYPE_TRACEPOINT);
  EXPECT_EQ(o.find_program("tp_sys_enter")->kind.attach_target, "raw_syscalls/sys_enter");
  EXPECT_EQ(o.find_program("raw_sys_enter")->kind.prog_type, BPF_PROG_TYPE_RAW_TRACEPOINT);
  EXPECT_EQ(o.find_program("kprobe_regs")->kind.prog_type, BPF_PROG_TYPE_KPROBE);
  EXPECT_EQ(o.find_program("uprobe_ret")->kind.attach_target, "bin:func");
  EXPECT_EQ(o.find_program("perf_period")->kind.prog_type, BPF_PROG_TYPE_PERF_EVENT);
  // Two programs in one section.
  EXPECT_EQ(o.find_program("xdp_meta")->section, "xdp");
  ObjectSpec f = open("fentry.bpf.o");
  EXPECT_EQ(f.programs[0].kind.prog_type, BPF_PROG_TYPE_TRACING);
  EXPECT_EQ(f.programs[0].kind.expected_attach_type, BPF_TRACE_FENTRY);
  EXPECT_TRUE(f.programs[0].kind.supported);  // (fentry and fexit run on syscall entries)
  EXPECT_FALSE(open("iterator.bpf.o").programs[0].kind.supported);
}

TEST(ObjectSpec, OldClangObjectsGiveAProgramPerSection) {
  ObjectSpec o = open("old_clang.bpf.o");
  ASSERT_EQ(o.programs.size(), 3u);
  // Named by the symbol at the section's start (global or local, any type), else by the section.
  const ProgramSpec* sock = o.find_program("count_packets");
  ASSERT_NE(sock, nullptr);
  EXPECT_EQ(sock->kind.prog_type, BPF_PROG_TYPE_SOCKET_FILTER);
  EXPECT_TRUE(sock->kind.legacy_name);
  EXPECT_EQ(sock->insns.size(), 9u);
  EXPECT_EQ(count_lddw(*sock, BPF_PSEUDO_MAP_FD), 1u);
  EXPECT_EQ(o.find_program("xdp_label")->kind.prog_type, BPF_PROG_TYPE_XDP);
  EXPECT_EQ(o.find_program("cgroup/sock1")->kind.prog_type, BPF_PROG_TYPE_CGROUP_SOCK);
  // samples/bpf's 28-byte definitions: an array of maps names its template by index.
  ASSERT_EQ(o.maps.size(), 2u);
  EXPECT_EQ(o.find_map("counts")->max_entries, 16u);
  const MapSpec* by_cpu = o.find_map("by_cpu");
  ASSERT_TRUE(by_cpu->inner);
  EXPECT_EQ(by_cpu->inner->type, BPF_MAP_TYPE_HASH);
  EXPECT_EQ(by_cpu->inner->value_size, 8u);
}

TEST(ObjectSpec, Iproute2ObjectsWithStaticProgramsAndElfMaps) {
  ObjectSpec o = open("iproute2_style.bpf.o");
  ASSERT_EQ(o.maps.size(), 4u);
  // Sections libbpf cannot name are tc's (sched_cls); "ID/KEY" fills slot KEY of the array with id ID.
  EXPECT_EQ(o.find_program("entry")->kind.prog_type, BPF_PROG_TYPE_SCHED_CLS);
  EXPECT_EQ(o.find_program("tail_target")->kind.prog_type, BPF_PROG_TYPE_SCHED_CLS);
  ASSERT_EQ(o.find_map("jumps")->initial_programs.size(), 1u);
  EXPECT_EQ(o.find_map("jumps")->initial_programs[0].first, 3u);
  EXPECT_EQ(o.find_map("jumps")->initial_programs[0].second, "tail_target");
  const MapSpec* outer = o.find_map("outer");
  ASSERT_TRUE(outer && outer->inner);
  EXPECT_EQ(outer->inner->value_size, 8u);  // the map whose id is inner_id
  ASSERT_EQ(outer->initial_slots.size(), 1u);  // slot_one: inner_id 9, inner_idx 1
  EXPECT_EQ(outer->initial_slots[0].first, 1u);
  EXPECT_EQ(o.maps[outer->initial_slots[0].second].name, "slot_one");
  EXPECT_EQ(o.find_map("slot_one")->pinning, 2u);
  EXPECT_TRUE(o.find_map("slot_one")->pin_by_name);
  // Static programs are programs; one that cannot be linked keeps its error and hides nothing.
  EXPECT_EQ(o.find_program("cls_main")->kind.prog_type, BPF_PROG_TYPE_SCHED_CLS);
  EXPECT_EQ(o.find_program("act_main")->kind.prog_type, BPF_PROG_TYPE_SCHED_ACT);
  EXPECT_FALSE(o.find_program("cls_main")->link_error);
  const ProgramSpec* broken = o.find_program("uses_extern");
  ASSERT_TRUE(broken && broken->link_error);
  EXPECT_NE(broken->link_error->to_string().find("not_a_helper"), std::string::npos);
}

TEST(ObjectSpec, ObjectsEmbeddedInAProgram) {
  // A host file with two objects inside (as a libbpf skeleton carries its .bpf.o), between junk.
  auto a = os::read_file(path_of("maps.bpf.o"));
  auto b = os::read_file(path_of("old_clang.bpf.o"));
  ASSERT_TRUE(a && b);
  std::vector<std::uint8_t> host = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};  // a truncated header first
  host.resize(100, 0xcc);
  const std::size_t at_a = host.size();
  host.insert(host.end(), a->begin(), a->end());
  host.resize(host.size() + 13, 0);
  const std::size_t at_b = host.size();
  host.insert(host.end(), b->begin(), b->end());
  host.resize(host.size() + 40, 0xee);
  const auto found = embedded_objects(host);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].offset, at_a);
  EXPECT_EQ(found[0].bytes.size(), a->size());
  EXPECT_EQ(found[1].offset, at_b);
  EXPECT_EQ(found[1].bytes.size(), b->size());
  // A real host binary: this test's own executable embeds nothing and says so.
  auto self = open_objects("/proc/self/exe");
  ASSERT_FALSE(self);
  EXPECT_NE(self.error().to_string().find("embeds no BPF object"), std::string::npos);
}

// Every byte flipped, every truncation: an error or a spec, never a crash (the fuzz target goes further).
TEST(ObjectSpec, MalformedObjectsAreRejectedNotCrashed) {
  auto bytes = os::read_file(path_of("maps.bpf.o"));
  ASSERT_TRUE(bytes);
  for (std::size_t cut : {0ul, 4ul, 63ul, 64ul, bytes->size() / 2, bytes->size() - 1}) {
    auto r = read_object({bytes->data(), cut}, "cut.o");
    EXPECT_FALSE(r) << cut;
    if (!r) {
      EXPECT_NE(r.error().to_string().find("cut.o"), std::string::npos);
    }
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    auto copy = *bytes;
    for (int k = 0; k < 4; ++k) copy[rng() % copy.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    (void)read_object(copy, "flipped.o");
  }
}
// struct_ops programs are attached by the object's struct_ops variables: each member that points to a
// program names its target, "TYPE:MEMBER" (the variables' places come from their symbols).
TEST(ObjectSpec, StructOpsVariablesNameTheirProgramsTargets) {
  ObjectSpec o = open("struct_ops.bpf.o");
  auto target = [&](std::string_view name) {
    const ProgramSpec* p = o.find_program(name);
    EXPECT_TRUE(p) << name;
    return p ? p->kind.attach_target : std::string("(none)");
  };
  EXPECT_EQ(target("ssthresh_reads"), "tcp_congestion_ops:ssthresh");
  EXPECT_EQ(target("cong_avoid_writes"), "tcp_congestion_ops:cong_avoid");
  EXPECT_EQ(target("release_plain"), "tcp_congestion_ops:release");
  EXPECT_EQ(target("cong_avoid_reads_4th"), "tcp_congestion_ops:cong_avoid");  // in the fifth variable
  EXPECT_EQ(target("dummy_checked"), "bpf_dummy_ops:test_1");
  EXPECT_EQ(target("dummy_helper"), "bpf_dummy_ops:test_2");
  EXPECT_EQ(target("dummy_unreferenced"), "test_2");  // (the section's own: no variable points to it)
  EXPECT_EQ(o.find_program("undo_cwnd")->kind.prog_type, BPF_PROG_TYPE_STRUCT_OPS);
}

#endif

TEST(SectionNames, FollowLibbpf) {
  EXPECT_EQ(classify_section("socket")->prog_type, BPF_PROG_TYPE_SOCKET_FILTER);
  EXPECT_FALSE(classify_section("socket")->legacy_name);
  EXPECT_TRUE(classify_section("socket/x")->legacy_name);  // exact names take no target, but old libbpf
  EXPECT_TRUE(classify_section("socket1")->legacy_name);   // matched "socket" as a prefix
  EXPECT_EQ(classify_section("xdp_redirect_map")->prog_type, BPF_PROG_TYPE_XDP);
  EXPECT_EQ(classify_section("cgroup/sock1")->prog_type, BPF_PROG_TYPE_CGROUP_SOCK);
  EXPECT_FALSE(classify_section("kprobe1"));  // "kprobe" was always "kprobe/"
  EXPECT_FALSE(classify_section("tcp_thing"));
  EXPECT_EQ(classify_section("cgroup/connect4")->prog_type, BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
  EXPECT_EQ(classify_section("cgroup/connect4")->expected_attach_type, BPF_CGROUP_INET4_CONNECT);
  EXPECT_EQ(classify_section("cgroup/sock_release")->expected_attach_type, BPF_CGROUP_INET_SOCK_RELEASE);
  EXPECT_EQ(classify_section("sockops")->prog_type, BPF_PROG_TYPE_SOCK_OPS);
  EXPECT_EQ(classify_section("sk_skb/stream_verdict")->expected_attach_type, BPF_SK_SKB_STREAM_VERDICT);
  EXPECT_EQ(classify_section("lwt_xmit")->prog_type, BPF_PROG_TYPE_LWT_XMIT);
  EXPECT_EQ(classify_section("sk_lookup")->expected_attach_type, BPF_SK_LOOKUP);
  EXPECT_EQ(classify_section("tc/ingress")->expected_attach_type, 46u);  // BPF_TCX_INGRESS
  EXPECT_TRUE(classify_section("uprobe.s/bin:f")->sleepable);
  EXPECT_TRUE(classify_section("lsm.s/file_open")->sleepable);
  EXPECT_EQ(classify_section("syscall")->prog_type, BPF_PROG_TYPE_SYSCALL);
  EXPECT_EQ(classify_section("netfilter")->prog_type, 32u);  // BPF_PROG_TYPE_NETFILTER
  EXPECT_EQ(classify_section("kretprobe/do_exit")->retprobe, true);
  EXPECT_EQ(classify_section("tp/syscalls/sys_enter_openat")->attach_target, "syscalls/sys_enter_openat");
  EXPECT_EQ(classify_section("raw_tp/sys_exit")->prog_type, BPF_PROG_TYPE_RAW_TRACEPOINT);
  EXPECT_EQ(classify_section("usdt/lib:prov:name")->prog_type, BPF_PROG_TYPE_KPROBE);
  EXPECT_EQ(classify_section("classifier")->prog_type, BPF_PROG_TYPE_SCHED_CLS);
  EXPECT_EQ(classify_section("tp_btf/sched_switch")->expected_attach_type, BPF_TRACE_RAW_TP);
  EXPECT_TRUE(classify_section("tp_btf"));  // libbpf's "tp_btf+": the target may come from elsewhere
  EXPECT_FALSE(classify_section("nonsense"));
  EXPECT_EQ(prog_type_name(BPF_PROG_TYPE_SCHED_CLS), "sched_cls");
  EXPECT_EQ(prog_type_from_name("xdp"), BPF_PROG_TYPE_XDP);
}

}  // namespace
}  // namespace bpfvm::obj
