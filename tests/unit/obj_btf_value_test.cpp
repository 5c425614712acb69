// Values printed through BTF as bpftool prints them: numbers, char arrays as strings, structs by
// member, enums by name, bitfields, arrays; and finding a record's struct.
#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "bpfvm/obj/btf_value.hpp"

namespace bpfvm::obj {
namespace {

struct Built {
  Btf btf;
  std::uint32_t event, u32, color;
};

// struct event { char comm[4]; unsigned int pid; int delta; enum color c; unsigned int lo:3, hi:5; int v[2]; }
Built build() {
  struct btf* b = btf__new_empty();
  const int u32 = btf__add_int(b, "unsigned int", 4, 0);
  const int s32 = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
  const int ch = btf__add_int(b, "char", 1, BTF_INT_SIGNED);
  const int comm = btf__add_array(b, u32, ch, 4);
  const int v = btf__add_array(b, u32, s32, 2);
  const int color = btf__add_enum(b, "color", 4);
  btf__add_enum_value(b, "RED", 0);
  btf__add_enum_value(b, "GREEN", 1);
  const int event = btf__add_struct(b, "event", 28);
  btf__add_field(b, "comm", comm, 0, 0);
  btf__add_field(b, "pid", u32, 32, 0);
  btf__add_field(b, "delta", s32, 64, 0);
  btf__add_field(b, "c", color, 96, 0);
  btf__add_field(b, "lo", u32, 128, 3);
  btf__add_field(b, "hi", u32, 131, 5);
  btf__add_field(b, "v", v, 160, 0);
  std::uint32_t size = 0;
  const auto* raw = static_cast<const std::uint8_t*>(btf__raw_data(b, &size));
  auto parsed = Btf::parse({raw, size});
  btf__free(b);
  EXPECT_TRUE(parsed);
  return {std::move(*parsed), static_cast<std::uint32_t>(event), static_cast<std::uint32_t>(u32),
          static_cast<std::uint32_t>(color)};
}

TEST(BtfValue, PrintsAStructAsBpftoolDoes) {
  const Built b = build();
  std::uint8_t data[28] = {};
  std::memcpy(data, "ab", 2);
  const std::uint32_t pid = 1234;
  const std::int32_t delta = -5, c = 1, v0 = 7, v1 = -1;
  std::memcpy(data + 4, &pid, 4);
  std::memcpy(data + 8, &delta, 4);
  std::memcpy(data + 12, &c, 4);
  data[16] = 0x5 | (0x11 << 3);  // lo = 5, hi = 17
  std::memcpy(data + 20, &v0, 4);
  std::memcpy(data + 24, &v1, 4);
  EXPECT_EQ(btf_value(b.btf, b.event, data).dump(),
            R"({"comm":"ab","pid":1234,"delta":-5,"c":"GREEN","lo":5,"hi":17,"v":[7,-1]})");
  EXPECT_EQ(btf_cell(b.btf, b.event, data).substr(0, 9), R"({"comm":")");
  const std::int32_t unknown = 9;
  EXPECT_EQ(btf_cell(b.btf, b.color, {reinterpret_cast<const std::uint8_t*>(&unknown), 4}), "9");
}

// A table's cells decided once per type (BtfCellFormat) are btf_cell's text, for every kind of type a
// record's member may have, on random bytes.
TEST(BtfValue, ACellFormatDecidedOnceWritesWhatBtfCellWrites) {
  struct btf* b = btf__new_empty();
  std::vector<int> types;
  for (const int size : {1, 2, 4, 8}) {
    types.push_back(btf__add_int(b, fmt::format("u{}", size * 8).c_str(), size, 0));
    types.push_back(btf__add_int(b, fmt::format("s{}", size * 8).c_str(), size, BTF_INT_SIGNED));
  }
  const int s32 = types[5];
  types.push_back(btf__add_int(b, "_Bool", 1, BTF_INT_BOOL));
  types.push_back(btf__add_int(b, "__int128", 16, BTF_INT_SIGNED));  // (wider than 64 bits: btf_cell's)
  const int ch = btf__add_int(b, "char", 1, BTF_INT_SIGNED);
  types.push_back(btf__add_array(b, types[4], ch, 16));
  types.push_back(btf__add_array(b, types[4], s32, 3));
  types.push_back(btf__add_ptr(b, s32));
  types.push_back(btf__add_typedef(b, "pid_t", s32));
  types.push_back(btf__add_const(b, types.back()));
  for (const auto& [size, is_signed] : std::vector<std::pair<int, bool>>{{4, false}, {4, true}, {1, false}, {2, true}}) {
    types.push_back(btf__add_enum(b, fmt::format("e{}{}", size, is_signed).c_str(), size));
    if (is_signed) btf__add_enum_value(b, "NEG", -1);
    btf__add_enum_value(b, "ZERO", 0);
    btf__add_enum_value(b, "SEVEN", 7);
  }
  types.push_back(btf__add_enum64(b, "e64", 8, false));
  btf__add_enum64_value(b, "BIG", 0x8000000000000001ull);
  types.push_back(btf__add_enum64(b, "e64s", 8, true));
  btf__add_enum64_value(b, "MINUS", static_cast<std::uint64_t>(-2));
  const int st = btf__add_struct(b, "pair", 8);
  btf__add_field(b, "a", s32, 0, 0);
  btf__add_field(b, "b", s32, 32, 0);
  types.push_back(st);
  std::uint32_t raw_size = 0;
  const auto* raw = static_cast<const std::uint8_t*>(btf__raw_data(b, &raw_size));
  auto parsed = Btf::parse({raw, raw_size});
  btf__free(b);
  ASSERT_TRUE(parsed);
  std::uint32_t seed = 12345;
  const auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
  for (const int type : types) {
    const auto id = static_cast<std::uint32_t>(type);
    const std::int64_t size = btf_size(*parsed, id);
    ASSERT_GT(size, 0) << type;
    const BtfCellFormat format(*parsed, id);
    for (int round = 0; round < 300; ++round) {
      std::vector<std::uint8_t> data(static_cast<std::size_t>(size));
      for (auto& byte : data) {
        // Small values (enumerators, short strings) as often as any.
        const std::uint32_t r = next() >> 16;
        byte = round % 3 == 0 ? static_cast<std::uint8_t>(r % 8) : static_cast<std::uint8_t>(r);
      }
      if (round % 5 == 0) std::fill(data.begin(), data.end(), 0xff);
      std::string got = "|";
      format.append(data, got);
      EXPECT_EQ(got, "|" + btf_cell(*parsed, id, data)) << "type " << type << " (" << parsed->type_name(id) << ")";
    }
  }
}

TEST(BtfValue, FindsTheRecordStruct) {
  const Built b = build();
  EXPECT_EQ(btf_find_struct(b.btf, "event"), b.event);
  EXPECT_EQ(btf_find_struct(b.btf, "", 28), b.event);
  EXPECT_EQ(btf_find_struct(b.btf, "", 12), 0u);
  EXPECT_EQ(btf_size(b.btf, b.event), 28);
}

TEST(BtfValue, ShortDataNeverReadsPastTheEnd) {
  const Built b = build();
  std::uint8_t data[6] = {'x', 0, 0, 0, 1, 0};
  const auto v = btf_value(b.btf, b.event, data);  // ASan checks the bounds
  EXPECT_EQ(v["comm"], "x");
}

}  // namespace
}  // namespace bpfvm::obj
