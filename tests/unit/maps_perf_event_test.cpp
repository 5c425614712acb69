// perf_event_array, its events and the PerfBuffer reader: record layout, wrap-around, lost counts, the
// kernel's errnos, and a map whose events another process writes to.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/perf_buffer.hpp"

namespace bpfvm::maps {
namespace {

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// 0, or the negative errno PerfEvent::output gives.
int output(PerfEvent& ev, const std::string& s) {
  const std::span<const std::uint8_t> parts[1] = {bytes(s)};
  return ev.output(parts);
}

struct Seen {
  std::vector<std::string> samples;
  std::vector<std::uint64_t> lost;
};

std::size_t drain(PerfEvent& ev, Seen& seen) {
  return ev.consume([&](std::span<const std::uint8_t> d) { seen.samples.emplace_back(d.begin(), d.end()); },
                    [&](std::uint64_t n) { seen.lost.push_back(n); });
}

TEST(PerfEvent, SampleRecordsHaveTheKernelsLayout) {
  auto ev = PerfEvent::create(0, 1);
  ASSERT_TRUE(ev);
  ASSERT_EQ(0, output(**ev, "hello"));
  // header (8) + u32 size + 5 bytes padded to 12: 24 bytes.
  const perf_event_mmap_page* page = (*ev)->mmap_page();
  EXPECT_EQ(page->data_head, 24u);
  EXPECT_EQ(page->data_offset, 4096u);
  EXPECT_EQ(page->data_size, 4096u);
  perf_event_header h;
  std::memcpy(&h, (*ev)->data(), sizeof h);
  EXPECT_EQ(h.type, PERF_RECORD_SAMPLE);
  EXPECT_EQ(h.size, 24);
  std::uint32_t raw;
  std::memcpy(&raw, (*ev)->data() + 8, 4);
  EXPECT_EQ(raw, 12u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*ev)->data() + 12), 12), std::string("hello\0\0\0\0\0\0\0", 12));
  Seen seen;
  EXPECT_EQ(drain(**ev, seen), 1u);
  ASSERT_EQ(seen.samples.size(), 1u);
  EXPECT_EQ(seen.samples[0], std::string("hello\0\0\0\0\0\0\0", 12));
  EXPECT_EQ(page->data_tail, 24u);
  EXPECT_FALSE((*ev)->has_data());
}

TEST(PerfEvent, FullBufferLosesSamplesAndReportsThemBeforeTheNext) {
  auto ev = PerfEvent::create(0, 1);
  ASSERT_TRUE(ev);
  const std::string payload(20, 'x');  // 32-byte records
  int written = 0;
  for (;;) {
    const int r = output(**ev, payload);
    if (r != 0) {
      EXPECT_EQ(r, -ENOSPC);
      break;
    }
    ++written;
  }
  // One byte always stays free, as the kernel's CIRC_SPACE keeps it: 127 records of 32 in 4096 bytes.
  EXPECT_EQ(written, 127);
  EXPECT_EQ(output(**ev, payload), -ENOSPC);
  EXPECT_EQ((*ev)->lost_total(), 2u);
  Seen seen;
  EXPECT_EQ(drain(**ev, seen), 127u);
  ASSERT_EQ(0, output(**ev, "after"));
  EXPECT_EQ(drain(**ev, seen), 2u);
  ASSERT_EQ(seen.lost.size(), 1u);
  EXPECT_EQ(seen.lost[0], 2u);
  EXPECT_EQ(seen.samples.back().substr(0, 5), "after");
}

