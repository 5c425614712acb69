// State pruning: an explored state covers a new one only when every register and stack byte the
// explored paths could rely on is at least as constrained in the new one.
#include <gtest/gtest.h>

#include "bpfvm/verifier/state.hpp"

namespace bpfvm::verifier {
namespace {

TEST(State, EntryHasContextAndFramePointer) {
  const State s = State::entry();
  ASSERT_EQ(s.frames.size(), 1u);
  EXPECT_EQ(s.cur().regs[1].type, RegType::kCtx);
  EXPECT_EQ(s.cur().regs[10].to_string(), "fp0");
  EXPECT_EQ(s.cur().regs[0].type, RegType::kNotInit);
  EXPECT_TRUE(s.includes(s));
}

TEST(State, ScalarsPruneByRange) {
  State old = State::entry(), cur = State::entry();
  old.cur().regs[2] = RegState::scalar(Scalar::range(0, 100));
  cur.cur().regs[2] = RegState::scalar(Scalar::range(10, 20));
  EXPECT_TRUE(old.includes(cur));
  EXPECT_FALSE(cur.includes(old));
  // An unset register in the explored state was never read: anything goes.
  old.cur().regs[3] = RegState{};
  cur.cur().regs[3] = RegState::unknown_scalar();
  EXPECT_TRUE(old.includes(cur));
  // But an unset one in the new state is not covered by a set one.
  std::swap(old.cur().regs[3], cur.cur().regs[3]);
  EXPECT_FALSE(old.includes(cur));
}

TEST(State, PointersMustMatchTypeOffsetAndNullness) {
  State old = State::entry(), cur = State::entry();
  RegState v = RegState::pointer(RegType::kMapValue, 8);
  v.map_index = 1;
  old.cur().regs[0] = v;
  cur.cur().regs[0] = v;
  EXPECT_TRUE(old.includes(cur));
  cur.cur().regs[0].off = 16;
  EXPECT_FALSE(old.includes(cur));
  cur.cur().regs[0] = v;
  cur.cur().regs[0].maybe_null = true;
  EXPECT_FALSE(old.includes(cur));
  cur.cur().regs[0] = v;
  cur.cur().regs[0].map_index = 2;
  EXPECT_FALSE(old.includes(cur));
  // A packet pointer with less proven range is not covered.
  RegState p = RegState::pointer(RegType::kPacket);
  p.range = 14;
  old.cur().regs[0] = p;
  cur.cur().regs[0] = p;
  cur.cur().regs[0].range = 34;
  EXPECT_TRUE(old.includes(cur));
  cur.cur().regs[0].range = 4;
  EXPECT_FALSE(old.includes(cur));
}

TEST(State, IdsMustPairUpConsistently) {
  // r1 and r2 are copies of one maybe-null pointer in the explored state; in the new one they are two
  // different pointers: a null check on r1 would not cover r2, so no pruning.
  State old = State::entry(), cur = State::entry();
  RegState v = RegState::pointer(RegType::kMapValue);
  v.maybe_null = true;
  v.id = 5;
  old.cur().regs[1] = old.cur().regs[2] = v;
  cur.cur().regs[1] = cur.cur().regs[2] = v;
  cur.cur().regs[1].id = 7;
  cur.cur().regs[2].id = 7;
  EXPECT_TRUE(old.includes(cur));  // renamed consistently
  cur.cur().regs[2].id = 8;
  EXPECT_FALSE(old.includes(cur));
}

TEST(State, StackBytesAndSpills) {
  State old = State::entry(), cur = State::entry();
  StackSlot misc;
  misc.bytes.fill(ByteType::kMisc);
  old.cur().slot(0) = misc;
  EXPECT_TRUE(old.includes(cur));  // any bytes, even unwritten ones, are a number
  StackSlot spilled_ptr;
  spilled_ptr.bytes.fill(ByteType::kSpill);
  spilled_ptr.spilled = RegState::pointer(RegType::kStack, -8);
  cur.cur().slot(0) = spilled_ptr;
  EXPECT_FALSE(old.includes(cur));  // but not a pointer
  StackSlot zero;
  zero.bytes.fill(ByteType::kZero);
  cur.cur().slot(0) = zero;
  EXPECT_TRUE(old.includes(cur));  // zeros are initialised data
  StackSlot spill;
  spill.bytes.fill(ByteType::kSpill);
  spill.spilled = RegState::scalar(Scalar::range(0, 7));
  old.cur().slot(1) = spill;
  cur.cur().slot(1) = spill;
  cur.cur().slot(1).spilled = RegState::scalar(Scalar::constant(3));
  EXPECT_TRUE(old.includes(cur));
  cur.cur().slot(1).spilled = RegState::scalar(Scalar::constant(9));
  EXPECT_FALSE(old.includes(cur));
  cur.cur().slot(1) = misc;  // the explored state relied on the spilled range
  EXPECT_FALSE(old.includes(cur));
}

TEST(State, ReferencesAndFramesMustMatch) {
  State old = State::entry(), cur = State::entry();
  cur.refs.push_back({3, 0});
  EXPECT_FALSE(old.includes(cur));  // a reference still to release
  old.refs.push_back({9, 0});
  EXPECT_TRUE(old.includes(cur));
  cur.frames.emplace_back();
  EXPECT_FALSE(old.includes(cur));
}

TEST(State, LogNotation) {
  EXPECT_EQ(RegState::scalar(Scalar::range(0, 15)).to_string(), "scalar(smin=smin32=0,smax=umax=smax32=umax32=15,var_off=(0x0; 0xf))");
  RegState v = RegState::pointer(RegType::kMapValue);
  v.maybe_null = true;
  v.id = 2;
  EXPECT_EQ(v.to_string(), "map_value_or_null(id=2,map=0)");
  EXPECT_EQ(RegState::pointer(RegType::kStack, -8).to_string(), "fp-8");
}

}  // namespace
}  // namespace bpfvm::verifier
