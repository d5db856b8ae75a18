/*
 * UDP echo ping-pong client: --flows connected UDP sockets to --host:--port, each sends
 * one --size datagram, waits for its echo, sends the next (one thread, epoll). After
 * --warmup seconds it measures --duration seconds: round trips/s, latency p50/p99
 * (every round trip recorded), datagrams presumed lost (no echo within 200 ms: resent),
 * and with --server-pid the server's CPU over the same window. One JSON line on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static double proc_cpu(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long ut = 0, st = 0;
  /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, flows = 1, server_pid = 0;
  long size = 64;
  double duration = 2, warmup = 0.5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--flows")) flows = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--size")) size = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--warmup")) warmup = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--server-pid")) server_pid = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "udp_pingpong: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (port <= 0 || flows < 1 || flows > 10000 || size < 1 || size > 65000) {
    fprintf(stderr, "usage: udp_pingpong --port P [--flows 1] [--size 64] [--duration 2] [--warmup 0.5] [--server-pid N]\n");
    return 2;
  }
  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) return 2;
  int ep = epoll_create1(0);
  int *fds = calloc(flows, sizeof *fds);
  uint64_t *t0 = calloc(flows, sizeof *t0);
  char *msg = malloc(size), *in = malloc(65536);
  size_t cap = 1 << 22, nlat = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  if (!fds || !t0 || !msg || !in || !lat || ep < 0) return 1;
  memset(msg, 'p', size);
  for (int i = 0; i < flows; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&to, sizeof to) < 0) {
      perror("udp_pingpong: socket");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
  }
  uint64_t start = now_ns(), measure_at = start + (uint64_t)(warmup * 1e9), end = measure_at + (uint64_t)(duration * 1e9);
  for (int i = 0; i < flows; i++) {
    t0[i] = start;
    send(fds[i], msg, size, 0);
  }
  unsigned long long trips = 0, lost = 0;
  double cpu0 = -1;
  int measuring = 0;
  struct epoll_event evs[256];
  uint64_t last_scan = start;
  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= measure_at) {
      measuring = 1;
      if (server_pid) cpu0 = proc_cpu(server_pid);
    }
    if (now >= end) break;
    int n = epoll_wait(ep, evs, 256, 20);
    now = now_ns();
    for (int k = 0; k < n; k++) {
      int i = evs[k].data.u32;
      ssize_t r;
      while ((r = recv(fds[i], in, 65536, 0)) >= 0) {
        if (measuring && now < end) {
          trips++;
          if (nlat < cap) lat[nlat++] = now - t0[i];
        }
        t0[i] = now;
        send(fds[i], msg, size, 0);
      }
    }
    if (now - last_scan > 50000000ull) { /* every 50 ms: resend what got no echo in 200 ms */
      last_scan = now;
      for (int i = 0; i < flows; i++)
        if (now - t0[i] > 200000000ull) {
          if (measuring) lost++;
          t0[i] = now;
          send(fds[i], msg, size, 0);
        }
    }
  }
  double cpu1 = server_pid ? proc_cpu(server_pid) : -1;
  qsort(lat, nlat, sizeof *lat, cmp_u64);
  double p50 = nlat ? lat[nlat / 2] / 1e3 : -1, p99 = nlat ? lat[(size_t)(nlat * 0.99)] / 1e3 : -1;
  printf("{\"trips\":%llu,\"seconds\":%.3f,\"rate\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"lost\":%llu,\"server_cpu\":%.3f}\n", trips, duration,
         trips / duration, p50, p99, lost, cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1.0);
  return 0;
}
