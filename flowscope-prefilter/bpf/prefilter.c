// SPDX-License-Identifier: MIT OR GPL-2.0-only
//
// flowscope-prefilter: the XDP bypass program.
//
// For every frame: parse Ethernet, up to two 802.1Q/802.1ad tags, IPv4 or
// IPv6 (with up to PF_MAX_EXT_HDRS extension headers) and the TCP/UDP
// ports; look the directional 5-tuple (+ outermost VLAN id) up in the map
// of its address family. A hit adds the frame to the entry's per-CPU
// packet/byte counters and drops the frame; anything else (a miss, a frame
// we do not parse, an IP fragment) passes unchanged to the stack.
//
// The key structs below are mirrored byte for byte by `FlowKeyV4` and
// `FlowKeyV6` in flowscope-prefilter/src/key.rs; the _Static_asserts here
// and the const asserts there pin the layout. EVERY multi-byte field is in
// network byte order, exactly the bytes of the packet: the program copies
// them without conversion, and the Rust side writes `to_be_bytes()`.
//
// Build: clang -O2 -g -target bpf -c prefilter.c -o prefilter.o
//        (-DPF_LRU for the LRU map variant; -g gives the BTF the loader needs)

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef PF_MAX_ENTRIES
// Map and program names stay within the kernel's 15 characters
// (BPF_OBJ_NAME_LEN), so bpftool shows them whole and tells them apart.
#define PF_MAX_ENTRIES 65536
#endif

// How many IPv6 extension headers are walked before giving up (PASS).
#define PF_MAX_EXT_HDRS 4

#ifdef PF_LRU
#define PF_MAP_TYPE BPF_MAP_TYPE_LRU_PERCPU_HASH
#else
#define PF_MAP_TYPE BPF_MAP_TYPE_PERCPU_HASH
#endif

#define ETH_HLEN_ 14
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define PROTO_TCP 6
#define PROTO_UDP 17
#define NH_HOPOPTS 0
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_AH 51
#define NH_DSTOPTS 60

struct flow_key_v4 {
	__be32 src_addr;  // network byte order
	__be32 dst_addr;  // network byte order
	__be16 src_port;  // network byte order
	__be16 dst_port;  // network byte order
	__u8 proto;       // IPPROTO_TCP (6) or IPPROTO_UDP (17)
	__u8 pad;         // always 0
	__be16 vlan_id;   // outermost tag's 12-bit VID, network byte order; 0 if untagged
};

struct flow_key_v6 {
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__be16 src_port;
	__be16 dst_port;
	__u8 proto;
	__u8 pad;
	__be16 vlan_id;
};

struct flow_counters {
	__u64 packets;
	__u64 bytes;  // frame bytes seen by XDP: Ethernet header on, no FCS
};

_Static_assert(sizeof(struct flow_key_v4) == 16, "v4 key layout");
_Static_assert(__builtin_offsetof(struct flow_key_v4, proto) == 12, "v4 key layout");
_Static_assert(__builtin_offsetof(struct flow_key_v4, vlan_id) == 14, "v4 key layout");
_Static_assert(sizeof(struct flow_key_v6) == 40, "v6 key layout");
_Static_assert(__builtin_offsetof(struct flow_key_v6, proto) == 36, "v6 key layout");
_Static_assert(__builtin_offsetof(struct flow_key_v6, vlan_id) == 38, "v6 key layout");
_Static_assert(sizeof(struct flow_counters) == 16, "counters layout");

struct {
	__uint(type, PF_MAP_TYPE);
	__uint(max_entries, PF_MAX_ENTRIES);
	__type(key, struct flow_key_v4);
	__type(value, struct flow_counters);
} fs_bypass_v4 SEC(".maps");

struct {
	__uint(type, PF_MAP_TYPE);
	__uint(max_entries, PF_MAX_ENTRIES);
	__type(key, struct flow_key_v6);
	__type(value, struct flow_counters);
} fs_bypass_v6 SEC(".maps");

// A hit: count the frame on this CPU's copy of the value and drop it.
// Per-CPU values are only written by this CPU, so plain adds are safe.
static __always_inline int account(struct flow_counters *c, __u64 len)
{
	c->packets += 1;
	c->bytes += len;
	return XDP_DROP;
}

// Reads the two ports at `l4` into the key (TCP and UDP both start with
// source port, destination port). Returns 0 when they are out of bounds.
static __always_inline int read_ports(void *l4, void *data_end, __be16 *src, __be16 *dst)
{
	__be16 *p = l4;
	if ((void *)(p + 2) > data_end)
		return 0;
	*src = p[0];
	*dst = p[1];
	return 1;
}

