// Echo ping-pong load generator for the backend benchmark: <conns> connections,
// each keeps exactly one <size>-byte message in flight (send, wait for the echo,
// send again). Single-threaded epoll, so it stays cheaper per message than the
// server it measures. Prints messages/s over the measured window (after warm-up).
//   echo-client <port> <conns> <seconds> [size=64] [warmup_s=1]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s port conns seconds [size] [warmup]\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]), conns = atoi(argv[2]);
  double seconds = atof(argv[3]);
  int size = argc > 4 ? atoi(argv[4]) : 64;
  double warmup = argc > 5 ? atof(argv[5]) : 1.0;
  char* msg = malloc(size);
  memset(msg, 'x', size);
  int* got = calloc(conns, sizeof(int));
  int* fds = calloc(conns, sizeof(int));
  int ep = epoll_create1(0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < conns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof a) < 0) {
      perror("connect");
      return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fds[i] = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  for (int i = 0; i < conns; i++) {
    if (send(fds[i], msg, size, 0) != size) {
      perror("send");
      return 1;
    }
  }
  char buf[65536];
  struct epoll_event evs[1024];
  double t0 = now(), start = t0 + warmup, end = start + seconds;
  long long counted = 0;
  int measuring = 0;
  for (;;) {
    double t = now();
    if (!measuring && t >= start) { measuring = 1; counted = 0; }
    if (t >= end) break;
    int n = epoll_wait(ep, evs, 1024, 100);
    for (int k = 0; k < n; k++) {
      int i = evs[k].data.u32;
      ssize_t r = recv(fds[i], buf, sizeof buf, 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "connection %d closed\n", i);
        return 1;
      }
      got[i] += r;
      while (got[i] >= size) {
        got[i] -= size;
        counted++;
        if (send(fds[i], msg, size, 0) != size) {
          perror("send");
          return 1;
        }
      }
    }
  }
  printf("%.0f\n", counted / seconds);
  return 0;
}
