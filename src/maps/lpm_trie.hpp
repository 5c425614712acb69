// BPF_MAP_TYPE_LPM_TRIE: longest-prefix match over keys struct bpf_lpm_trie_key { u32 prefixlen;
// u8 data[]; }. A lookup finds the entry with the longest prefix that matches the key's data within the
// key's prefixlen; get_next_key walks entries in the order of the kernel's trie (post-order: a longer
// prefix before the shorter one it extends, a 0 bit before a 1).
//
// The trie is the kernel's (kernel/bpf/lpm_trie.c): a binary tree of prefixes in which a node's
// children extend its prefix by at least one bit (child[bit after the prefix]), and intermediate nodes
// (not entries) join two prefixes that differ after a common part. Nodes live in shared memory and
// link by index; there are 2 * max_entries of them, entries and intermediates, on a free list.
#pragma once

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class LpmTrie final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  Result<void> update_from_program(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase_from_program(const void* key) override;

 private:
  LpmTrie(const MapDef& def, os::SharedMemory memory) : Map(def, std::move(memory)) {}
  static Result<std::size_t> payload_size(const MapDef& def);
  std::uint32_t data_size() const { return def().key_size - 4; }
  struct Meta;
  struct Node;
  Meta& meta() const;
  std::uint32_t node_count() const { return 2 * def().max_entries; }
  std::size_t node_size() const;
  Node* node(std::uint32_t index) const;  // 1-based; null for 0 or an index out of range
  std::uint8_t* data_of(Node* n) const;
  std::uint8_t* value_of(Node* n) const;
  std::uint32_t allocate();
  void release(std::uint32_t index);
  // The leading bits of the node's prefix that `data` matches, up to `limit` (the kernel's
  // longest_prefix_match).
  std::uint32_t match_len(Node* n, const std::uint8_t* data, std::uint32_t limit) const;
  // The entry with exactly this prefix, or 0. Lock held.
  std::uint32_t find_exact(std::uint32_t prefixlen, const std::uint8_t* data) const;
  // The entry with the longest prefix that matches the key, or 0. Lock held.
  std::uint32_t longest_match(const void* key) const;
  Result<void> write(const void* key, const void* value, std::uint64_t flags);
  Result<void> remove(const void* key);
};

}  // namespace bpfvm::maps
