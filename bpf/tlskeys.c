//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TLS session secrets from processes that use OpenSSL (libssl 1.1.1, 3.x).
 *
 * A uprobe on SSL_do_handshake remembers the SSL pointer of the call (per
 * thread); the uretprobe, when the handshake is done (SSL_connect and
 * SSL_accept call it too), reads the connection's client random and
 * secrets out of OpenSSL's structs and sends them through a ring buffer,
 * once per connection. Uprobes on the entry of SSL_read, SSL_write,
 * SSL_read_ex and SSL_write_ex catch the handshakes done inside them
 * (SSL_set_connect_state, then SSL_write); they cost one map lookup per
 * call once a connection's secrets are sent, and no uretprobe. Uprobes on
 * SSL_shutdown and SSL_free do the same on entry, for the programs that
 * drive OpenSSL through other paths (BIO_f_ssl calls OpenSSL's internal
 * read and write functions): their secrets come late, when the connection
 * ends, but they come.
 *
 * Secrets are sent once the handshake has made them: TLS 1.3 needs both
 * application traffic secrets (the client's is the last one derived),
 * TLS 1.2 the session's master key. Before SSL_do_handshake returned 1,
 * the read and write hooks only take an SSL object's first connection: an
 * object reused for a new handshake (SSL_clear) still holds the TLS 1.3
 * secrets of its previous connection until the new ones are derived.
 *
 *   TLS 1.2 and older: the session's master key (CLIENT_RANDOM).
 *   TLS 1.3: handshake_secret and handshake_traffic_hash (user space derives
 *   the client and server handshake traffic secrets from them, as OpenSSL
 *   does), the client and server application traffic secrets and the
 *   exporter master secret.
 *
 * The offsets of the fields in OpenSSL's structs differ between OpenSSL
 * versions: they are data (a table in Go, internal/tlskeys), set in the
 * read-only `off` before the programs are loaded. Only kernel types (the
 * uprobe's pt_regs) go through BTF/CO-RE.
 */
#include "types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define TLS1_3_VERSION 0x0304
#define SECRET_SIZE 64     /* EVP_MAX_MD_SIZE */
#define MASTER_KEY_SIZE 48 /* SSL_MAX_MASTER_KEY_LENGTH */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Where one OpenSSL version keeps what we read (bytes from the start of
 * the struct named in the comment). */
struct offsets {
	__u32 version;          /* int, in SSL (SSL_CONNECTION from 3.2 on) */
	__u32 s3;               /* with s3_pointer: struct ssl3_state_st * in SSL */
	__u32 client_random;    /* u8[32], in SSL, or in *s3 with s3_pointer */
	__u32 session;          /* SSL_SESSION * in SSL */
	__u32 master_key_length; /* size_t in SSL_SESSION */
	__u32 master_key;       /* u8[48] in SSL_SESSION */
	__u32 cipher;           /* const SSL_CIPHER * in SSL_SESSION */
	__u32 cipher_id;        /* uint32 in SSL_CIPHER */
	__u32 handshake_secret; /* u8[64] in SSL ... */
	__u32 handshake_traffic_hash;
	__u32 client_app_traffic_secret;
	__u32 server_app_traffic_secret;
	__u32 exporter_master_secret;
	__u32 s3_pointer; /* 1: client_random is read through the s3 pointer (1.1.1) */
};

/* Set by the loader (rodata). */
volatile const struct offsets off;
/* Filters: a process (tgid); a cgroup v2 (its id, the inode of its
 * directory) and its descendants. 0 = everything. */
volatile const __u32 target_tgid;
volatile const __u64 target_cgroup;

#define MAX_CGROUP_DEPTH 16

/* One connection's secrets, sent once. */
struct event {
	__u32 pid; /* tgid */
	__u32 tid;
	__u64 cgroup;
	__u64 ssl;
	__s32 version;
	__u32 cipher_id;
	__u64 master_key_length;
	__u8 comm[16];
	__u8 client_random[32];
	__u8 master_key[MASTER_KEY_SIZE];
	__u8 handshake_secret[SECRET_SIZE];
	__u8 handshake_traffic_hash[SECRET_SIZE];
	__u8 client_app_traffic_secret[SECRET_SIZE];
	__u8 server_app_traffic_secret[SECRET_SIZE];
	__u8 exporter_master_secret[SECRET_SIZE];
};

/* Keeps struct event in the BTF for bpf2go (-type event). */
const struct event *unused_event __attribute__((unused));

struct random {
	__u64 w[4];
};

struct conn {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};

/* Counters, read by user space. */
enum {
	STAT_EVENTS = 0,  /* events sent */
	STAT_LOST = 1,    /* ring buffer full: event lost */
	STAT_FAULTS = 2,  /* user memory not readable (wrong offsets, freed SSL) */
	STAT_NOT_READY = 3, /* call succeeded but secrets not (yet) there */
	STAT_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* SSL pointer of the call in progress, per thread (LRU: a thread killed
 * inside a call leaves its entry behind). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} calls SEC(".maps");

/* Client random of the connection whose secrets were sent, per SSL. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn);
	__type(value, struct random);
} sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int wanted(__u64 id)
{
	if (target_tgid && (__u32)(id >> 32) != target_tgid)
		return 0;
	if (!target_cgroup)
		return 1;
	/* The task's cgroup or one of its ancestors (level 0 is the root). */
	for (int level = 0; level < MAX_CGROUP_DEPTH; level++) {
		__u64 cg = bpf_get_current_ancestor_cgroup_id(level);
		if (cg == target_cgroup)
			return 1;
		if (!cg)
			break;
	}
	return 0;
}

