// Extensions (freplace) of freplace_target.bpf.c's functions, each judged against the program it
// extends as the kernel judges it (bpf_check_attach_target, btf_check_type_match, then the target
// type's rules from the replaced function's entry). The kernel here refuses every extension before its
// verifier (EPERM, as fentry), so the expected verdicts come from the kernel's source and selftests
// (fexit_bpf2bpf: func_replace_return_code, func_replace_unreliable...).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pair {
  int a, b;
};

// Accepted: the replaced function's arguments, the target type's context and helpers.
SEC("freplace/handle")
int good_handle(struct __sk_buff* skb, int x) { return skb->len * 2 + x; }

SEC("freplace/handle")
int handle_calls_tc_helper(struct __sk_buff* skb, int x) {
  char b[4];
  return bpf_skb_load_bytes(skb, 0, b, sizeof b) + x;
}

SEC("freplace/take_pair")
int pair_checked(struct pair* p, long n) { return p ? p->b + (int)n : 0; }

SEC("freplace/connect4")
int connect4_returns_1(struct bpf_sock_addr* ctx) { return 1; }

// Refused by the target type's rules.
SEC("freplace/handle")
int handle_writes_len(struct __sk_buff* skb, int x) {
  skb->len = x;  // a tc program may not write len
  return 0;
}

SEC("freplace/handle")
int handle_calls_kprobe_helper(struct __sk_buff* skb, int x) { return bpf_override_return((void*)skb, x); }

SEC("freplace/connect4")
int connect4_returns_255(struct bpf_sock_addr* ctx) { return 255; }  // cgroup/connect4 returns 0 or 1

// Refused: the replaced function's argument may be NULL, and is a struct of 8 bytes.
SEC("freplace/take_pair")
int pair_unchecked(struct pair* p, long n) { return p->a + (int)n; }

SEC("freplace/take_pair")
int pair_past_end(struct pair* p, long n) { return p ? ((int*)p)[2] : 0; }

// Refused before verification: prototypes that do not match the replaced function's.
SEC("freplace/handle")
int handle_three_args(struct __sk_buff* skb, int x, int y) { return x + y; }

SEC("freplace/handle")
int handle_long_arg(struct __sk_buff* skb, long x) { return (int)x; }

SEC("freplace/handle")
int handle_pointer_arg(struct __sk_buff* skb, int* x) { return 0; }

SEC("freplace/handle")
int handle_other_struct(struct xdp_md* xdp, int x) { return x; }

SEC("freplace/hidden")
int replaces_static(int x) { return x; }

SEC("freplace/no_such_function")
int no_target(int x) { return x; }

char LICENSE[] SEC("license") = "GPL";
