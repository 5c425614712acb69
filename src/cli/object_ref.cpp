#include "object_ref.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>

#include "bpfvm/base/file.hpp"

namespace bpfvm::cli {

Result<std::shared_ptr<runtime::Registry>> open_registry(runtime::Runtime& rt) {
  if (const auto& r = rt.registry()) return r;
  if (const auto& why = rt.registry_error()) return *why;
  return make_error(Errc::kNotFound, "no registry under {}", rt.pin_root());
}

void note_empty_listing(const runtime::Runtime& rt, std::string_view what) {
  using runtime::kRootPinRoot;
  if (::geteuid() == 0 || rt.pin_root() == kRootPinRoot || !os::is_directory(std::string(kRootPinRoot))) return;
  fmt::print(stderr, "Note: no {} of yours under {}; root's, under {}, are not visible to other users\n", what,
             rt.pin_root(), kRootPinRoot);
}

namespace {

using runtime::ObjectKind;

std::uint32_t parse_id(std::string_view text, std::string_view what) {
  const std::string s(text);
  char* end = nullptr;
  const unsigned long v = std::strtoul(s.c_str(), &end, 0);
  if (s.empty() || *end || v == 0 || v > UINT32_MAX) throw UsageError{fmt::format("can't parse {} '{}'", what, text)};
  return static_cast<std::uint32_t>(v);
}

ObjectRef parse_ref(Args& args, bool tags, std::string_view what) {
  const std::string_view word = args.next();
  ObjectRef ref;
  if (word.empty()) throw UsageError{fmt::format("expected {}", what)};
  const std::string_view value = args.next();
  if (value.empty()) throw UsageError{fmt::format("'{}' needs a value", word)};
  ref.value = std::string(value);
  if (word == "id") {
    ref.kind = ObjectRef::Kind::kId;
    ref.id = parse_id(value, fmt::format("{} id", what));
  } else if (word == "pinned") {
    ref.kind = ObjectRef::Kind::kPinned;
  } else if (word == "name") {
    ref.kind = ObjectRef::Kind::kName;
  } else if (word == "tag" && tags) {
    ref.kind = ObjectRef::Kind::kTag;
    if (value.size() != 16 || value.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
      throw UsageError{fmt::format("can't parse tag '{}': 8 bytes in hex", value)};
    }
    for (char& c : ref.value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else {
    throw UsageError{fmt::format("expected 'id', 'pinned'{} or 'name', got: '{}'", tags ? ", 'tag'" : "", word)};
  }
  return ref;
}

template <typename T>
Result<std::vector<std::uint32_t>> resolve(runtime::Runtime& rt, const ObjectRef& ref, ObjectKind kind,
                                           std::string_view what) {
  if (ref.kind == ObjectRef::Kind::kPinned) {
    const runtime::AnyObject object = BPFVM_TRY(rt.open_pinned(ref.value));
    auto* p = std::get_if<std::shared_ptr<T>>(&object);
    if (!p) return make_error(Errc::kInvalid, "'{}' is not a {} pin", ref.value, what);
    return std::vector<std::uint32_t>{(*p)->id()};
  }
  const auto registry = BPFVM_TRY(open_registry(rt));
  if (ref.kind == ObjectRef::Kind::kId) {
    if (registry->find(kind, ref.id)) return std::vector<std::uint32_t>{ref.id};
    return make_error(Errc::kNotFound, "get by id ({}): No such file or directory", ref.id);
  }
  std::vector<std::uint32_t> ids;
  for (const auto& r : registry->list(kind)) {
    const std::string key = ref.kind == ObjectRef::Kind::kTag ? r.value("tag", "") : r.value("name", "");
    if (key == ref.value) ids.push_back(r.value("id", 0u));
  }
  if (ids.empty()) {
    return make_error(Errc::kNotFound, "no {} with {} {}", what, ref.kind == ObjectRef::Kind::kTag ? "tag" : "name",
                      ref.value);
  }
  return ids;
}

}  // namespace

std::optional<std::uint32_t> parse_optional_id(Args& args, std::string_view what) {
  if (args.empty()) return std::nullopt;
  if (args.next() != "id") throw UsageError{fmt::format("{} show takes 'id {}_ID'", what, what == "btf" ? "BTF" : "LINK")};
  return parse_id(args.next(), fmt::format("{} id", what));
}

bool is_ref_word(std::string_view word) { return word == "id" || word == "pinned" || word == "tag" || word == "name"; }

ObjectRef parse_prog_ref(Args& args) { return parse_ref(args, true, "PROG"); }
ObjectRef parse_map_ref(Args& args) { return parse_ref(args, false, "MAP"); }

Result<std::vector<std::uint32_t>> resolve_programs(runtime::Runtime& rt, const ObjectRef& ref) {
  return resolve<runtime::Program>(rt, ref, ObjectKind::kProg, "program");
}

Result<std::vector<std::uint32_t>> resolve_maps(runtime::Runtime& rt, const ObjectRef& ref) {
  return resolve<runtime::Map>(rt, ref, ObjectKind::kMap, "map");
}

Result<std::shared_ptr<runtime::Program>> open_program(runtime::Runtime& rt, const ObjectRef& ref) {
  const auto ids = BPFVM_TRY(resolve_programs(rt, ref));
  if (ids.size() > 1) return make_error(Errc::kInvalid, "several programs match '{}': name one by id", ref.value);
  return rt.open_program_by_id(ids[0]);
}

Result<std::shared_ptr<runtime::Map>> open_map(runtime::Runtime& rt, const ObjectRef& ref) {
  const auto ids = BPFVM_TRY(resolve_maps(rt, ref));
  if (ids.size() > 1) return make_error(Errc::kInvalid, "several maps match '{}': name one by id", ref.value);
  return rt.open_map_by_id(ids[0]);
}

std::optional<nlohmann::json> program_record_of(runtime::Runtime& rt, std::uint32_t id) {
  const auto& r = rt.registry();
  return r ? r->find(ObjectKind::kProg, id) : std::nullopt;
}

std::optional<nlohmann::json> map_record_of(runtime::Runtime& rt, std::uint32_t id) {
  const auto& r = rt.registry();
  return r ? r->find(ObjectKind::kMap, id) : std::nullopt;
}

}  // namespace bpfvm::cli
