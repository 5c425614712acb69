// Private to src/cli: the process that owns an object (its registry record's owner), as bpftool shows
// the processes that hold one: "pids comm(pid)".
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "json_output.hpp"

namespace bpfvm::cli {

// "trace(1234)", or "" when the owner is gone (a pinned object outlives it).
std::string owner_text(const nlohmann::json& record);
// [{"pid": 1234, "comm": "bpfvm"}] or [].
ojson owner_json(const nlohmann::json& record);
// The "\tpinned PATH" and "\tpids comm(pid)" lines of a show listing.
void print_pins_and_owner(const nlohmann::json& record);

}  // namespace bpfvm::cli
