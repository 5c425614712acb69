#include <gtest/gtest.h>

#include <bpf/btf.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "bpfvm/obj/dwarf_types.hpp"

namespace bpfvm::obj {
namespace {

#ifdef BPFVM_PROGS_DIR
const std::string kObject = std::string(BPFVM_PROGS_DIR) + "/record_local.bpf.o";

TEST(DwarfRecordStruct, FindsTheStructALocalVariableHolds) {
  if (!std::filesystem::exists(kObject)) GTEST_SKIP() << "no BPF test objects";
  // Not in .BTF: that is why DWARF is read.
  // (sizeof(struct event) = 4 + 4 + 16 + 2 (bit fields) + 6 (padding) + 48 + 8 = 88)
  auto found = find_dwarf_record_struct(kObject, 88, 88);
  ASSERT_TRUE(found) << found.error().to_string();
  ASSERT_TRUE(*found);
  const DwarfStruct& s = **found;
  EXPECT_EQ(s.name, "event");
  const btf_type* t = btf__type_by_id(s.btf.get(), s.type_id);
  ASSERT_TRUE(t && btf_is_struct(t));
  EXPECT_EQ(t->size, 88u);
  ASSERT_EQ(btf_vlen(t), 7);
  const btf_member* m = btf_members(t);
  const char* names[] = {"pid", "kind", "comm", "flags", "mode", "values", "where"};
  const std::uint32_t bit_offsets[] = {0, 32, 64, 192, 195, 256, 640};
  for (int i = 0; i < 7; ++i) {
    EXPECT_STREQ(btf__name_by_offset(s.btf.get(), m[i].name_off), names[i]);
    EXPECT_EQ(btf_member_bit_offset(t, i), bit_offsets[i]) << names[i];
  }
  EXPECT_EQ(btf_member_bitfield_size(t, 4), 13u);
  // The enum keeps its enumerators, the typedef its name.
  const btf_type* kind = btf__type_by_id(s.btf.get(), m[1].type);
  ASSERT_TRUE(kind && btf_is_enum(kind));
  EXPECT_EQ(btf_vlen(kind), 2);
  const btf_type* pid = btf__type_by_id(s.btf.get(), m[0].type);
  ASSERT_TRUE(pid && btf_is_typedef(pid));
  EXPECT_STREQ(btf__name_by_offset(s.btf.get(), pid->name_off), "u32");
}

TEST(DwarfRecordStruct, InMemoryAsInAFile) {
  if (!std::filesystem::exists(kObject)) GTEST_SKIP() << "no BPF test objects";
  std::ifstream in(kObject, std::ios::binary);
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto found = find_dwarf_record_struct(std::span<const std::uint8_t>(bytes), 81, 88);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->name, "event");
  // Cut short anywhere, the object gives an answer or an error, never a crash.
  for (std::size_t n : {std::size_t{0}, std::size_t{64}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 1}) {
    (void)find_dwarf_record_struct(std::span<const std::uint8_t>(bytes.data(), n), 81, 88);
  }
}

TEST(DwarfRecordStruct, NoneOfAnotherSize) {
  if (!std::filesystem::exists(kObject)) GTEST_SKIP() << "no BPF test objects";
  auto found = find_dwarf_record_struct(kObject, 100, 120);
  ASSERT_TRUE(found);
  EXPECT_FALSE(*found);
}
#endif

TEST(DwarfRecordStruct, FilesWithoutDwarfHaveNone) {
  const std::string path = ::testing::TempDir() + "/not-elf";
  std::ofstream(path) << "not an ELF file";
  auto found = find_dwarf_record_struct(path, 1, 100);
  ASSERT_TRUE(found);
  EXPECT_FALSE(*found);
  EXPECT_FALSE(find_dwarf_record_struct(path + ".missing", 1, 100));
}

}  // namespace
}  // namespace bpfvm::obj
