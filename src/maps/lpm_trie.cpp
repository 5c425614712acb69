#include "lpm_trie.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "map_header.hpp"
#include "update_flags.hpp"

namespace bpfvm::maps {

namespace {
constexpr std::uint32_t kMaxData = 256;  // LPM_DATA_SIZE_MAX
constexpr std::uint32_t kUsed = 1, kIntermediate = 2;

bool bit(const std::uint8_t* data, std::uint32_t i) { return (data[i / 8] >> (7 - i % 8)) & 1; }

// How many leading bits of a and b agree, up to `limit`: whole bytes first, then bits.
std::uint32_t common_bits(const std::uint8_t* a, const std::uint8_t* b, std::uint32_t limit) {
  std::uint32_t n = 0;
  while (n + 8 <= limit && a[n / 8] == b[n / 8]) n += 8;
  if (n >= limit) return limit;
  const auto diff = static_cast<std::uint8_t>(a[n / 8] ^ b[n / 8]);
  const std::uint32_t same = diff ? static_cast<std::uint32_t>(__builtin_clz(diff) - 24) : 8;
  return std::min(limit, n + same);
}
}  // namespace

struct LpmTrie::Meta {
  std::uint32_t count;      // entries (not intermediate nodes)
  std::uint32_t root;       // node index, 0 = empty
  std::uint32_t free_head;  // free nodes, linked through child[0]
  std::uint32_t pad;
};

struct LpmTrie::Node {
  std::uint32_t flags;  // kUsed, kIntermediate
  std::uint32_t prefixlen;
  std::uint32_t child[2];
  // then data (round8(data_size)) and value (round8(value_size))
};

Result<std::size_t> LpmTrie::payload_size(const MapDef& def) {
  if (def.key_size <= 4 || def.key_size - 4 > kMaxData) {
    return make_error(Errc::kInvalid, "an LPM trie key is a u32 prefixlen and 1 to {} bytes of data", kMaxData);
  }
  if (def.value_size == 0 || def.value_size > (1u << 20)) return make_error(Errc::kInvalid, "value_size {} is invalid", def.value_size);
  // The kernel allocates trie nodes as they come and requires BPF_F_NO_PREALLOC to say so.
  if (!(def.map_flags & BPF_F_NO_PREALLOC)) return make_error(Errc::kInvalid, "an LPM trie needs BPF_F_NO_PREALLOC");
  constexpr std::uint32_t kAllowed = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY |
                                     BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for an LPM trie", def.map_flags);
  const std::uint64_t node = sizeof(Node) + round8(def.key_size - 4) + round8(def.value_size);
  const std::uint64_t bytes = sizeof(Meta) + 2 * std::uint64_t{def.max_entries} * node;
  if (def.max_entries > (1u << 24) || bytes > (1ull << 32)) return make_error(Errc::kTooBig, "the LPM trie is too large");
  return static_cast<std::size_t>(bytes);
}

Result<std::shared_ptr<Map>> LpmTrie::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  auto map = std::shared_ptr<LpmTrie>(new LpmTrie(def, std::move(memory)));
  for (std::uint32_t i = 1; i <= map->node_count(); ++i) map->node(i)->child[0] = i < map->node_count() ? i + 1 : 0;
  map->meta().free_head = 1;
  return std::shared_ptr<Map>(std::move(map));
}

Result<std::shared_ptr<Map>> LpmTrie::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != sizeof(MapHeader) + payload) return make_error(Errc::kInvalid, "'{}' has the wrong size", memory.path());
  auto map = std::shared_ptr<LpmTrie>(new LpmTrie(def, std::move(memory)));
  const Meta& m = map->meta();
  if (m.count > def.max_entries || m.root > map->node_count() || m.free_head > map->node_count()) {
    return make_error(Errc::kInvalid, "'{}': the trie's header is corrupt", map->storage_path());
  }
  return std::shared_ptr<Map>(std::move(map));
}

LpmTrie::Meta& LpmTrie::meta() const { return *reinterpret_cast<Meta*>(payload()); }
std::size_t LpmTrie::node_size() const { return sizeof(Node) + round8(data_size()) + round8(def().value_size); }
LpmTrie::Node* LpmTrie::node(std::uint32_t index) const {
  // Indexes come from shared memory: one out of range ends a walk rather than reading past the map.
  if (index == 0 || index > node_count()) return nullptr;
  return reinterpret_cast<Node*>(payload() + sizeof(Meta) + (index - 1) * node_size());
}
std::uint8_t* LpmTrie::data_of(Node* n) const { return reinterpret_cast<std::uint8_t*>(n) + sizeof(Node); }
std::uint8_t* LpmTrie::value_of(Node* n) const { return data_of(n) + round8(data_size()); }

std::uint32_t LpmTrie::allocate() {
  const std::uint32_t i = meta().free_head;
  Node* n = node(i);
  if (!n) return 0;
  meta().free_head = n->child[0];
  std::memset(n, 0, node_size());
  n->flags = kUsed;
  return i;
}