TEST(PerfEvent, RecordsWrapAroundTheEndOfTheRing) {
  auto ev = PerfEvent::create(0, 1);
  ASSERT_TRUE(ev);
  Seen seen;
  // 200 records of 40 bytes go round the 4096-byte ring twice; records cross its end on the way.
  for (int i = 0; i < 200; ++i) {
    const std::string s = "record " + std::to_string(i) + std::string(20, '.');
    ASSERT_EQ(0, output(**ev, s.substr(0, 28)));
    drain(**ev, seen);
  }
  ASSERT_EQ(seen.samples.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(seen.samples[i].substr(0, 7 + std::to_string(i).size()), "record " + std::to_string(i));
}

TEST(PerfEvent, RefusesOversizedSamplesAndBadPageCounts) {
  auto ev = PerfEvent::create(0, 32);
  ASSERT_TRUE(ev);
  EXPECT_EQ(output(**ev, std::string(70000, 'x')), -E2BIG);
  EXPECT_FALSE(PerfEvent::create(0, 3));
  EXPECT_FALSE(PerfEvent::create(0, 0));
}

class PerfFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("bpfvm-perf-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(PerfFiles, OpenedEventSharesTheBufferAndCorruptFilesAreRefused) {
  auto ev = PerfEvent::create(1, 2, dir_.string());
  ASSERT_TRUE(ev);
  auto other = PerfEvent::open((*ev)->path());
  ASSERT_TRUE(other) << other.error().to_string();
  EXPECT_EQ((*other)->cpu(), 1u);
  ASSERT_EQ(0, output(**other, "via the other mapping"));
  Seen seen;
  EXPECT_EQ(drain(**ev, seen), 1u);

  const auto junk = dir_ / "junk";
  {
    std::FILE* f = std::fopen(junk.c_str(), "w");
    std::string zeros(3 * 4096, '\0');
    std::fwrite(zeros.data(), 1, zeros.size(), f);
    std::fclose(f);
  }
  EXPECT_FALSE(PerfEvent::open(junk.string()));
  std::filesystem::resize_file((*ev)->path(), 4096 + 100);
  EXPECT_FALSE(PerfEvent::open((*ev)->path()));
  // The creator removes its file.
  const std::string path = (*ev)->path();
  ev->reset();
  EXPECT_FALSE(std::filesystem::exists(path));
}

MapDef perf_array_def(std::uint32_t entries) { return {BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, entries, 0, "events"}; }

TEST_F(PerfFiles, PerfEventArrayHasTheKernelsErrors) {
  MapDef bad = perf_array_def(4);
  bad.value_size = 8;
  EXPECT_FALSE(create_map(bad));
  bad = perf_array_def(4);
  bad.map_flags = BPF_F_RDONLY_PROG;
  EXPECT_FALSE(create_map(bad));

  auto map = create_map(perf_array_def(4), nullptr, dir_.string());
  ASSERT_TRUE(map) << map.error().to_string();
  auto& array = static_cast<PerfEventArray&>(**map);
  auto ev = PerfEvent::create(0, 1, dir_.string());
  ASSERT_TRUE(ev);
  const std::uint32_t zero = 0, past = 4, two = 2;
  EXPECT_EQ(array.set_event(&zero, *ev, BPF_NOEXIST).error().code(), Errc::kInvalid);
  EXPECT_EQ(array.set_event(&past, *ev, BPF_ANY).error().code(), Errc::kTooBig);
  ASSERT_TRUE(array.set_event(&zero, *ev, BPF_ANY));
  std::uint32_t value;
  EXPECT_EQ(array.lookup(&zero, &value).error().code(), Errc::kNotSupported);
  EXPECT_EQ(array.update(&zero, &value, BPF_ANY).error().code(), Errc::kInvalid);
  EXPECT_EQ(array.erase(&two).error().code(), Errc::kNotFound);
  EXPECT_EQ(array.erase(&past).error().code(), Errc::kTooBig);
  std::uint32_t next = 99;
  ASSERT_TRUE(array.next_key(nullptr, &next));
  EXPECT_EQ(next, 0u);
  ASSERT_TRUE(array.next_key(&two, &next));
  EXPECT_EQ(next, 3u);

  const std::string s = "x";
  const std::span<const std::uint8_t> parts[1] = {bytes(s)};
  EXPECT_EQ(array.output(BPF_F_CURRENT_CPU, 0, parts), 0);
  EXPECT_EQ(array.output(0, 0, parts), 0);
  EXPECT_EQ(array.output(0, 1, parts), -EOPNOTSUPP);  // CPU 0's event, written from CPU 1
  EXPECT_EQ(array.output(1, 1, parts), -ENOENT);
  EXPECT_EQ(array.output(9, 0, parts), -E2BIG);
  EXPECT_EQ(array.output(BPF_F_CURRENT_CPU, 7, parts), -E2BIG);
  ASSERT_TRUE(array.erase(&zero));
  EXPECT_EQ(array.output(0, 0, parts), -ENOENT);
}

// Outputs read the slot's event without a lock: while one thread writes samples without pause, another
// replaces and empties the slot again and again; every sample written lands in an event the slot held
// (none in a freed one: the samples drained from the events are those written), and after the last
// change they go to the event installed last.
TEST_F(PerfFiles, OutputsWhileTheSlotChangesLandInAnInstalledEvent) {
  auto map = create_map(perf_array_def(1), nullptr, dir_.string());
  ASSERT_TRUE(map) << map.error().to_string();
  auto& array = static_cast<PerfEventArray&>(**map);
  const std::uint32_t zero = 0;
  std::vector<std::shared_ptr<PerfEvent>> events;
  for (int i = 0; i < 4; ++i) {
    auto ev = PerfEvent::create(0, 8, dir_.string());
    ASSERT_TRUE(ev);
    events.push_back(std::move(*ev));
  }
  ASSERT_TRUE(array.set_event(&zero, events[0], BPF_ANY));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> written{0}, tried{0};
  std::thread writer([&] {
    const std::string s = "sample";
    const std::span<const std::uint8_t> parts[1] = {bytes(s)};
    while (!stop.load()) {
      if (array.output(0, 0, parts) == 0) written.fetch_add(1);
      tried.fetch_add(1);
    }
  });
  Seen seen;
  for (int round = 0; round < 300; ++round) {
    // (EXPECT, not ASSERT: the writer thread must be joined)
    EXPECT_TRUE(array.set_event(&zero, events[static_cast<std::size_t>(round % 4)], BPF_ANY));
    if (round % 7 == 0) {
      EXPECT_TRUE(array.erase(&zero));
    }
    for (auto& ev : events) drain(*ev, seen);
    // Let the writer through between changes (the outputs overlap the changes, not only one).
    const std::uint64_t before = tried.load();
    for (int spin = 0; spin < 100000 && tried.load() < before + 2; ++spin) std::this_thread::yield();
  }
  EXPECT_TRUE(array.set_event(&zero, events[3], BPF_ANY));
  stop = true;
  writer.join();
  for (auto& ev : events) drain(*ev, seen);
  EXPECT_GT(written.load(), 0u);
  EXPECT_EQ(seen.samples.size(), written.load());  // (outputs to a full ring fail: counted lost, not written)
  for (const auto& sample : seen.samples) {
    ASSERT_EQ(sample.substr(0, 6), "sample");
  }
  const std::string last = "last";
  const std::span<const std::uint8_t> parts[1] = {bytes(last)};
  ASSERT_EQ(array.output(0, 0, parts), 0);
  Seen after;
  drain(*events[3], after);
  ASSERT_EQ(after.samples.size(), 1u);  // (a lost record may come first: the ring was full before)
  EXPECT_EQ(after.samples[0].substr(0, 4), "last");
}

TEST_F(PerfFiles, ASecondMappingOfTheMapFindsTheEventsByFile) {
  auto map = create_map(perf_array_def(2), nullptr, dir_.string());
  ASSERT_TRUE(map);
  Seen seen;
  std::vector<std::uint32_t> cpus;
  auto reader = PerfBuffer::open(*map, 1, [&](std::uint32_t cpu, std::span<const std::uint8_t> d) {
    cpus.push_back(cpu);
    seen.samples.emplace_back(d.begin(), d.end());
  });
  ASSERT_TRUE(reader) << reader.error().to_string();
  auto again = open_shared_map((*map)->storage_path());
  ASSERT_TRUE(again) << again.error().to_string();
  auto& array = static_cast<PerfEventArray&>(**again);
  const std::string s = "from the other side";
  const std::span<const std::uint8_t> parts[1] = {bytes(s)};
  const std::uint32_t last = std::min(possible_cpus(), 2u) - 1;
  EXPECT_EQ(array.output(BPF_F_CURRENT_CPU, last, parts), 0);
  EXPECT_EQ((*reader)->poll(1000), 1u);
  ASSERT_EQ(cpus.size(), 1u);
  EXPECT_EQ(cpus[0], last);
  EXPECT_EQ(seen.samples[0].substr(0, s.size()), s);
  // The reader empties its slots when it goes.
  reader->reset();
  EXPECT_EQ(array.output(BPF_F_CURRENT_CPU, last, parts), -ENOENT);
}

TEST_F(PerfFiles, PollWakesWhenAProducerWritesAndTimesOutOtherwise) {
  auto map = create_map(perf_array_def(possible_cpus()), nullptr, dir_.string());
  ASSERT_TRUE(map);
  std::size_t samples = 0;
  auto reader = PerfBuffer::open(*map, 4, [&](std::uint32_t, std::span<const std::uint8_t>) { ++samples; });
  ASSERT_TRUE(reader);
  EXPECT_EQ((*reader)->poll(20), 0u);
  auto& array = static_cast<PerfEventArray&>(**map);
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string s = "late";
    const std::span<const std::uint8_t> parts[1] = {bytes(s)};
    EXPECT_EQ(array.output(BPF_F_CURRENT_CPU, 0, parts), 0);
  });
  EXPECT_EQ((*reader)->poll(5000), 1u);
  producer.join();
  EXPECT_EQ(samples, 1u);
}

