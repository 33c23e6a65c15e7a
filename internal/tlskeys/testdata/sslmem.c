/*
 * sslmem: does TLS handshakes in memory (a client and a server SSL over a
 * BIO pair) with the OpenSSL it is linked with, and prints the raw memory
 * of the client's SSL, SSL_SESSION and SSL_CIPHER structs next to the
 * values the public API and the library's own key log give for them.
 * TestOffsetsOfInstalledOpenSSL finds the struct offsets in that memory
 * and compares them with the offsets table. Built by the test:
 *
 *   cc -o sslmem sslmem.c -lssl -lcrypto
 *   sslmem CERT KEY 12|13 [TLS 1.3 ciphersuite]
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static void keylog(const SSL *s, const char *line)
{
	(void)s;
	printf("keylog %s\n", line);
}

static void hex(const char *name, const void *p, size_t n)
{
	const unsigned char *b = p;
	printf("%s ", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: sslmem CERT KEY 12|13 [ciphersuite]\n");
		return 2;
	}
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	if (!sctx || !cctx || SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	int v = atoi(argv[3]) == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
	SSL_CTX_set_min_proto_version(cctx, v);
	SSL_CTX_set_max_proto_version(cctx, v);
	if (argc > 4 && SSL_CTX_set_ciphersuites(cctx, argv[4]) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_keylog_callback(cctx, keylog);

	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	BIO *b1, *b2;
	if (!c || !s || BIO_new_bio_pair(&b1, 0, &b2, 0) != 1)
		return 1;
	SSL_set_bio(c, b1, b1);
	SSL_set_bio(s, b2, b2);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	int cdone = 0, sdone = 0;
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		if (!cdone)
			cdone = SSL_do_handshake(c) == 1;
		if (!sdone)
			sdone = SSL_do_handshake(s) == 1;
	}
	if (!cdone || !sdone) {
		fprintf(stderr, "handshake failed\n");
		ERR_print_errors_fp(stderr);
		return 1;
	}
	char buf[16];
	if (SSL_write(s, "hi", 2) != 2 || SSL_read(c, buf, sizeof buf) != 2) {
		fprintf(stderr, "data exchange failed\n");
		return 1;
	}

	printf("openssl %s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("version %d\n", SSL_version(c));
	hex("ssl", c, malloc_usable_size(c));
	SSL_SESSION *sess = SSL_get_session(c);
	printf("session_ptr %lx\n", (unsigned long)sess);
	hex("session", sess, malloc_usable_size(sess));
	const SSL_CIPHER *ciph = SSL_SESSION_get0_cipher(sess);
	printf("cipher_ptr %lx\n", (unsigned long)ciph);
	hex("cipher", ciph, 64);
	printf("cipher_id %u\n", (unsigned)SSL_CIPHER_get_id(ciph));
	unsigned char cr[SSL3_RANDOM_SIZE];
	SSL_get_client_random(c, cr, sizeof cr);
	hex("client_random", cr, sizeof cr);
	unsigned char mk[SSL_MAX_MASTER_KEY_LENGTH];
	size_t mkl = SSL_SESSION_get_master_key(sess, mk, sizeof mk);
	hex("master_key", mk, mkl);
	return 0;
}
