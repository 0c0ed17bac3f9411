/*
 * Entry point: workload [-m TESTMEM_MIB] [-d DISK]
 * Sets everything up, starts the threads, opens the ports, and only then prints the
 * ready marker, so whoever waits for it on the serial console can talk to the guest at once.
 */
#include "workload.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keep in step with GUEST_READY_MARKER in src/image/kernel-args.ts. */
#define READY_MARKER "FERRY-GUEST-READY"

static void need(int ok, const char *what) {
  if (ok) return;
  fprintf(stderr, "ferry-guest: %s failed\n", what);
  exit(1);
}

int main(int argc, char **argv) {
  unsigned mib = 32;
  const char *disk = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "m:d:")) != -1) {
    if (opt == 'm') mib = (unsigned)strtoul(optarg, NULL, 10);
    else if (opt == 'd') disk = optarg;
    else {
      fprintf(stderr, "usage: workload [-m TESTMEM_MIB] [-d DISK]\n");
      return 2;
    }
  }
  /* A client that goes away mid-answer must not kill the whole workload. */
  signal(SIGPIPE, SIG_IGN);
  boot_id_init();
  need(start_thread(counter_thread, NULL, 64 * 1024) == 0, "starting the counter");
  need(mem_init(mib) == 0, "allocating test memory");
  char msg[256] = "none";
  if (disk && disk_init(disk, msg, sizeof msg) != 0) fprintf(stderr, "ferry-guest: disk %s\n", msg);
  int http = listen_tcp(80), echo = listen_tcp(7);
  need(http >= 0, "listening on port 80");
  need(echo >= 0, "listening on port 7");
  need(start_thread(mem_writer_thread, NULL, 64 * 1024) == 0, "starting the memory writer");
  if (disk_present()) need(start_thread(disk_writer_thread, NULL, 64 * 1024) == 0, "starting the disk writer");
  need(start_thread(echo_accept_thread, (void *)(intptr_t)echo, 64 * 1024) == 0, "starting the echo server");
  printf("ferry-guest: boot-id %s, test memory %u MiB, disk %s\n", g_boot_id, mem_mib(), disk_present() ? msg : "none");
  printf("%s\n", READY_MARKER);
  fflush(stdout);
  http_accept_thread((void *)(intptr_t)http);
  return 0;
}
