/* Counter, boot id, clocks, hashing and threads shared by the workload's parts. */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004
#endif

char g_boot_id[33];
unsigned char g_boot_raw[16];
static uint64_t g_counter;

uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ns(uint64_t ns) {
  struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

uint64_t counter_value(void) { return __atomic_load_n(&g_counter, __ATOMIC_RELAXED); }

/*
 * Ticks every 10 ms. It counts ticks rather than reading a clock, so the value stands
 * still while the guest is paused (a migration's downtime) and only grows while it runs.
 */
void *counter_thread(void *arg) {
  (void)arg;
  for (;;) {
    sleep_ns(10000000ull);
    __atomic_add_fetch(&g_counter, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

/*
 * Draws the boot id from the kernel's random pool. getrandom(GRND_INSECURE) reads what
 * /dev/urandom would, but without first waiting for the pool to be fully seeded: on 6.1 a
 * read of /dev/urandom that early runs the jitter-entropy dance, which costs about a second
 * under TCG. /dev/urandom stays the fallback for kernels older than 5.6.
 */
void boot_id_init(void) {
  ssize_t got = getrandom(g_boot_raw, sizeof g_boot_raw, GRND_INSECURE);
  if (got != (ssize_t)sizeof g_boot_raw) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    got = fd >= 0 ? read(fd, g_boot_raw, sizeof g_boot_raw) : -1;
    if (fd >= 0) close(fd);
  }
  /* Mixed with the clocks so that two boots differ even if the pool was still thin. */
  uint64_t t[2] = { real_ns(), mono_ns() };
  if (got != (ssize_t)sizeof g_boot_raw) memset(g_boot_raw, 0, sizeof g_boot_raw);
  for (size_t i = 0; i < sizeof g_boot_raw; i++) g_boot_raw[i] ^= ((unsigned char *)t)[i];
  for (size_t i = 0; i < sizeof g_boot_raw; i++) snprintf(g_boot_id + 2 * i, 3, "%02x", g_boot_raw[i]);
}

uint64_t hash_words(uint64_t h, const uint64_t *w, size_t n) {
  h ^= 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    h ^= w[i];
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return h ? h : 1;
}

void fill_words(uint64_t *w, size_t n, uint64_t seed) {
  uint64_t x = (seed * 0x9e3779b97f4a7c15ull) | 1u;
  for (size_t i = 0; i < n; i++) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w[i] = x * 0x2545f4914f6cdd1dull;
  }
}

int start_thread(void *(*fn)(void *), void *arg, size_t stack_bytes) {
  pthread_attr_t a;
  pthread_t t;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  if (stack_bytes) pthread_attr_setstacksize(&a, stack_bytes);
  int rc = pthread_create(&t, &a, fn, arg);
  pthread_attr_destroy(&a);
  if (rc != 0) fprintf(stderr, "ferry-guest: pthread_create: %s\n", strerror(rc));
  return rc;
}
