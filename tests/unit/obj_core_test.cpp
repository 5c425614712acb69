// CO-RE relocations: every kind against a target BTF built here with other layouts, and the same
// relocations as libbpf's on Debian's libbpf-tools against the running kernel (the oracle).
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "bpfvm/base/file.hpp"
#include "bpfvm/obj/core.hpp"
#include "bpfvm/isa/helper_names.hpp"

namespace bpfvm::obj {
namespace {

#ifdef BPFVM_PROGS_DIR
// The target: struct thing laid out differently (a long first, the union later, hist elsewhere, the
// bitfields moved, no `gone`), no thing___old, enum colour with other values and no RED.
Btf target_btf() {
  struct btf* b = btf__new_empty();
  const int i32 = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
  const int u32 = btf__add_int(b, "unsigned int", 4, 0);
  const int i64 = btf__add_int(b, "long", 8, BTF_INT_SIGNED);
  const int hist = btf__add_array(b, i32, i64, 6);
  const int un = btf__add_union(b, nullptr, 4);
  btf__add_field(b, "uid", u32, 0, 0);
  btf__add_field(b, "id", i32, 0, 0);
  btf__add_struct(b, "thing", 96);
  btf__add_field(b, "extra", i64, 0, 0);
  btf__add_field(b, "pad", i32, 64, 0);
  btf__add_field(b, "hist", hist, 128, 0);
  btf__add_field(b, "", un, 640, 0);        // the anonymous union at byte 80
  btf__add_field(b, "mode", u32, 680, 5);   // bits 680..684: byte 85
  btf__add_field(b, "flag", u32, 685, 3);
  btf__add_enum(b, "colour", 4);
  btf__add_enum_value(b, "GREEN", 7);
  std::uint32_t size = 0;
  const auto* raw = static_cast<const std::uint8_t*>(btf__raw_data(b, &size));
  auto out = Btf::parse(std::span<const std::uint8_t>(raw, size));
  btf__free(b);
  EXPECT_TRUE(out) << out.error().to_string();
  return std::move(*out);
}

std::string outcome(const std::vector<CoreOutcome>& all, std::string_view program, std::size_t nth_of_field,
                    std::string_view field) {
  std::size_t seen = 0;
  for (const CoreOutcome& c : all) {
    if (c.program == program && c.what.starts_with(field) && seen++ == nth_of_field) return c.what;
  }
  return "(none)";
}

TEST(Core, EveryKindAgainstAnotherLayout) {
  auto spec = open_object(std::string(BPFVM_PROGS_DIR) + "/core_reads.bpf.o");
  ASSERT_TRUE(spec) << spec.error().to_string();
  ASSERT_TRUE(spec->has_core_relocations);
  const Btf target = target_btf();
  auto done = apply_core_relocations(*spec, target);
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_FALSE(spec->has_core_relocations);
  EXPECT_EQ(outcome(*done, "core_values", 0, "struct thing.id"), "struct thing.id: 80");  // offset, found in the union
  EXPECT_EQ(outcome(*done, "core_values", 0, "struct thing.hist[2]"), "struct thing.hist[2]: 32");
  EXPECT_EQ(outcome(*done, "core_values", 0, "struct thing.hist[1]"), "struct thing.hist[1]: 8");  // size
  EXPECT_EQ(outcome(*done, "core_values", 0, "struct thing.gone"), "struct thing.gone: not in the target");
  EXPECT_EQ(outcome(*done, "core_values", 1, "struct thing.id"), "struct thing.id: 1");  // signed
  // A ___flavour names its base type: thing___old exists wherever thing does (libbpf's rule).
  EXPECT_EQ(outcome(*done, "core_values", 0, "struct thing___old"), "struct thing___old: 1");
  EXPECT_EQ(outcome(*done, "core_values", 0, "struct thing:"), "struct thing: 96");  // type size
  EXPECT_EQ(outcome(*done, "core_values", 0, "enum colour"), "enum colour: 7");
  EXPECT_EQ(outcome(*done, "core_values", 1, "enum colour"), "enum colour: not in the target");
  // The bitfield: a 4-byte load at byte 84 holds bits 680..684; shifts extract it.
  bool offset = false, lshift = false, rshift = false;
  for (const CoreOutcome& c : *done) {
    if (c.program != "core_bitfield") continue;
    offset |= c.what == "struct thing.mode: 84";
    lshift |= c.what == "struct thing.mode: 51";  // 64 - (680 + 5 - 84 * 8)
    rshift |= c.what == "struct thing.mode: 59";  // 64 - 5
  }
  EXPECT_TRUE(offset && lshift && rshift) << [&] {
    std::string all;
    for (const CoreOutcome& c : *done) all += c.program + ": " + c.what + "\n";
    return all;
  }();
  // An instruction whose relocation failed is marked, and the verifier refuses it when reached.
  const ProgramSpec* values = spec->find_program("core_values");
  int poisoned = 0;
  for (const auto& in : values->insns) poisoned += in.imm == isa::kPoisonCoreRelocation;
  EXPECT_EQ(poisoned, 0);  // existence tests give 0, never poison
  for (const CoreOutcome& c : *done) EXPECT_FALSE(c.poisoned) << c.what;
}

TEST(Kconfig, ExternsAreFilledForTheTarget) {
  auto spec = open_object(std::string(BPFVM_PROGS_DIR) + "/kconfig.bpf.o");
  ASSERT_TRUE(spec) << spec.error().to_string();
  ASSERT_EQ(spec->kconfig.size(), 5u);
  const MapSpec& map = spec->maps[spec->kconfig_map];
  EXPECT_EQ(map.name, "kconfig.kconfig");
  EXPECT_TRUE(map.map_flags & BPF_F_RDONLY_PROG);
  const std::map<std::string, std::string> config = {{"LINUX_KERNEL_VERSION", std::to_string((6 << 16) + (1 << 8) + 2)},
                                                     {"CONFIG_HZ", "250"},
                                                     {"CONFIG_BPF_SYSCALL", "y"},
                                                     {"CONFIG_DEFAULT_HOSTNAME", "\"(none)\""}};
  ASSERT_TRUE(fill_kconfig(*spec, config));
  const auto value_of = [&](std::string_view name) {
    for (const KconfigExtern& e : spec->kconfig) {
      if (e.name == name) return std::vector<std::uint8_t>(map.initial_value.begin() + e.offset,
                                                           map.initial_value.begin() + e.offset + e.size);
    }
    return std::vector<std::uint8_t>{};
  };
  const std::uint32_t hz = 250, version = (6 << 16) + (1 << 8) + 2;
  EXPECT_EQ(std::memcmp(value_of("CONFIG_HZ").data(), &hz, 4), 0);
  EXPECT_EQ(std::memcmp(value_of("LINUX_KERNEL_VERSION").data(), &version, 4), 0);
  EXPECT_EQ(value_of("CONFIG_BPF_SYSCALL"), std::vector<std::uint8_t>{1});
  EXPECT_EQ(value_of("CONFIG_BPFVM_NOT_THERE"), std::vector<std::uint8_t>(4, 0));  // weak, absent: 0
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(value_of("CONFIG_DEFAULT_HOSTNAME").data())), "(none)");
  // A strong extern the configuration lacks is an error that names it.
  auto again = open_object(std::string(BPFVM_PROGS_DIR) + "/kconfig.bpf.o");
  auto missing = fill_kconfig(*again, {});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("LINUX_KERNEL_VERSION"), std::string::npos);
  // libbpf's own values come with every configuration.
  EXPECT_TRUE(read_kernel_config().count("LINUX_KERNEL_VERSION"));
}

