// Global data of every kind: .data, .rodata, .bss, string literals (.rodata.str1.1) and custom
// .data.* / .rodata.* sections. Each program returns a value computed from them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int counter = 40;                                   // .data
const volatile int scale = 3;                       // .rodata (frozen)
int zeroed[4];                                      // .bss
int custom_rw SEC(".data.custom") = 7;              // custom data section
const int custom_ro[2] SEC(".rodata.custom") = {100, 200};

static __attribute__((noinline)) int text_len(const char *s) {
  int n = 0;
  for (int i = 0; i < 32 && s[i]; i++) n++;
  return n;
}

SEC("socket")
int use_data(struct __sk_buff *skb) {
  counter += 2;                     // 42 after the first run
  return counter;
}

SEC("socket")
int use_rodata(struct __sk_buff *skb) { return scale * 10 + custom_ro[1]; }  // 230

SEC("socket")
int use_bss(struct __sk_buff *skb) {
  zeroed[1] += 5;
  return zeroed[0] + zeroed[1] + custom_rw;  // 12 after the first run
}

SEC("socket")
int use_string(struct __sk_buff *skb) {
  const char *msg = "hello, bpfvm";  // .rodata.str1.1
  return text_len(msg);              // 12
}

// String literals whose address escapes: clang 14 puts them in the mergeable .rodata.str1.1.
static __attribute__((noinline)) int first_char(const char *s) { return s[0]; }

SEC("socket")
int use_str_table(struct __sk_buff *skb) {
  return first_char((skb->len & 1) ? "beta" : "alpha");  // 'a' (97) for an even length, 'b' (98) for odd
}

char LICENSE[] SEC("license") = "GPL";
