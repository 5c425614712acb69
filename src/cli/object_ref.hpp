// Private to src/cli: naming objects as bpftool does, across processes.
//   PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
//   MAP  := { id MAP_ID | pinned FILE | name MAP_NAME }
// Ids, names and tags are looked up in the system-wide registry (runtime/registry.hpp), so they name
// objects any bpfvm process loaded; a pinned FILE is opened as a pin.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpfvm/runtime/runtime.hpp"
#include "command.hpp"

namespace bpfvm::cli {

struct ObjectRef {
  enum class Kind { kId, kPinned, kTag, kName } kind = Kind::kId;
  std::string value;
  std::uint32_t id = 0;  // kId
};

// An optional "id N" (btf show, link show): none when `args` is empty; a UsageError when malformed.
std::optional<std::uint32_t> parse_optional_id(Args& args, std::string_view what);

// Whether `word` starts a PROG or MAP.
bool is_ref_word(std::string_view word);
// Reads PROG / MAP from `args`; a UsageError when it is malformed.
ObjectRef parse_prog_ref(Args& args);
ObjectRef parse_map_ref(Args& args);

// The registry of every bpfvm process of this pin root, or why it cannot be used (another user's pin
// root): listings report that instead of showing nothing.
Result<std::shared_ptr<runtime::Registry>> open_registry(runtime::Runtime& rt);
// After a listing of an ordinary user's objects that found none: says on stderr that root's objects
// (the default root's) exist but are not this user's to see, so that an empty list is not mistaken.
void note_empty_listing(const runtime::Runtime& rt, std::string_view what);

// The ids a reference names (a name or tag may name several); an error when it names none.
Result<std::vector<std::uint32_t>> resolve_programs(runtime::Runtime& rt, const ObjectRef& ref);
Result<std::vector<std::uint32_t>> resolve_maps(runtime::Runtime& rt, const ObjectRef& ref);
// The one program / map a reference names, opened in this process (an error when it names several).
Result<std::shared_ptr<runtime::Program>> open_program(runtime::Runtime& rt, const ObjectRef& ref);
Result<std::shared_ptr<runtime::Map>> open_map(runtime::Runtime& rt, const ObjectRef& ref);

// The registry record of a program / map this process opened or another registered.
std::optional<nlohmann::json> program_record_of(runtime::Runtime& rt, std::uint32_t id);
std::optional<nlohmann::json> map_record_of(runtime::Runtime& rt, std::uint32_t id);

}  // namespace bpfvm::cli
