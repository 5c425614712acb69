#include <gtest/gtest.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/hex.hpp"
#include "bpfvm/base/result.hpp"

namespace bpfvm {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return make_error(Errc::kInvalid, "{} is not positive", v);
  return v;
}

Result<int> doubled(int v) {
  int x = BPFVM_TRY(parse_positive(v));
  return 2 * x;
}

Result<int> doubled_with_context(int v) {
  int x = BPFVM_TRY_CTX(parse_positive(v), "double {}", v);
  return 2 * x;
}

TEST(Result, ValueAndError) {
  EXPECT_EQ(*doubled(4), 8);
  auto e = doubled(-1);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), Errc::kInvalid);
  EXPECT_EQ(e.error().errno_value(), EINVAL);
  EXPECT_EQ(e.error().to_string(), "-1 is not positive");
  EXPECT_EQ(doubled_with_context(-2).error().to_string(), "double -2: -2 is not positive");
}

TEST(Error, ContextAndLocationReadOutsideIn) {
  Error e = make_error(Errc::kInvalid, "jump out of range (target 40, program has 30)").at_insn(12);
  e.with_context("load program 'xdp_prog'");
  EXPECT_EQ(e.to_string(), "load program 'xdp_prog': instruction 12: jump out of range (target 40, program has 30)");
  Location loc;
  loc.file = "a.s";
  loc.line = 3;
  loc.column = 7;
  EXPECT_EQ(Error(Errc::kInvalid, "bad").at(loc).to_string(), "a.s:3:7: bad");
}

TEST(Hex, ParsesPairsAndRuns) {
  EXPECT_EQ(*parse_hex_bytes("0a 0B\n ff"), (std::vector<std::uint8_t>{0x0a, 0x0b, 0xff}));
  EXPECT_EQ(*parse_hex_bytes("0a0b0c"), (std::vector<std::uint8_t>{0x0a, 0x0b, 0x0c}));
  EXPECT_EQ(*parse_hex_bytes("0x0a0b"), (std::vector<std::uint8_t>{0x0a, 0x0b}));
  EXPECT_TRUE(parse_hex_bytes("")->empty());
  EXPECT_EQ(parse_hex_bytes("0a b").error().to_string(), "parse hex: token 'b' at offset 3 has an odd number of digits");
  EXPECT_EQ(parse_hex_bytes("zz").error().to_string(), "parse hex: 'z' at offset 0 is not a hex digit");
  EXPECT_EQ(format_hex_bytes(std::vector<std::uint8_t>{1, 0xab}), "01 ab");
}

TEST(File, ErrorsNameThePath) {
  auto r = os::read_file("/nonexistent/x.bin");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_EQ(r.error().to_string(), "open '/nonexistent/x.bin': No such file or directory");
  EXPECT_EQ(os::read_file("/").error().code(), Errc::kInvalid);
}

TEST(File, WriteIsAtomicAndReadable) {
  const std::string path = ::testing::TempDir() + "bpfvm_file_test.bin";
  std::vector<std::uint8_t> data = {1, 2, 3};
  ASSERT_TRUE(os::write_file(path, data));
  EXPECT_EQ(*os::read_file(path), data);
  EXPECT_FALSE(os::write_file("/nonexistent/dir/x", data));
}

}  // namespace
}  // namespace bpfvm