TEST(Core, TargetFilesAndTheirErrors) {
  auto missing = load_target_btf(std::string("/nonexistent/vmlinux"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("/nonexistent/vmlinux"), std::string::npos);
  // An object file's .BTF serves as a target (as libbpf's btf_custom_path takes ELF files).
  auto elf = load_target_btf(std::string(BPFVM_PROGS_DIR) + "/core_reads.bpf.o");
  EXPECT_TRUE(elf) << elf.error().to_string();
}
#endif

int silent(enum libbpf_print_level, const char*, va_list) { return 0; }

// The oracle: every CO-RE relocation of the objects Debian's libbpf-tools embed, applied by bpfvm
// against the running kernel's BTF, gives the instruction libbpf gives it.
TEST(CoreOracle, SameInstructionsAsLibbpfOnLibbpfTools) {
  if (::geteuid() != 0) GTEST_SKIP() << "libbpf relocates only while loading, which needs root";
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) GTEST_SKIP() << "no kernel BTF";
  if (!std::filesystem::exists("/usr/share/doc/libbpf-tools")) GTEST_SKIP() << "libbpf-tools is not installed";
  auto target = load_target_btf();
  ASSERT_TRUE(target) << target.error().to_string();
  libbpf_set_print(silent);
  int compared = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/sbin")) {
    const std::string path = entry.path().string();
    auto bytes = os::read_file(path);
    if (!bytes) continue;
    const auto embedded = embedded_objects(*bytes);
    if (embedded.empty()) continue;
    auto specs = open_objects(path);
    if (!specs) continue;
    for (std::size_t k = 0; k < specs->size() && k < embedded.size(); ++k) {
      ObjectSpec relocated = (*specs)[k];
      if (!apply_core_relocations(relocated, *target)) continue;
      for (const ProgramSpec& original : (*specs)[k].programs) {
        if (original.core_relos.empty()) continue;
        const ProgramSpec* ours = relocated.find_program(original.name);
        LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = (*specs)[k].name.c_str());
        bpf_object* o = bpf_object__open_mem(embedded[k].bytes.data(), embedded[k].bytes.size(), &opts);
        if (!o) continue;
        bpf_program* p;
        bpf_program* it = nullptr;
        bpf_object__for_each_program(p, o) {
          const bool match = original.name == bpf_program__name(p);
          bpf_program__set_autoload(p, match);
          if (match) it = p;
        }
        (void)bpf_object__load(o);  // may fail after relocating (no kprobes here): the code is relocated
        const bpf_insn* theirs = it ? bpf_program__insns(it) : nullptr;
        const std::size_t n = it ? bpf_program__insn_cnt(it) : 0;
        // libbpf stopped before relocating when every relocated instruction is still the original.
        bool relocated_by_libbpf = false;
        for (const CoreRelo& r : original.core_relos) {
          const isa::RawInsn& a = original.insns[r.insn];
          if (r.insn < n && (theirs[r.insn].off != a.off || theirs[r.insn].imm != a.imm || theirs[r.insn].code != a.opcode)) {
            relocated_by_libbpf = true;
          }
        }
        for (const CoreRelo& r : original.core_relos) {
          if (!relocated_by_libbpf || r.insn >= n) break;
          const isa::RawInsn& a = ours->insns[r.insn];
          const bpf_insn& b = theirs[r.insn];
          EXPECT_TRUE(a.opcode == b.code && a.off == b.off && a.imm == b.imm)
              << path << " " << original.name << " insn " << r.insn << " kind " << r.kind << ": bpfvm " << int(a.opcode)
              << "/" << a.off << "/" << a.imm << ", libbpf " << int(b.code) << "/" << b.off << "/" << b.imm;
          ++compared;
        }
        bpf_object__close(o);
      }
    }
  }
  EXPECT_GT(compared, 100);
  std::printf("%d relocated instructions compared with libbpf's\n", compared);
}

}  // namespace
}  // namespace bpfvm::obj
