#include <gtest/gtest.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/isa/disasm.hpp"
#include "bpfvm/obj/elf_code.hpp"

namespace bpfvm::obj {
namespace {

std::vector<std::uint8_t> object() {
#ifdef BPFVM_TEST_OBJECT
  auto r = os::read_file(BPFVM_TEST_OBJECT);
  if (r) return *r;
#endif
  return {};
}

TEST(ElfCode, ReadsSectionsAndFunctions) {
  auto bytes = object();
  if (bytes.empty()) GTEST_SKIP() << "clang with the BPF target is not available";
  auto sections = read_elf_code(bytes);
  ASSERT_TRUE(sections) << sections.error().to_string();
  std::vector<std::string> names;
  for (const auto& s : *sections) {
    for (const auto& sym : s.symbols) names.push_back(s.name + "/" + sym.name);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{".text/twice", "socket/count_bytes", "xdp/pass_all"}));
  for (const auto& s : *sections) {
    if (s.name == "xdp") {
      EXPECT_EQ(isa::disassemble(s.insns), "   0: (b7) r0 = 2\n   1: (95) exit\n");
    }
  }
}

TEST(ElfCode, RejectsWhatIsNotABpfObject) {
  EXPECT_EQ(read_elf_code(std::vector<std::uint8_t>{1, 2, 3}).error().to_string(), "not an ELF file");
  auto self = os::read_file("/proc/self/exe");
  ASSERT_TRUE(self);
  EXPECT_EQ(read_elf_code(*self).error().to_string(), "ELF machine is 62, not BPF (247)");
}

TEST(ElfCode, SurvivesTruncationAndCorruption) {
  auto bytes = object();
  if (bytes.empty()) GTEST_SKIP() << "clang with the BPF target is not available";
  for (std::size_t n = 0; n < bytes.size(); n += 7) {
    (void)read_elf_code(std::span<const std::uint8_t>(bytes.data(), n));
  }
  std::uint32_t seed = 1;
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::uint8_t> copy = bytes;
    for (int k = 0; k < 4; ++k) {
      seed = seed * 1103515245 + 12345;
      copy[(seed >> 8) % copy.size()] = static_cast<std::uint8_t>(seed >> 24);
    }
    auto r = read_elf_code(copy);  // any result is fine; crashing or hanging is not
    if (r) {
      for (const auto& s : *r) (void)isa::disassemble(s.insns);
    }
  }
}

}  // namespace
}  // namespace bpfvm::obj
