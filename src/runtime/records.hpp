// Private to src/runtime: the registry records of objects (runtime/registry.hpp), what another
// process's bpftool-like commands read: a program's info and code, a map's definition and storage.
#pragma once

#include <nlohmann/json.hpp>

#include "bpfvm/runtime/objects.hpp"

namespace bpfvm::runtime {

// A map's definition as records and pins keep it.
nlohmann::json map_def_json(const maps::MapDef& d);
nlohmann::json program_record(const Program& p);
nlohmann::json map_record(const Map& m);
nlohmann::json btf_record(const BtfObject& b);
nlohmann::json link_record(const Link& l);

}  // namespace bpfvm::runtime
