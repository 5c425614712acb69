// BPF_MAP_TYPE_LPM_TRIE: longest-prefix match over keys struct bpf_lpm_trie_key { u32 prefixlen;
// u8 data[]; }. A lookup finds the entry with the longest prefix that matches the key's data within the
// key's prefixlen; get_next_key walks entries in the order of the kernel's trie (post-order: a longer
// prefix before the shorter one it extends, a 0 bit before a 1). Entries are kept in a flat table in
// shared memory (linear search; a trie layout is future work).
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
  std::size_t entry_size() const;
  std::uint8_t* entry(std::uint32_t i) const;  // {u32 used, u32 prefixlen, data, value}
  std::uint32_t& count() const;
  // The entry with exactly this prefix (masked), or max_entries when none. Lock held.
  std::uint32_t find_exact(std::uint32_t prefixlen, const std::uint8_t* data) const;
  std::uint32_t longest_match(const void* key) const;
  Result<void> write(const void* key, const void* value, std::uint64_t flags);
  Result<void> remove(const void* key);
};

}  // namespace bpfvm::maps
