/*
 * HTTP on port 80 and TCP echo on port 7, one thread per connection. HTTP answers are
 * HTTP/1.0 with Content-Length and Connection: close; bodies carry no trailing newline,
 * so `ok` compares equal to "ok".
 */
#include "workload.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CONN_STACK (256u * 1024u)
#define MSG_CAP 2048u

int listen_tcp(int port) {
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = { htonl(INADDR_ANY) } };
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void respond(int fd, int status, const char *type, const char *body) {
  const char *reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 404 ? "Not Found" : "Internal Server Error";
  char head[256];
  size_t len = strlen(body);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                   reason, type, len);
  if (write_all(fd, head, (size_t)n) == 0) write_all(fd, body, len);
}

/* Reads until the end of the request head; returns its length or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap) {
  size_t got = 0;
  while (got + 1 < cap) {
    ssize_t r = read(fd, buf + got, cap - 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return got ? (ssize_t)got : -1;
    got += (size_t)r;
    buf[got] = 0;
    if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) break;
  }
  buf[got] = 0;
  return (ssize_t)got;
}

static void answer_stats(int fd) {
  char body[512];
  uint64_t next = 0, written = 0, errors = 0, slots = 0;
  if (disk_present()) disk_stats(&next, &written, &errors, &slots);
  snprintf(body, sizeof body,
           "{\"counter\":%llu,\"bootId\":\"%s\",\"testMemMiB\":%u,\"dirtyMbps\":%u,\"pagesRewritten\":%llu,"
           "\"disk\":%s,\"diskRecords\":%llu,\"diskRecordsThisBoot\":%llu,\"diskWriteErrors\":%llu}",
           (unsigned long long)counter_value(), g_boot_id, mem_mib(), mem_rate(), (unsigned long long)mem_rewritten(),
           disk_present() ? "true" : "false", (unsigned long long)next, (unsigned long long)written,
           (unsigned long long)errors);
  respond(fd, 200, "application/json", body);
}

static void answer_dirty(int fd, const char *query) {
  const char *p = query ? strstr(query, "mbps=") : NULL;
  char *end = NULL;
  long v = p ? strtol(p + 5, &end, 10) : -1;
  if (!p || end == p + 5 || v < 0 || v > 100000) {
    respond(fd, 400, "text/plain", "want /dirty?mbps=N with N from 0 to 100000");
    return;
  }
  mem_set_rate((unsigned)v);
  respond(fd, 200, "text/plain", "ok");
}

static void answer_verify(int fd, int (*verify)(char *, size_t)) {
  char *msg = malloc(MSG_CAP);
  if (!msg) {
    respond(fd, 500, "text/plain", "out of memory");
    return;
  }
  int bad = verify(msg, MSG_CAP);
  respond(fd, bad ? 500 : 200, "text/plain", bad ? msg : "ok");
  free(msg);
}

static void route(int fd, char *path) {
  char *query = strchr(path, '?');
  char num[32];
  if (query) *query++ = 0;
  if (!strcmp(path, "/health")) respond(fd, 200, "text/plain", "ok");
  else if (!strcmp(path, "/counter")) {
    snprintf(num, sizeof num, "%llu", (unsigned long long)counter_value());
    respond(fd, 200, "text/plain", num);
  } else if (!strcmp(path, "/boot-id")) respond(fd, 200, "text/plain", g_boot_id);
  else if (!strcmp(path, "/verify")) answer_verify(fd, mem_verify);
  else if (!strcmp(path, "/dirty")) answer_dirty(fd, query);
  else if (!strcmp(path, "/disk/verify")) {
    if (disk_present()) answer_verify(fd, disk_verify);
    else respond(fd, 404, "text/plain", "no disk");
  } else if (!strcmp(path, "/stats")) answer_stats(fd);
  else respond(fd, 404, "text/plain", "not found");
}

static void *http_conn_thread(void *arg) {
  int fd = (int)(intptr_t)arg;
  char req[4096];
  if (read_head(fd, req, sizeof req) > 0) {
    /* "METHOD /path HTTP/1.x": any method is accepted, the path decides. */
    char *sp = strchr(req, ' ');
    char *path = sp ? sp + 1 : NULL;
    char *end = path ? strpbrk(path, " \r\n") : NULL;
    if (path && end) {
      *end = 0;
      route(fd, path);
    } else {
      respond(fd, 400, "text/plain", "bad request");
    }
  }
  shutdown(fd, SHUT_WR);
  close(fd);
  return NULL;
}

static void *echo_conn_thread(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[16384];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || write_all(fd, buf, (size_t)r) != 0) break;
  }
  close(fd);
  return NULL;
}

/* Accepts forever on the listening socket arg, handing each connection to a thread of its own. */
static void accept_loop(int lfd, void *(*conn)(void *), int timeout_s) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != ECONNABORTED) sleep_ns(10000000ull);
      continue;
    }
    int one = 1;
    /* No Nagle delay: echo latency is what tests measure across a move. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (timeout_s) {
      struct timeval tv = { .tv_sec = timeout_s };
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    if (start_thread(conn, (void *)(intptr_t)fd, CONN_STACK) != 0) close(fd);
  }
}

void *http_accept_thread(void *arg) {
  accept_loop((int)(intptr_t)arg, http_conn_thread, 10);
  return NULL;
}

void *echo_accept_thread(void *arg) {
  accept_loop((int)(intptr_t)arg, echo_conn_thread, 0);
  return NULL;
}
