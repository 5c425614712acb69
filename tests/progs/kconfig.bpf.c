// __kconfig externs, as libbpf-tools use them: the kernel version, a number, a bool, a tristate the
// target lacks (weak: 0) and a string.
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern enum libbpf_tristate CONFIG_BPFVM_NOT_THERE __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[8] __kconfig __weak;

SEC("socket")
int kernel_major(struct __sk_buff *skb) { return LINUX_KERNEL_VERSION >> 16; }

SEC("socket")
int config_mix(struct __sk_buff *skb) {
  return CONFIG_HZ + CONFIG_BPF_SYSCALL * 1000 + CONFIG_BPFVM_NOT_THERE * 10000 + CONFIG_DEFAULT_HOSTNAME[0];
}

char LICENSE[] SEC("license") = "GPL";