SEC("xdp")
int fs_prefilter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = (__u64)(data_end - data);
	void *cur = data;
	__be16 vlan_id = 0;

	if (cur + ETH_HLEN_ > data_end)
		return XDP_PASS;
	__be16 ethertype = *(__be16 *)(cur + 12);
	cur += ETH_HLEN_;

	// Up to two tags (802.1ad outer + 802.1Q inner, or 802.1Q in 802.1Q).
	// A third tag leaves a VLAN EtherType behind and the frame passes.
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (ethertype != bpf_htons(ETH_P_8021Q_) && ethertype != bpf_htons(ETH_P_8021AD_))
			break;
		if (cur + 4 > data_end)
			return XDP_PASS;
		__be16 tci = *(__be16 *)cur;
		if (i == 0)
			vlan_id = tci & bpf_htons(0x0FFF);  // VID bits; PCP and DEI off
		ethertype = *(__be16 *)(cur + 2);
		cur += 4;
	}

	if (ethertype == bpf_htons(ETH_P_IP_)) {
		__u8 *ip = cur;
		if ((void *)(ip + 20) > data_end)
			return XDP_PASS;
		if ((ip[0] >> 4) != 4)
			return XDP_PASS;
		__u32 ihl = (__u32)(ip[0] & 0x0F) * 4;
		if (ihl < 20)
			return XDP_PASS;
		// Any fragment passes: a non-first one has no ports, and dropping
		// only the first would leave userspace reassembly with orphans.
		__be16 frag = *(__be16 *)(ip + 6);
		if (frag & bpf_htons(0x3FFF))  // MF flag or a non-zero offset
			return XDP_PASS;
		__u8 proto = ip[9];
		if (proto != PROTO_TCP && proto != PROTO_UDP)
			return XDP_PASS;
		void *l4 = (void *)ip + ihl;
		if (l4 + 4 > data_end)
			return XDP_PASS;

		struct flow_key_v4 key = {};
		key.src_addr = *(__be32 *)(ip + 12);
		key.dst_addr = *(__be32 *)(ip + 16);
		if (!read_ports(l4, data_end, &key.src_port, &key.dst_port))
			return XDP_PASS;
		key.proto = proto;
		key.pad = 0;
		key.vlan_id = vlan_id;
		struct flow_counters *c = bpf_map_lookup_elem(&fs_bypass_v4, &key);
		if (!c)
			return XDP_PASS;
		return account(c, len);
	}

	if (ethertype == bpf_htons(ETH_P_IPV6_)) {
		__u8 *ip6 = cur;
		if ((void *)(ip6 + 40) > data_end)
			return XDP_PASS;
		if ((ip6[0] >> 4) != 6)
			return XDP_PASS;
		__u8 nh = ip6[6];
		void *next = (void *)ip6 + 40;

#pragma unroll
		for (int i = 0; i < PF_MAX_EXT_HDRS; i++) {
			if (nh == NH_FRAGMENT)
				return XDP_PASS;  // see the IPv4 fragment comment
			if (nh != NH_HOPOPTS && nh != NH_ROUTING && nh != NH_DSTOPTS && nh != NH_AH)
				break;
			__u8 *ext = next;
			if ((void *)(ext + 2) > data_end)
				return XDP_PASS;
			__u32 ext_len;
			if (nh == NH_AH)
				ext_len = ((__u32)ext[1] + 2) * 4;  // RFC 4302: 4-octet units, minus 2
			else
				ext_len = ((__u32)ext[1] + 1) * 8;  // RFC 8200: 8-octet units, minus 1
			nh = ext[0];
			next += ext_len;
		}
		if (nh != PROTO_TCP && nh != PROTO_UDP)
			return XDP_PASS;  // other protocols, or more extension headers than walked

		struct flow_key_v6 key = {};
		__builtin_memcpy(key.src_addr, ip6 + 8, 16);
		__builtin_memcpy(key.dst_addr, ip6 + 24, 16);
		if (!read_ports(next, data_end, &key.src_port, &key.dst_port))
			return XDP_PASS;
		key.proto = nh;
		key.pad = 0;
		key.vlan_id = vlan_id;
		struct flow_counters *c = bpf_map_lookup_elem(&fs_bypass_v6, &key);
		if (!c)
			return XDP_PASS;
		return account(c, len);
	}

	return XDP_PASS;
}

// GPL is needed by nothing used here; "Dual MIT/GPL" keeps the kernel's
// license check satisfied should a GPL-only helper ever be added.
char LICENSE[] SEC("license") = "Dual MIT/GPL";
