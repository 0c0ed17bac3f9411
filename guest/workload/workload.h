/*
 * Ferry test-guest workload: shared declarations.
 *
 * One static program (gcc -static -O2 -pthread) that lets tests judge a live migration
 * from inside the guest: a counter that only grows while the guest runs, a boot id,
 * test memory whose every page can be verified while a writer keeps dirtying it, and
 * verifiable records appended to the guest's disk. HTTP on port 80, TCP echo on port 7.
 */
#ifndef FERRY_WORKLOAD_H
#define FERRY_WORKLOAD_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>

#define PAGE_BYTES 4096u
#define PAGE_WORDS (PAGE_BYTES / 8u)

/* ---- common.c ---- */
extern char g_boot_id[33];          /* 32 hex digits drawn from /dev/urandom at start */
extern unsigned char g_boot_raw[16];
uint64_t counter_value(void);
void *counter_thread(void *arg);
uint64_t mono_ns(void);
uint64_t real_ns(void);
void sleep_ns(uint64_t ns);
/* A 64-bit multiply-xorshift hash over words; never 0 for all-zero input (seeded). */
uint64_t hash_words(uint64_t h, const uint64_t *w, size_t n);
/* Fills n words with a xorshift64* stream derived from seed, so content depends on it. */
void fill_words(uint64_t *w, size_t n, uint64_t seed);
/* 0 on success, else the pthread_create error (already reported on stderr). */
int start_thread(void *(*fn)(void *), void *arg, size_t stack_bytes);
void boot_id_init(void);

/* ---- memtest.c ---- */
int mem_init(unsigned mib);
unsigned mem_mib(void);
void mem_set_rate(unsigned mbps);
unsigned mem_rate(void);
uint64_t mem_rewritten(void);
/* 0 when every page is intact; otherwise writes a description into msg. */
int mem_verify(char *msg, size_t cap);
void *mem_writer_thread(void *arg);

/* ---- disk.c ---- */
/* 0 when the disk is usable (records continue after the last valid one found). */
int disk_init(const char *path, char *msg, size_t cap);
int disk_present(void);
/* 0 when every record written so far is intact; otherwise writes a description into msg. */
int disk_verify(char *msg, size_t cap);
void disk_stats(uint64_t *next_seq, uint64_t *written, uint64_t *errors, uint64_t *slots);
void *disk_writer_thread(void *arg);

/* ---- net.c ---- */
int listen_tcp(int port);
void *http_accept_thread(void *arg);
void *echo_accept_thread(void *arg);

#endif
