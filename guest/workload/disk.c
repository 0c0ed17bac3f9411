/*
 * Disk records: the workload appends one 4 KiB record per 100 ms to the raw disk, record
 * with sequence number q going to slot q mod slots (so it wraps at the end of the device).
 * Each record holds a magic, its sequence number, its slot, the time, the boot id of the
 * boot that wrote it, content derived from the sequence number, and a checksum over it all.
 * Writes use O_DIRECT|O_DSYNC so an acknowledged record is on the disk QEMU emulates, not
 * in the guest's page cache: what a storage move copies is what verify reads back.
 *
 * At start the workload continues after the last valid record it finds, so records from
 * earlier boots (and from before a move) stay part of the one sequence /disk/verify checks.
 */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { R_MAGIC = 0, R_SEQ = 1, R_SUM = 2, R_SLOT = 3, R_TIME = 4, R_BOOT = 5, R_BODY = 7 };
#define REC_MAGIC 0x31304345525946ull /* "FYREC01" */
#define VERIFY_CHUNK 256u             /* records per read while verifying (1 MiB) */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = -1;
static uint64_t g_slots, g_next, g_written, g_errors;
static int g_last_errno;
static uint64_t *g_buf; /* one aligned record, used under g_mu */

static uint64_t record_sum(const uint64_t *r) {
  uint64_t h = hash_words(0, r, R_SUM);
  return hash_words(h, r + R_SLOT, PAGE_WORDS - R_SLOT);
}

static void build_record(uint64_t *r, uint64_t seq) {
  r[R_MAGIC] = REC_MAGIC;
  r[R_SEQ] = seq;
  r[R_SLOT] = seq % g_slots;
  r[R_TIME] = real_ns();
  memcpy(r + R_BOOT, g_boot_raw, sizeof g_boot_raw);
  fill_words(r + R_BODY, PAGE_WORDS - R_BODY, seq ^ 0x5eed);
  r[R_SUM] = record_sum(r);
}

static int record_valid(const uint64_t *r, uint64_t slot) {
  return r[R_MAGIC] == REC_MAGIC && r[R_SLOT] == slot && r[R_SEQ] % g_slots == slot && r[R_SUM] == record_sum(r);
}

static int read_slots(uint64_t *buf, uint64_t slot, size_t count) {
  size_t want = count * PAGE_BYTES;
  return pread(g_fd, buf, want, (off_t)(slot * PAGE_BYTES)) == (ssize_t)want ? 0 : -1;
}

/* True when slot i holds the record of sequence base + i (the records before the break). */
static int continues(uint64_t base, uint64_t i) {
  return read_slots(g_buf, i, 1) == 0 && record_valid(g_buf, i) && g_buf[R_SEQ] == base + i;
}

/*
 * Finds where to continue. Slots 0..k hold base+0..base+k (the current lap); anything after
 * is an older lap or never written, so the predicate is monotone and a binary search needs
 * about 18 reads even on a 1 GiB disk, instead of reading it all at boot.
 */
static uint64_t find_next(void) {
  if (read_slots(g_buf, 0, 1) != 0 || !record_valid(g_buf, 0)) return 0;
  uint64_t base = g_buf[R_SEQ], lo = 0, hi = g_slots;
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (continues(base, mid)) lo = mid;
    else hi = mid;
  }
  return base + lo + 1;
}

