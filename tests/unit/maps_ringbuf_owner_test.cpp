// RingBuffer::owner_of: the ring buffer a reserved record belongs to, which bpf_ringbuf_submit and
// _discard need. A verified program's records are found from the thread's last answer; that answer must
// never outlive its ring buffer, whatever address the next one is mapped at.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <filesystem>
#include <atomic>
#include <memory>
#include <span>
#include <thread>

#include "bpfvm/maps/ringbuf.hpp"

namespace bpfvm::maps {
namespace {

class RingBufferOwner : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("bpfvm-rbowner-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::shared_ptr<Map> make(const char* name) {
    auto map = create_map({BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, 0, name}, nullptr, dir_.string());
    EXPECT_TRUE(map) << map.error().to_string();
    return map ? std::move(*map) : nullptr;
  }
  std::filesystem::path dir_;
};

TEST_F(RingBufferOwner, FindsEachRecordsOwnBufferWithOrWithoutTheVerifiersWord) {
  auto a = make("a");
  auto b = make("b");
  ASSERT_TRUE(a && b);
  auto& ra = static_cast<RingBuffer&>(*a);
  auto& rb = static_cast<RingBuffer&>(*b);
  for (int round = 0; round < 3; ++round) {
    void* in_a = ra.reserve(8, 0);
    void* in_b = rb.reserve(8, 0);
    ASSERT_TRUE(in_a && in_b);
    for (const bool verified : {true, false}) {
      EXPECT_EQ(RingBuffer::owner_of(in_a, verified), &ra);
      EXPECT_EQ(RingBuffer::owner_of(in_b, verified), &rb);
      EXPECT_EQ(RingBuffer::owner_of(in_a, verified), &ra);
    }
    ra.commit(in_a, 0, false);
    rb.commit(in_b, 0, true);
    // Submitted: no longer a reservation, whichever way it is asked.
    EXPECT_EQ(RingBuffer::owner_of(in_a, true), nullptr);
    EXPECT_EQ(RingBuffer::owner_of(in_b, false), nullptr);
  }
  int x = 0;
  EXPECT_EQ(RingBuffer::owner_of(&x, false), nullptr);
}

TEST_F(RingBufferOwner, AnswerDoesNotOutliveItsBuffer) {
  // The next buffer is often mapped where the last one was: the answer must be the new one.
  for (int i = 0; i < 20; ++i) {
    auto map = make(i % 2 ? "x" : "y");
    ASSERT_TRUE(map);
    auto& ring = static_cast<RingBuffer&>(*map);
    void* rec = ring.reserve(16, 0);
    ASSERT_NE(rec, nullptr);
    EXPECT_EQ(RingBuffer::owner_of(rec, true), &ring);
    EXPECT_EQ(RingBuffer::owner_of(rec, true), &ring);  // (the thread's last answer)
    ring.commit(rec, 0, false);
  }
}

TEST_F(RingBufferOwner, ThreadsKeepTheirOwnAnswers) {
  auto a = make("a");
  auto b = make("b");
  ASSERT_TRUE(a && b);
  auto& ra = static_cast<RingBuffer&>(*a);
  auto& rb = static_cast<RingBuffer&>(*b);
  std::atomic<int> wrong{0};
  auto work = [&wrong](RingBuffer& ring) {
    for (int i = 0; i < 2000; ++i) {
      void* rec = ring.reserve(8, 0);
      if (!rec) continue;  // (full: nobody consumes)
      if (RingBuffer::owner_of(rec, true) != &ring) ++wrong;
      ring.commit(rec, 0, true);
      ring.consume([](std::span<const std::uint8_t>) { return 0; });
    }
  };
  std::thread t1(work, std::ref(ra)), t2(work, std::ref(rb));
  t1.join();
  t2.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace bpfvm::maps
