// bpf_trace_printk through libbpf's bpf_printk, with the conversions the kernel supports.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int hello(struct __sk_buff *skb) {
  return bpf_printk("Hello, World! len=%d %s", skb->len, "from bpf");
}

SEC("socket")
int conversions(struct __sk_buff *skb) {
  long n = 0;
  n += bpf_printk("%u %x %X", 4000000000u, 255, 3054);
  n += bpf_printk("%lld %llx %c", -5ll, 0x1234abcdll, 'z');
  n += bpf_printk("%5d|%-4u|%05x|%%", 42, 7, 0xab);
  n += bpf_printk("%hhd %hu", 300, 70000);  // no h modifiers: -EINVAL (-22)
  return n;
}

// Four conversions but three arguments: -EINVAL. An unknown conversion: -EINVAL.
SEC("socket")
int bad_formats(struct __sk_buff *skb) {
  static const char four[] = "%d %d %d %d";
  static const char unknown[] = "%q";
  long a = bpf_trace_printk(four, sizeof(four), 1, 2, 3);
  long b = bpf_trace_printk(unknown, sizeof(unknown), 1);
  return (a == -22) * 10 + (b == -22);
}

char LICENSE[] SEC("license") = "GPL";