int disk_init(const char *path, char *msg, size_t cap) {
  uint64_t bytes = 0;
  struct stat st;
  g_fd = open(path, O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
  /* A regular file works too, which lets the workload be tried on a host. */
  if (g_fd >= 0 && fstat(g_fd, &st) == 0 && S_ISREG(st.st_mode)) bytes = (uint64_t)st.st_size;
  if (g_fd < 0 || (!bytes && ioctl(g_fd, BLKGETSIZE64, &bytes) != 0)) {
    snprintf(msg, cap, "cannot use %s: %s", path, strerror(errno));
    if (g_fd >= 0) close(g_fd);
    g_fd = -1;
    return -1;
  }
  g_slots = bytes / PAGE_BYTES;
  if (g_slots < 16 || posix_memalign((void **)&g_buf, PAGE_BYTES, PAGE_BYTES) != 0) {
    snprintf(msg, cap, "%s is too small (%llu bytes)", path, (unsigned long long)bytes);
    close(g_fd);
    g_fd = -1;
    return -1;
  }
  g_next = find_next();
  snprintf(msg, cap, "%s: %llu record slots, continuing at record %llu", path, (unsigned long long)g_slots,
           (unsigned long long)g_next);
  return 0;
}

int disk_present(void) { return g_fd >= 0; }

void disk_stats(uint64_t *next_seq, uint64_t *written, uint64_t *errors, uint64_t *slots) {
  pthread_mutex_lock(&g_mu);
  *next_seq = g_next;
  *written = g_written;
  *errors = g_errors;
  *slots = g_slots;
  pthread_mutex_unlock(&g_mu);
}

/* The sequence number slot s must hold: the newest one below g_next that maps to it. */
static int expected_seq(uint64_t s, uint64_t *seq) {
  if (g_next == 0) return 0;
  uint64_t last = g_next - 1, back = (last % g_slots + g_slots - s) % g_slots;
  if (back > last) return 0;
  *seq = last - back;
  return 1;
}

static void note_bad(char *msg, size_t cap, size_t *used, size_t bad, uint64_t s, uint64_t want, const uint64_t *r) {
  if (bad > 3 || *used >= cap) return;
  const char *why = r[R_MAGIC] != REC_MAGIC ? "no record" : r[R_SUM] != record_sum(r) ? "bad checksum" : "wrong record";
  *used += (size_t)snprintf(msg + *used, cap - *used, "; slot %llu: want record %llu, found %llu (%s)",
                            (unsigned long long)s, (unsigned long long)want, (unsigned long long)r[R_SEQ], why);
}

/* Checks one chunk of slots; returns how many were bad. Caller holds g_mu. */
static size_t verify_chunk(uint64_t *buf, uint64_t first, size_t count, char *msg, size_t cap, size_t *used, size_t bad) {
  size_t found = 0;
  for (size_t k = 0; k < count; k++) {
    uint64_t s = first + k, want;
    const uint64_t *r = buf + k * PAGE_WORDS;
    if (!expected_seq(s, &want)) continue;
    if (record_valid(r, s) && r[R_SEQ] == want) continue;
    note_bad(msg, cap, used, bad + ++found, s, want, r);
  }
  return found;
}

int disk_verify(char *msg, size_t cap) {
  uint64_t *buf = NULL;
  size_t bad = 0, used = 0;
  msg[0] = 0;
  if (posix_memalign((void **)&buf, PAGE_BYTES, (size_t)VERIFY_CHUNK * PAGE_BYTES) != 0) {
    snprintf(msg, cap, "out of memory");
    return 1;
  }
  /* The writer waits while we read, so the record it would write next cannot tear our view. */
  pthread_mutex_lock(&g_mu);
  uint64_t used_slots = g_next < g_slots ? g_next : g_slots;
  for (uint64_t s = 0; s < used_slots; s += VERIFY_CHUNK) {
    size_t n = used_slots - s < VERIFY_CHUNK ? (size_t)(used_slots - s) : VERIFY_CHUNK;
    if (read_slots(buf, s, n) != 0) {
      used += (size_t)snprintf(msg + used, cap - used, "; reading slots from %llu failed: %s", (unsigned long long)s,
                               strerror(errno));
      bad += n;
      break;
    }
    bad += verify_chunk(buf, s, n, msg, cap, &used, bad);
  }
  uint64_t errors = g_errors, total = used_slots;
  int last_errno = g_last_errno;
  pthread_mutex_unlock(&g_mu);
  free(buf);
  if (!bad && !errors) return 0;
  char body[1024];
  snprintf(body, sizeof body, "%zu of %llu records corrupt, %llu writes failed%s%s%s", bad, (unsigned long long)total,
           (unsigned long long)errors, errors ? " (last: " : "", errors ? strerror(last_errno) : "", errors ? ")" : "");
  size_t bl = strlen(body);
  snprintf(body + bl, sizeof body - bl, "%s", msg);
  snprintf(msg, cap, "%s", body);
  return 1;
}

/*
 * Appends a record every 100 ms on an absolute schedule; after a long pause (a migration's
 * downtime, a stopped VM) it starts a new schedule instead of writing a burst to catch up.
 */
void *disk_writer_thread(void *arg) {
  (void)arg;
  const uint64_t period = 100000000ull;
  uint64_t due = mono_ns();
  for (;;) {
    due += period;
    uint64_t now = mono_ns();
    if (due + 10 * period < now) due = now;
    struct timespec ts = { .tv_sec = (time_t)(due / 1000000000ull), .tv_nsec = (long)(due % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    pthread_mutex_lock(&g_mu);
    build_record(g_buf, g_next);
    if (pwrite(g_fd, g_buf, PAGE_BYTES, (off_t)(g_next % g_slots * PAGE_BYTES)) == (ssize_t)PAGE_BYTES) {
      g_next++;
      g_written++;
    } else {
      g_errors++;
      g_last_errno = errno;
    }
    pthread_mutex_unlock(&g_mu);
  }
  return NULL;
}