static __always_inline int nonzero(const __u8 *p)
{
	const __u64 *w = (const __u64 *)p;
	return (w[0] | w[1]) != 0;
}

static __always_inline int read_secret(__u8 *dst, __u64 ssl, __u32 offset)
{
	return bpf_probe_read_user(dst, SECRET_SIZE, (const void *)(ssl + offset));
}

static __always_inline void capture(__u64 ssl, __u64 id)
{
	__s32 version = 0;
	if (bpf_probe_read_user(&version, sizeof(version), (const void *)(ssl + off.version))) {
		count(STAT_FAULTS);
		return;
	}
	int tls13 = version == TLS1_3_VERSION;
	/* SSL 3.0 to TLS 1.2, DTLS 1.0 and 1.2: a master secret. */
	int legacy = (version >= 0x0300 && version <= 0x0303) || version == 0xfeff || version == 0xfefd;
	if (!tls13 && !legacy)
		return;

	__u64 cr_addr = ssl + off.client_random;
	if (off.s3_pointer) {
		__u64 s3 = 0;
		if (bpf_probe_read_user(&s3, sizeof(s3), (const void *)(ssl + off.s3)) || !s3) {
			count(STAT_FAULTS);
			return;
		}
		cr_addr = s3 + off.client_random;
	}
	struct random cr = {};
	if (bpf_probe_read_user(&cr, sizeof(cr), (const void *)cr_addr)) {
		count(STAT_FAULTS);
		return;
	}
	if (!(cr.w[0] | cr.w[1] | cr.w[2] | cr.w[3]))
		return;
	struct conn key = {.tgid = (__u32)(id >> 32), .ssl = ssl};
	struct random *seen = bpf_map_lookup_elem(&sent, &key);
	if (seen && seen->w[0] == cr.w[0] && seen->w[1] == cr.w[1] && seen->w[2] == cr.w[2] &&
	    seen->w[3] == cr.w[3])
		return;

	__u64 session = 0;
	if (bpf_probe_read_user(&session, sizeof(session), (const void *)(ssl + off.session)) || !session) {
		count(STAT_NOT_READY);
		return;
	}

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = (__u32)(id >> 32);
	e->tid = (__u32)id;
	e->cgroup = bpf_get_current_cgroup_id();
	e->ssl = ssl;
	e->version = version;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->client_random, &cr, sizeof(cr));

	int ready = 0, fault = 0;
	if (tls13) {
		__u64 cipher = 0;
		fault |= bpf_probe_read_user(&cipher, sizeof(cipher), (const void *)(session + off.cipher));
		if (cipher)
			fault |= bpf_probe_read_user(&e->cipher_id, sizeof(e->cipher_id), (const void *)(cipher + off.cipher_id));
		fault |= read_secret(e->handshake_secret, ssl, off.handshake_secret);
		fault |= read_secret(e->handshake_traffic_hash, ssl, off.handshake_traffic_hash);
		fault |= read_secret(e->client_app_traffic_secret, ssl, off.client_app_traffic_secret);
		fault |= read_secret(e->server_app_traffic_secret, ssl, off.server_app_traffic_secret);
		fault |= read_secret(e->exporter_master_secret, ssl, off.exporter_master_secret);
		ready = cipher && nonzero(e->handshake_secret) && nonzero(e->handshake_traffic_hash) &&
			nonzero(e->client_app_traffic_secret) && nonzero(e->server_app_traffic_secret);
	} else {
		fault |= bpf_probe_read_user(&e->master_key_length, sizeof(e->master_key_length),
					     (const void *)(session + off.master_key_length));
		fault |= bpf_probe_read_user(e->master_key, MASTER_KEY_SIZE, (const void *)(session + off.master_key));
		ready = e->master_key_length > 0 && e->master_key_length <= MASTER_KEY_SIZE;
	}
	if (fault || !ready) {
		bpf_ringbuf_discard(e, 0);
		count(fault ? STAT_FAULTS : STAT_NOT_READY);
		return;
	}
	bpf_ringbuf_submit(e, 0);
	bpf_map_update_elem(&sent, &key, &cr, BPF_ANY);
	count(STAT_EVENTS);
}

