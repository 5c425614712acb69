#pragma once
// What a fork costs the agent's processes in memory: after fork(), each page of private memory that the
// parent or the child writes first is copied (copy-on-write). On the PVM guest this was measured on, a
// copy costs about 14 us, against 1-2 us for a fault that copies nothing; a child that exits at once (a
// shell's command, issue 18's fork per 1000 rounds) pays it for every page its fork path writes.
//
// So the process-wide words that a fork must rewrite (the child's pid and generation, the deferral of
// its watcher, the lock the atfork handlers hold) are placed in one section, `bpfvm_forked`, that fits in
// a page (tests/agent/agent_test.sh checks it in libbpfvm-agent.so), and words that usually hold their
// reset value already are written only when they do not (store_if_changed): a store of the same value
// copies the page all the same.
#include <atomic>

#define BPFVM_AGENT_FORKED __attribute__((section("bpfvm_forked")))

namespace bpfvm::agent::detail {

template <class T, class V>
inline void store_if_changed(std::atomic<T>& word, V value, std::memory_order order = std::memory_order_seq_cst) {
  if (word.load(std::memory_order_relaxed) != static_cast<T>(value)) word.store(static_cast<T>(value), order);
}

template <class T, class V>
inline void store_if_changed(T& word, V value) {
  if (word != static_cast<T>(value)) word = static_cast<T>(value);
}

}  // namespace bpfvm::agent::detail
