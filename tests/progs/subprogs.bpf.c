// Subprograms: a global function in .text, static functions (in .text and called from two programs in
// one section) and nested calls.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int square(int x) { return x * x; }
static __attribute__((noinline)) int sum_squares(int a, int b) { return square(a) + square(b); }

__attribute__((noinline)) int global_add(int a, int b) { return a + b; }  // a global subprogram

SEC("socket")
int first(struct __sk_buff *skb) { return sum_squares(3, 4); }  // 25

SEC("socket")
int second(struct __sk_buff *skb) { return global_add(square(5), 2); }  // 27

char LICENSE[] SEC("license") = "GPL";