/* BPF_KPROBE: the register layout of a uprobe is the same (libbpf 1.1 has no BPF_UPROBE). */
SEC("uprobe")
int BPF_KPROBE(ssl_enter, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!ssl || !wanted(id))
		return 0;
	__u64 p = (__u64)ssl;
	bpf_map_update_elem(&calls, &id, &p, BPF_ANY);
	return 0;
}

/* Return of SSL_do_handshake: 1 = done. */
SEC("uretprobe")
int BPF_KRETPROBE(ssl_exit, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *p = bpf_map_lookup_elem(&calls, &id);
	if (!p)
		return 0;
	__u64 ssl = *p;
	bpf_map_delete_elem(&calls, &id);
	if (ret == 1)
		capture(ssl, id);
	return 0;
}

/* Entry of SSL_read, SSL_write, SSL_read_ex, SSL_write_ex: one lookup when
 * the SSL object's connection was sent (or the object is reused, see
 * above), else a look at its structs. */
SEC("uprobe")
int BPF_KPROBE(ssl_rw, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!ssl)
		return 0;
	struct conn key = {.tgid = (__u32)(id >> 32), .ssl = (__u64)ssl};
	if (bpf_map_lookup_elem(&sent, &key) || !wanted(id))
		return 0;
	capture((__u64)ssl, id);
	return 0;
}

/* Entry of SSL_shutdown and SSL_free: a last chance for connections that
 * never went through the hooks above; SSL_free also forgets the SSL. */
SEC("uprobe")
int BPF_KPROBE(ssl_end, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!ssl || !wanted(id))
		return 0;
	capture((__u64)ssl, id);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_free, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!ssl || !wanted(id))
		return 0;
	capture((__u64)ssl, id);
	struct conn key = {.tgid = (__u32)(id >> 32), .ssl = (__u64)ssl};
	bpf_map_delete_elem(&sent, &key);
	return 0;
}
