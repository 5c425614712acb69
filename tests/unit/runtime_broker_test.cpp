// The broker (runtime/broker.hpp) opens registry files for agents in scope that cannot, and only what an
// agent needs: a caller without an agent record (nor an ancestor with one) gets EACCES; one in scope
// reads records, reads and writes the ids page and map memory, makes, renames and removes only its own
// agent record, and never leaves the pin root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "bpfvm/runtime/broker.hpp"
#include "bpfvm/runtime/registry.hpp"

namespace bpfvm::runtime {
namespace {

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("bpfvm-broker-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    auto opened = Registry::open(root_.string());
    ASSERT_TRUE(opened) << opened.error().to_string();
    registry_ = *opened;
    std::filesystem::create_directories(root_ / ".maps");
    std::ofstream(root_ / ".maps" / "map-1") << "data";
    std::ofstream(root_ / "elsewhere") << "secret";
    registry_->publish(ObjectKind::kProg, 5, {{"name", "p"}});
    auto b = Broker::start(root_.string(), registry_);
    ASSERT_TRUE(b) << b.error().to_string();
    broker_ = std::move(*b);
  }
  void TearDown() override {
    broker_.reset();
    std::filesystem::remove_all(root_);
  }
  std::string path(const std::string& rel) const { return (root_ / rel).string(); }
  std::int64_t open(const std::string& rel, int flags) {
    auto r = broker_request(root_.string(), BrokerOp::kOpen, path(rel).c_str(), flags, 0644);
    EXPECT_TRUE(r.has_value()) << "no broker answered";
    if (!r) return -9999;
    if (*r < 0) return *r;
    ::close(static_cast<int>(*r));
    return 0;  // a descriptor
  }
  std::filesystem::path root_;
  std::shared_ptr<Registry> registry_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(BrokerTest, OnlyProcessesInScopeAreServed) {
  EXPECT_TRUE(broker_listening(root_.string()));
  EXPECT_EQ(open(".registry/ids", O_RDWR), -EACCES);  // no agent record: not in scope
  // A child of a process in scope is in scope (it forked before it could make its own record).
  registry_->publish(ObjectKind::kAgent, static_cast<std::uint32_t>(::getpid()), {{"applied", nlohmann::json::array()}});
  EXPECT_EQ(open(".registry/ids", O_RDWR), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    auto r = broker_request(root_.string(), BrokerOp::kOpen, path(".registry/prog-5").c_str(), O_RDONLY, 0);
    ::_exit(r && *r >= 0 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(BrokerTest, WhatAnAgentNeedsAndNothingMore) {
  const std::string own = "agent-" + std::to_string(::getpid());
  registry_->publish(ObjectKind::kAgent, static_cast<std::uint32_t>(::getpid()), {{"applied", nlohmann::json::array()}});
  EXPECT_EQ(open(".registry/prog-5", O_RDONLY), 0);
  EXPECT_EQ(open(".registry/prog-5", O_RDWR), -EACCES);  // records are read, never written
  EXPECT_EQ(open(".maps/map-1", O_RDWR), 0);                // map memory is written by programs
  EXPECT_EQ(open(".registry", O_RDONLY | O_DIRECTORY), 0);  // listed
  EXPECT_EQ(open("elsewhere", O_RDONLY), -EACCES);          // not a file of the registry's
  EXPECT_EQ(open(".registry/../elsewhere", O_RDONLY), -EACCES);
  EXPECT_EQ(open(".registry/prog-6", O_RDWR | O_CREAT), -EACCES);  // nothing is made
  EXPECT_EQ(open(".registry/ids", O_RDWR | O_CREAT | O_EXCL), -EEXIST);
  EXPECT_EQ(open(".registry/" + own + ".tmp.1", O_WRONLY | O_CREAT | O_TRUNC), 0);  // its own record
  EXPECT_EQ(*broker_request(root_.string(), BrokerOp::kRename, path(".registry/" + own + ".tmp.1").c_str(), 0, 0,
                            path(".registry/" + own).c_str()),
            0);
  EXPECT_EQ(*broker_request(root_.string(), BrokerOp::kRename, path(".registry/" + own).c_str(), 0, 0,
                            path(".registry/prog-5").c_str()),
            -EACCES);  // over another record
  // (the record the rename put in place is the empty file above: published again, as the agent does)
  registry_->publish(ObjectKind::kAgent, static_cast<std::uint32_t>(::getpid()), {{"applied", nlohmann::json::array()}});
  EXPECT_EQ(*broker_request(root_.string(), BrokerOp::kUnlink, path(".registry/prog-5").c_str(), 0, 0), -EACCES);
  EXPECT_EQ(*broker_request(root_.string(), BrokerOp::kMkdir, path(".registry").c_str(), 0, 0700), -EEXIST);
  EXPECT_EQ(*broker_request(root_.string(), BrokerOp::kMkdir, path("new").c_str(), 0, 0700), -EACCES);
  struct stat st {};
  EXPECT_EQ(*broker_request(root_.string(), BrokerOp::kStat, path(".registry").c_str(), 0, 0, nullptr, &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_FALSE(broker_request("/no/such/root", BrokerOp::kStat, "/no/such/root/x", 0, 0).has_value());
}

}  // namespace
}  // namespace bpfvm::runtime
