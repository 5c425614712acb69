// Private to src/runtime: the registry records of objects (runtime/registry.hpp), what another
// process's bpftool-like commands read: a program's info and code, a map's definition and storage.
#pragma once

#include <nlohmann/json.hpp>

#include "bpfvm/runtime/objects.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::runtime {

// A map's definition as records and pins keep it.
nlohmann::json map_def_json(const maps::MapDef& d);
nlohmann::json program_record(const Program& p);

// What a pin and a registry record both keep of a program, to load it again: name, type, expected attach
// type, license, the instructions as loaded, func_info and line_info (maps, BTF and engine each keep in
// its own way). program_request reads them back; a malformed field throws nlohmann::json::exception.
void put_program_load(nlohmann::json& j, const Program& p);
Result<ProgramLoadRequest> program_request(const nlohmann::json& j);
nlohmann::json map_record(const Map& m);
nlohmann::json btf_record(const BtfObject& b);
nlohmann::json link_record(const Link& l);

}  // namespace bpfvm::runtime