void LpmTrie::release(std::uint32_t index) {
  Node* n = node(index);
  std::memset(n, 0, node_size());
  n->child[0] = meta().free_head;
  meta().free_head = index;
}

std::uint32_t LpmTrie::match_len(Node* n, const std::uint8_t* data, std::uint32_t limit) const {
  return common_bits(data_of(n), data, std::min(n->prefixlen, limit));
}

std::uint32_t LpmTrie::find_exact(std::uint32_t prefixlen, const std::uint8_t* data) const {
  std::uint32_t index = meta().root;
  for (std::uint32_t steps = 0; steps <= node_count(); ++steps) {
    Node* n = node(index);
    if (!n) return 0;
    const std::uint32_t m = match_len(n, data, prefixlen);
    if (m != n->prefixlen) return 0;
    if (n->prefixlen == prefixlen) return (n->flags & kIntermediate) ? 0 : index;
    index = n->child[bit(data, n->prefixlen)];
  }
  return 0;
}

std::uint32_t LpmTrie::longest_match(const void* key) const {
  std::uint32_t limit;
  std::memcpy(&limit, key, 4);
  if (limit > data_size() * 8) return 0;  // the kernel finds nothing for such a key
  const auto* data = static_cast<const std::uint8_t*>(key) + 4;
  std::uint32_t found = 0, index = meta().root;
  for (std::uint32_t steps = 0; steps <= node_count(); ++steps) {
    Node* n = node(index);
    if (!n) break;
    const std::uint32_t m = match_len(n, data, limit);
    if (m == data_size() * 8) {
      found = index;
      break;
    }
    if (m < n->prefixlen) break;
    if (!(n->flags & kIntermediate)) found = index;
    index = n->child[bit(data, n->prefixlen)];
  }
  return found;
}

Result<void> LpmTrie::lookup(const void* key, void* value) const {
  SpinGuard guard(header()->lock);
  Node* n = node(longest_match(key));
  if (!n) return make_error(Errc::kNotFound, "no prefix matches");
  std::memcpy(value, value_of(n), def().value_size);
  return {};
}

void* LpmTrie::lookup_in_place(const void* key) {
  SpinGuard guard(header()->lock);
  Node* n = node(longest_match(key));
  return n ? value_of(n) : nullptr;
}

Result<void> LpmTrie::write(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_update_flags(flags));
  std::uint32_t prefixlen;
  std::memcpy(&prefixlen, key, 4);
  if (prefixlen > data_size() * 8) return make_error(Errc::kInvalid, "prefixlen {} is longer than the key data", prefixlen);
  const auto* data = static_cast<const std::uint8_t*>(key) + 4;
  SpinGuard guard(header()->lock);
  Meta& m = meta();
  // Walk down while the node's prefix is a proper prefix of the new one (trie_update_elem).
  std::uint32_t* slot = &m.root;
  Node* n = nullptr;
  std::uint32_t matched = 0;
  for (std::uint32_t steps = 0; steps <= node_count(); ++steps) {
    n = node(*slot);
    if (!n) break;
    matched = match_len(n, data, prefixlen);
    if (n->prefixlen != matched || n->prefixlen == prefixlen || n->prefixlen == data_size() * 8) break;
    slot = &n->child[bit(data, n->prefixlen)];
  }
  const bool replaces = n && n->prefixlen == matched && n->prefixlen == prefixlen && !(n->flags & kIntermediate);
  BPFVM_TRY(check_existence(flags, replaces));
  if (!replaces && m.count >= def().max_entries) {
    return make_error(Errc::kNoSpace, "the trie is full ({} entries)", def().max_entries);
  }
  // The kernel replaces a node with one made from this key: its data is kept whole, bits past the
  // prefix included, and get_next_key returns them.
  const std::uint32_t fresh = allocate();
  if (!fresh) return make_error(Errc::kNoSpace, "the trie has no free node");
  Node* f = node(fresh);
  f->prefixlen = prefixlen;
  std::memcpy(data_of(f), data, data_size());
  std::memcpy(value_of(f), value, def().value_size);
  if (!n) {  // an empty branch: the new entry goes there
    *slot = fresh;
    ++m.count;
    return {};
  }
  if (n->prefixlen == matched && n->prefixlen == prefixlen) {  // the same prefix: take its place
    f->child[0] = n->child[0];
    f->child[1] = n->child[1];
    if (!replaces) ++m.count;  // an intermediate node becomes an entry
    const std::uint32_t old = *slot;
    *slot = fresh;
    release(old);
    return {};
  }
  ++m.count;
  if (matched == prefixlen) {  // the new prefix is a prefix of the node's: the node goes below it
    f->child[bit(data_of(n), matched)] = *slot;
    *slot = fresh;
    return {};
  }
  // They differ after `matched` bits: an intermediate node of that length joins them.
  const std::uint32_t joint = allocate();
  if (!joint) {
    release(fresh);
    --m.count;
    return make_error(Errc::kNoSpace, "the trie has no free node");
  }
  Node* j = node(joint);
  j->flags |= kIntermediate;
  j->prefixlen = matched;
  std::memcpy(data_of(j), data_of(n), data_size());
  j->child[bit(data, matched)] = fresh;
  j->child[bit(data_of(n), matched)] = *slot;
  *slot = joint;
  return {};
}