TEST_F(PerfFiles, AnotherProcessWritesIntoThisReadersBuffers) {
  auto map = create_map(perf_array_def(possible_cpus()), nullptr, dir_.string());
  ASSERT_TRUE(map);
  std::vector<std::string> got;
  auto reader = PerfBuffer::open(*map, 8, [&](std::uint32_t, std::span<const std::uint8_t> d) {
    got.emplace_back(reinterpret_cast<const char*>(d.data()));
  });
  ASSERT_TRUE(reader);
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto child = open_shared_map((*map)->storage_path());
    if (!child) ::_exit(1);
    auto& array = static_cast<PerfEventArray&>(**child);
    for (int i = 0; i < 100; ++i) {
      const std::string s = "child " + std::to_string(i) + std::string(1, '\0');
      const std::span<const std::uint8_t> parts[1] = {bytes(s)};
      if (array.output(BPF_F_CURRENT_CPU, 0, parts) != 0) ::_exit(2);
    }
    ::_exit(0);
  }
  while (got.size() < 100) {
    if ((*reader)->poll(5000) == 0) break;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], "child " + std::to_string(i));
}

// Counting events of the kernel's (what bpf_perf_event_read reads): this thread's task clock counts, a
// per-CPU clock reads only on its CPU, empty slots and indexes past the end have the kernel's errors, an
// output event counts nothing, and another process reads the same counter (taken with pidfd_getfd).
TEST_F(PerfFiles, CountersReadAsTheKernelsPerfEventRead) {
  perf_event_attr a{};
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;
  a.config = PERF_COUNT_SW_TASK_CLOCK;
  const int task_clock = static_cast<int>(::syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
  if (task_clock < 0) GTEST_SKIP() << "perf_event_open: " << std::strerror(errno);
  a.config = PERF_COUNT_SW_CPU_CLOCK;
  const int cpu_clock = static_cast<int>(::syscall(SYS_perf_event_open, &a, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  auto map = create_map(perf_array_def(4), nullptr, dir_.string());
  ASSERT_TRUE(map);
  auto& array = static_cast<PerfEventArray&>(**map);
  const auto tid = static_cast<std::int32_t>(::gettid());
  PerfEventArray::Counter c;
  c.pid = ::getpid();
  c.fd = task_clock;  // the map owns it now
  c.tid = tid;
  std::uint32_t key = 0;
  ASSERT_TRUE(array.set_counter(&key, c, BPF_ANY));
  if (cpu_clock >= 0) {
    c.fd = cpu_clock;
    c.cpu = 0;
    key = 1;
    ASSERT_TRUE(array.set_counter(&key, c, BPF_ANY));
  }
  std::atomic<std::uint64_t> spin{0};  // the task clock counts this thread's time
  while (spin.fetch_add(1, std::memory_order_relaxed) < 1000000) {
  }
  PerfEventArray::CounterValue v;
  EXPECT_EQ(array.read(0, 0, static_cast<std::uint32_t>(tid), &v), 0);
  EXPECT_GT(v.counter, 0u);
  EXPECT_GT(v.enabled, 0u);
  EXPECT_EQ(v.enabled, v.running);
  EXPECT_EQ(array.read(0, 0, static_cast<std::uint32_t>(tid) + 1, &v), -EINVAL);  // another thread's
  if (cpu_clock >= 0) {
    EXPECT_EQ(array.read(1, 0, 0, &v), 0);
    EXPECT_GT(v.counter, 0u);
    EXPECT_EQ(array.read(1, 1, 0, &v), -EINVAL);  // CPU 0's clock read on CPU 1
    EXPECT_EQ(array.read(BPF_F_CURRENT_CPU, 1, 0, &v), -EINVAL);  // slot 1 from CPU 1: still CPU 0's clock
  }
  EXPECT_EQ(array.read(2, 0, 0, &v), -ENOENT);
  EXPECT_EQ(array.read(4, 0, 0, &v), -E2BIG);
  // An output event: nothing to count; samples cannot go to a counter.
  auto ev = PerfEvent::create(0, 1, dir_.string());
  ASSERT_TRUE(ev);
  key = 2;
  ASSERT_TRUE(array.set_event(&key, *ev, BPF_ANY));
  EXPECT_EQ(array.read(2, 0, 0, &v), 0);
  EXPECT_EQ(v.counter, 0u);
  const std::span<const std::uint8_t> parts[1] = {bytes("x")};
  EXPECT_EQ(array.output(0, 0, parts), -EINVAL);
  // Another process, with the map's file: the same counter, through its own descriptor.
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto child = open_shared_map((*map)->storage_path());
    if (!child) ::_exit(1);
    PerfEventArray::CounterValue cv;
    const int r = static_cast<PerfEventArray&>(**child).read(0, 0, static_cast<std::uint32_t>(tid), &cv);
    // (An ordinary user's process may not take its parent's descriptor under Yama: EOPNOTSUPP then.)
    ::_exit((r == 0 && cv.counter > 0) || (r == -EOPNOTSUPP && ::geteuid() != 0) ? 0 : 2);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace bpfvm::maps
