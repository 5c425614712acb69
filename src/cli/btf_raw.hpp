// Private to src/cli: `btf dump ... format raw`, one type per line (members, parameters, enumerators
// and section variables indented below it) in bpftool's layout, and `format c`, the types as C.
#pragma once

#include <string>

#include "bpfvm/base/result.hpp"
#include "bpfvm/obj/btf.hpp"
#include "json_output.hpp"

namespace bpfvm::cli {

std::string btf_raw(const obj::Btf& btf);
ojson btf_raw_json(const obj::Btf& btf);  // -j: {"types": [...]}
Result<std::string> btf_c(const obj::Btf& btf);

}  // namespace bpfvm::cli
