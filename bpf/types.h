/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few kernel types the TLS key programs need, instead of a 5 MB vmlinux.h.
 * They carry preserve_access_index, so that their field offsets are CO-RE
 * relocations that the loader resolves against the running kernel's BTF
 * (/sys/kernel/btf/vmlinux). User-space structs (OpenSSL's) never come from
 * here: their offsets are data, given to the programs at load time.
 */
#ifndef FLOWLAKE_BPF_TYPES_H
#define FLOWLAKE_BPF_TYPES_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

#if defined(__TARGET_ARCH_x86)
/* The kernel's x86-64 struct pt_regs (the uprobe context). */
#define __VMLINUX_H__ /* bpf_tracing.h: kernel register names (di, ax, ...) */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
} __attribute__((preserve_access_index));
#elif defined(__TARGET_ARCH_arm64)
/* arm64: bpf_tracing.h reads the registers through struct user_pt_regs. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));
struct pt_regs {
	struct user_pt_regs user_regs;
} __attribute__((preserve_access_index));
#else
#error "flowlake's TLS key programs are built for amd64 (__TARGET_ARCH_x86) and arm64 (__TARGET_ARCH_arm64)"
#endif

#endif
