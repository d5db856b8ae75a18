/*
 * UDP load for the datagram benchmarks: one thread sends --count datagrams of --size
 * bytes to --host:--port with sendmmsg, --batch per call, as fast as the kernel takes
 * them (a blocking socket: the sender waits only for its own send buffer). Every
 * datagram starts with its sequence number. Prints one JSON object on stdout:
 * {"sent":N,"seconds":s,"rate":r,"cpu_user":u,"cpu_sys":s,"errors":e}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, batch = 64;
  long size = 64;
  long long count = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--size")) size = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--count")) count = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "udp_sender: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (port <= 0 || size < 16 || size > 65000 || batch < 1 || batch > 1024 || count < 1) {
    fprintf(stderr, "usage: udp_sender --port P [--host 127.0.0.1] [--size 64 (16..65000)] [--count 1000000] [--batch 64]\n");
    return 2;
  }
  struct sockaddr_storage to;
  socklen_t tolen;
  memset(&to, 0, sizeof to);
  struct sockaddr_in *v4 = (struct sockaddr_in *)&to;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    tolen = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    tolen = sizeof *v6;
  } else {
    fprintf(stderr, "udp_sender: bad host %s\n", host);
    return 2;
  }
  int fd = socket(to.ss_family, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&to, tolen) < 0) {
    perror("udp_sender: socket/connect");
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  char *bufs = malloc((size_t)batch * size);
  struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
  struct iovec *iov = calloc(batch, sizeof *iov);
  if (!bufs || !msgs || !iov) return 1;
  memset(bufs, 'x', (size_t)batch * size);
  for (int i = 0; i < batch; i++) {
    iov[i].iov_base = bufs + (size_t)i * size;
    iov[i].iov_len = size;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long long sent = 0, errors = 0;
  double t0 = now_s();
  while (sent < count) {
    int n = (int)(count - sent < batch ? count - sent : batch);
    for (int i = 0; i < n; i++) {
      char *b = iov[i].iov_base;
      char num[24];
      int len = snprintf(num, sizeof num, "%012lld ", sent + i);
      memcpy(b, num, len); /* size >= 16: the number and its space fit */
    }
    int r = sendmmsg(fd, msgs, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) {
        errors++; /* ECONNREFUSED: an ICMP from a datagram before the receiver was up */
        continue;
      }
      perror("udp_sender: sendmmsg");
      return 1;
    }
    sent += r;
  }
  double secs = now_s() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"sent\":%lld,\"seconds\":%.6f,\"rate\":%.1f,\"cpu_user\":%.3f,\"cpu_sys\":%.3f,\"errors\":%lld}\n", sent, secs, sent / secs,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, errors);
  close(fd);
  free(bufs);
  free(msgs);
  free(iov);
  return 0;
}