Result<void> LpmTrie::update(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  return write(key, value, flags);
}
Result<void> LpmTrie::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  return write(key, value, flags);
}

Result<void> LpmTrie::remove(const void* key) {
  std::uint32_t prefixlen;
  std::memcpy(&prefixlen, key, 4);
  if (prefixlen > data_size() * 8) return make_error(Errc::kInvalid, "prefixlen {} is longer than the key data", prefixlen);
  const auto* data = static_cast<const std::uint8_t*>(key) + 4;
  SpinGuard guard(header()->lock);
  Meta& m = meta();
  // Find the node, its parent and the links to both (trie_delete_elem).
  std::uint32_t* trim = &m.root;
  std::uint32_t* trim_parent = trim;
  Node* parent = nullptr;
  Node* n = nullptr;
  std::uint32_t matched = 0;
  for (std::uint32_t steps = 0; steps <= node_count(); ++steps) {
    n = node(*trim);
    if (!n) break;
    matched = match_len(n, data, prefixlen);
    if (n->prefixlen != matched || n->prefixlen == prefixlen) break;
    parent = n;
    trim_parent = trim;
    trim = &n->child[bit(data, n->prefixlen)];
  }
  if (!n || n->prefixlen != prefixlen || n->prefixlen != matched || (n->flags & kIntermediate)) {
    return make_error(Errc::kNotFound, "no such prefix");
  }
  --m.count;
  if (n->child[0] && n->child[1]) {  // still joins two branches: keep it as an intermediate node
    n->flags |= kIntermediate;
    return {};
  }
  const std::uint32_t index = *trim;
  if (parent && (parent->flags & kIntermediate) && !n->child[0] && !n->child[1]) {
    // A leaf under an intermediate node: both go, the other branch takes the intermediate's place.
    const std::uint32_t joint = *trim_parent;
    *trim_parent = parent->child[0] == index ? parent->child[1] : parent->child[0];
    release(joint);
    release(index);
    return {};
  }
  *trim = n->child[0] ? n->child[0] : n->child[1];
  release(index);
  return {};
}

Result<void> LpmTrie::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  return remove(key);
}
Result<void> LpmTrie::erase_from_program(const void* key) { return remove(key); }

// The kernel's trie_get_next_key: a post-order walk (a longer prefix before the shorter one it extends,
// 0 before 1). From a key in the trie, the next node in post-order; from one that is not (or none), the
// first. Done on the same tree as the kernel's, it gives the same answers.
Result<void> LpmTrie::next_key(const void* key, void* next) const {
  SpinGuard guard(header()->lock);
  std::uint32_t search_root = meta().root;
  if (!node(search_root)) return make_error(Errc::kNotFound, "the trie is empty");
  Node* found = nullptr;
  std::uint32_t prefixlen = 0;
  if (key) std::memcpy(&prefixlen, key, 4);
  if (key && prefixlen <= data_size() * 8) {
    const auto* data = static_cast<const std::uint8_t*>(key) + 4;
    std::vector<Node*> stack;
    Node* n = nullptr;
    std::uint32_t matched = 0;
    for (std::uint32_t index = search_root; stack.size() <= node_count();) {
      n = node(index);
      if (!n) break;
      stack.push_back(n);
      matched = match_len(n, data, prefixlen);
      if (n->prefixlen != matched || n->prefixlen == prefixlen) break;
      index = n->child[bit(data, n->prefixlen)];
    }
    if (n && n->prefixlen == matched && !(n->flags & kIntermediate)) {
      // Climb: the next is the leftmost of the right sibling's subtree, else the first entry above.
      search_root = 0;
      while (stack.size() > 1) {
        Node* child = stack.back();
        Node* parent = stack[stack.size() - 2];
        if (node(parent->child[0]) == child && node(parent->child[1])) {
          search_root = parent->child[1];
          break;
        }
        if (!(parent->flags & kIntermediate)) {
          found = parent;
          break;
        }
        stack.pop_back();
      }
      if (!found && !search_root) return make_error(Errc::kNotFound, "no key after the last");
    }
  }
  if (!found) {
    // The leftmost entry under search_root, deepest first (intermediate nodes always have two children).
    std::uint32_t steps = 0;
    for (Node* n = node(search_root); n && steps++ <= node_count();) {
      if (n->flags & kIntermediate) {
        n = node(n->child[0]);
      } else {
        found = n;
        n = node(n->child[0]) ? node(n->child[0]) : node(n->child[1]);
      }
    }
  }
  if (!found) return make_error(Errc::kNotFound, "the trie is corrupt");
  std::memcpy(next, &found->prefixlen, 4);
  std::memcpy(static_cast<std::uint8_t*>(next) + 4, data_of(found), data_size());
  return {};
}

}  // namespace bpfvm::maps
