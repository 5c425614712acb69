// Reading the running kernel's verifier logs where the kernel is the tests' oracle.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace bpfvm::test {

// The helper a verifier log says the program's type may not call ("program of this type cannot use
// helper bpf_NAME#ID"), or nullopt. Where bpfvm's table (upstream Linux's func_protos) offers that
// helper to the type, the running kernel's build withholds it (this machine's 6.18.44 withholds
// bpf_xdp_adjust_meta from XDP): its refusal says nothing of the program, which is then not judged.
std::optional<std::uint32_t> helper_withheld(std::string_view log);

}  // namespace bpfvm::test
