// USDT attach points: libbpf's section names, the argument strings of sys/sdt.h notes as libbpf's
// struct __bpf_usdt_arg_spec says them, and the bytes of struct __bpf_usdt_spec.
#include <gtest/gtest.h>

#include <cstring>

#include "bpfvm/attach/usdt.hpp"

using namespace bpfvm::attach;

TEST(AttachUsdt, SectionNames) {
  EXPECT_TRUE(is_usdt_section("usdt/bin:p:n"));
  EXPECT_TRUE(is_usdt_section("usdt.s/bin:p:n"));
  EXPECT_TRUE(is_usdt_section("usdt"));
  EXPECT_FALSE(is_usdt_section("uprobe/bin:f"));
  auto s = parse_usdt_section("usdt//usr/lib/libc.so.6:libc:setjmp");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->path, "/usr/lib/libc.so.6");
  EXPECT_EQ(s->provider, "libc");
  EXPECT_EQ(s->name, "setjmp");
  auto bare = parse_usdt_section("usdt");
  ASSERT_TRUE(bare);
  EXPECT_TRUE(bare->path.empty());
  for (const char* bad : {"usdt/bin:p", "usdt/bin", "usdt/:p:n", "usdt/bin::n", "usdt/bin:p:"}) {
    auto r = parse_usdt_section(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().to_string().find("PATH:PROVIDER:NAME"), std::string::npos) << r.error().to_string();
  }
}

TEST(AttachUsdt, Arguments) {
  auto a = parse_usdt_args("-4@%eax 8@-16(%rbp) 2@$-5 -1@%r9b 8@(%rdi) 8@%rsp");
  ASSERT_TRUE(a) << a.error().to_string();
  ASSERT_EQ(a->size(), 6u);
  EXPECT_EQ((*a)[0].kind, UsdtArg::Kind::kReg);
  EXPECT_EQ((*a)[0].reg_off, 80);  // ax
  EXPECT_TRUE((*a)[0].is_signed);
  EXPECT_EQ((*a)[0].bitshift, 32);
  EXPECT_EQ((*a)[1].kind, UsdtArg::Kind::kRegDeref);
  EXPECT_EQ((*a)[1].reg_off, 32);  // bp
  EXPECT_EQ(static_cast<std::int64_t>((*a)[1].val_off), -16);
  EXPECT_FALSE((*a)[1].is_signed);
  EXPECT_EQ((*a)[1].bitshift, 0);
  EXPECT_EQ((*a)[2].kind, UsdtArg::Kind::kConst);
  EXPECT_EQ(static_cast<std::int64_t>((*a)[2].val_off), -5);
  EXPECT_EQ((*a)[2].bitshift, 48);
  EXPECT_EQ((*a)[3].reg_off, 64);  // r9
  EXPECT_EQ((*a)[3].bitshift, 56);
  EXPECT_EQ((*a)[4].kind, UsdtArg::Kind::kRegDeref);
  EXPECT_EQ((*a)[4].reg_off, 112);  // di
  EXPECT_EQ((*a)[4].val_off, 0u);
  EXPECT_EQ((*a)[5].reg_off, 152);  // sp
  auto none = parse_usdt_args("");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(AttachUsdt, ArgumentsBpfvmCannotSayAreErrorsThatNameThem) {
  const std::pair<const char*, const char*> cases[] = {
      {"8@8(%rax,%rbx,4)", "an index register"},
      {"8@counter(%rip)", "is not a number"},
      {"8@-8(%rip)", "relative to rip"},
      {"%eax", "has no size"},
      {"3@%eax", "not 1, 2, 4 or 8"},
      {"4@%xmm0", "not a general register"},
      {"4@$abc", "not a number"},
  };
  for (const auto& [text, why] : cases) {
    auto r = parse_usdt_args(text);
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().to_string().find(why), std::string::npos) << text << ": " << r.error().to_string();
  }
  auto many = parse_usdt_args("1@$1 1@$2 1@$3 1@$4 1@$5 1@$6 1@$7 1@$8 1@$9 1@$10 1@$11 1@$12 1@$13");
  ASSERT_FALSE(many);
  EXPECT_NE(many.error().to_string().find("more than 12"), std::string::npos);
}

TEST(AttachUsdt, SpecBytesAreLibbpfsStruct) {
  auto a = parse_usdt_args("-4@%eax 8@-16(%rbp)");
  ASSERT_TRUE(a);
  const std::vector<std::uint8_t> v = usdt_spec_value(*a, 0x1122334455667788ull);
  ASSERT_EQ(v.size(), kUsdtSpecSize);
  std::uint32_t type;
  std::int16_t reg, count;
  std::int64_t off;
  std::uint64_t cookie;
  std::memcpy(&type, v.data() + 8, 4);
  std::memcpy(&reg, v.data() + 12, 2);
  EXPECT_EQ(type, 1u);  // BPF_USDT_ARG_REG
  EXPECT_EQ(reg, 80);
  EXPECT_EQ(v[14], 1);   // arg_signed
  EXPECT_EQ(v[15], 32);  // arg_bitshift
  std::memcpy(&off, v.data() + 16, 8);
  std::memcpy(&type, v.data() + 24, 4);
  EXPECT_EQ(off, -16);
  EXPECT_EQ(type, 2u);  // BPF_USDT_ARG_REG_DEREF
  std::memcpy(&cookie, v.data() + 192, 8);
  std::memcpy(&count, v.data() + 200, 2);
  EXPECT_EQ(cookie, 0x1122334455667788ull);
  EXPECT_EQ(count, 2);
}
