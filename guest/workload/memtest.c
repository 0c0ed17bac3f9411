/*
 * Test memory: N MiB of 4 KiB pages, each holding its index, a generation number, a
 * checksum and content derived from both. A writer rewrites pages at a chosen rate with
 * new generations; /verify checks every page against its index, against the generation
 * the writer last gave it (kept in a separate array, itself in guest RAM), and against its
 * checksum. A page a migration forgot to resend still carries a valid checksum but an old
 * generation, so verify catches lost dirty pages as well as torn or zeroed ones.
 *
 * Verify and writer never race: each page has a one-byte spinlock held while it is
 * rewritten or checked.
 */
#include "workload.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

enum { W_INDEX = 0, W_GEN = 1, W_SUM = 2, W_BODY = 3 };

static uint64_t *g_pages;   /* npages * PAGE_WORDS words */
static uint64_t *g_gens;    /* the generation each page must hold */
static uint8_t *g_locks;
static size_t g_npages;
static unsigned g_mib;
static unsigned g_rate;     /* MiB/s of page rewrites; 0 = idle */
static uint64_t g_rewritten;

static void lock_page(size_t i) {
  while (__atomic_test_and_set(&g_locks[i], __ATOMIC_ACQUIRE)) sched_yield();
}

static void unlock_page(size_t i) { __atomic_clear(&g_locks[i], __ATOMIC_RELEASE); }

static uint64_t page_sum(const uint64_t *p) {
  uint64_t h = hash_words(0, p, W_SUM);
  return hash_words(h, p + W_BODY, PAGE_WORDS - W_BODY);
}

/* Caller holds the page's lock. */
static void write_page(size_t i, uint64_t gen) {
  uint64_t *p = g_pages + i * PAGE_WORDS;
  p[W_INDEX] = i;
  p[W_GEN] = gen;
  fill_words(p + W_BODY, PAGE_WORDS - W_BODY, (i << 24) ^ gen);
  p[W_SUM] = page_sum(p);
  g_gens[i] = gen;
}

/* Keeps 48 MiB for the kernel and the rest of user space so a large request cannot OOM the guest. */
static unsigned clamp_mib(unsigned mib) {
  struct sysinfo si;
  if (sysinfo(&si) != 0) return mib;
  uint64_t free_mib = (uint64_t)si.freeram * si.mem_unit >> 20;
  uint64_t room = free_mib > 48 ? free_mib - 48 : 1;
  return mib > room ? (unsigned)room : mib;
}

int mem_init(unsigned mib) {
  unsigned want = mib ? mib : 1;
  g_mib = clamp_mib(want);
  if (g_mib != want) fprintf(stderr, "ferry-guest: testmem %u MiB does not fit; using %u MiB\n", want, g_mib);
  g_npages = (size_t)g_mib * (1u << 20) / PAGE_BYTES;
  g_pages = mmap(NULL, g_npages * PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  g_gens = calloc(g_npages, sizeof *g_gens);
  g_locks = calloc(g_npages, 1);
  if (g_pages == MAP_FAILED || !g_gens || !g_locks) return -1;
  for (size_t i = 0; i < g_npages; i++) write_page(i, 1);
  return 0;
}

unsigned mem_mib(void) { return g_mib; }
void mem_set_rate(unsigned mbps) { __atomic_store_n(&g_rate, mbps, __ATOMIC_RELAXED); }
unsigned mem_rate(void) { return __atomic_load_n(&g_rate, __ATOMIC_RELAXED); }
uint64_t mem_rewritten(void) { return __atomic_load_n(&g_rewritten, __ATOMIC_RELAXED); }

/* Describes what is wrong with page i, or returns 0 when it is intact. Caller holds the lock. */
static int check_page(size_t i, char *out, size_t cap) {
  const uint64_t *p = g_pages + i * PAGE_WORDS;
  uint64_t sum = page_sum(p);
  if (p[W_INDEX] == i && p[W_GEN] == g_gens[i] && p[W_SUM] == sum) return 0;
  snprintf(out, cap, "page %zu: index %llu, generation %llu (want %llu), checksum %s", i,
           (unsigned long long)p[W_INDEX], (unsigned long long)p[W_GEN], (unsigned long long)g_gens[i],
           p[W_SUM] == sum ? "ok" : "bad");
  return 1;
}

int mem_verify(char *msg, size_t cap) {
  size_t bad = 0, used = 0;
  char line[160];
  msg[0] = 0;
  for (size_t i = 0; i < g_npages; i++) {
    lock_page(i);
    int wrong = check_page(i, line, sizeof line);
    unlock_page(i);
    if (!wrong) continue;
    /* Name the first few pages only; the count says how many there are. */
    if (++bad <= 3 && used < cap) used += (size_t)snprintf(msg + used, cap - used, "; %s", line);
  }
  if (!bad) return 0;
  char head[96];
  snprintf(head, sizeof head, "%zu of %zu pages corrupt", bad, g_npages);
  size_t hl = strlen(head);
  if (hl + strlen(msg) + 1 < cap) {
    memmove(msg + hl, msg, strlen(msg) + 1);
    memcpy(msg, head, hl);
  } else {
    snprintf(msg, cap, "%s", head);
  }
  return 1;
}

static size_t gcd(size_t a, size_t b) {
  while (b) {
    size_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/*
 * Rewrites pages at g_rate MiB/s (256 pages per MiB), walking the region with a large
 * odd stride so the dirty pages are spread over all of it rather than clustered. The
 * credit is capped at 100 ms worth so a pause (migration downtime) causes no burst.
 */
void *mem_writer_thread(void *arg) {
  (void)arg;
  size_t cursor = 0, stride = g_npages > 7919 ? 7919 : (g_npages - 1) | 1;
  /* Coprime with the page count, so the walk visits every page once per lap. */
  while (stride > 1 && (stride >= g_npages || gcd(stride, g_npages) != 1)) stride -= 2;
  double credit = 0;
  uint64_t last = mono_ns();
  for (;;) {
    unsigned rate = mem_rate();
    uint64_t now = mono_ns();
    double per_sec = (double)rate * 256.0;
    credit += per_sec * (double)(now - last) / 1e9;
    if (credit > per_sec / 10) credit = per_sec / 10;
    last = now;
    if (rate == 0) {
      credit = 0;
      sleep_ns(20000000ull);
      continue;
    }
    while (credit >= 1) {
      cursor = (cursor + stride) % g_npages;
      lock_page(cursor);
      write_page(cursor, g_gens[cursor] + 1);
      unlock_page(cursor);
      __atomic_add_fetch(&g_rewritten, 1, __ATOMIC_RELAXED);
      credit -= 1;
    }
    sleep_ns(10000000ull);
  }
  return NULL;
}
