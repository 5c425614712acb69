/* Debian's libasmjit.a is compiled as position-independent executable code, not shared-library code: one
 * of its objects reaches libc's `stderr` with a PC-relative relocation, which a shared library cannot
 * have for a symbol of another library. The agent library defines its own hidden `stderr` (that
 * relocation then resolves inside the library) and points it at libc's before anything else in the
 * library runs. Nothing else in the agent differs: every use of stderr in it goes to the real one. */
#define _GNU_SOURCE
#include <dlfcn.h>

struct _IO_FILE;
__attribute__((visibility("hidden"))) struct _IO_FILE* stderr;

__attribute__((constructor(101))) static void bpfvm_agent_bind_stderr(void) {
  struct _IO_FILE** real = (struct _IO_FILE**)dlsym(RTLD_NEXT, "stderr");
  if (real) stderr = *real;
}
