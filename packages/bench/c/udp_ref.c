/*
 * C reference for the datagram benchmarks: one thread, a blocking UDP socket, recvmmsg
 * with --batch datagrams per call (MSG_WAITFORONE: returns with what has arrived).
 *   --mode sink  counts datagrams; kernel drops from SO_RXQ_OVFL
 *   --mode echo  sends every datagram of a batch back to its sender with one sendmmsg
 * Prints "port N" once bound; on SIGUSR1 one JSON line {"received":N,"dropped":D,"sent":S};
 * on SIGTERM the same line, then exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t want_report = 0, want_exit = 0;
static void on_usr1(int s) { (void)s; want_report = 1; }
static void on_term(int s) { (void)s; want_exit = 1; }

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, batch = 64, echo = 0, rcvbuf = 8 << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--rcvbuf")) rcvbuf = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--mode")) echo = !strcmp(argv[i + 1], "echo");
    else {
      fprintf(stderr, "udp_ref: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (batch < 1 || batch > 1024) return 2;
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int one = 1;
  if (fd < 0) return 1;
  /* past net.core.rmem_max with CAP_NET_ADMIN, as LogCaster and rsyslog do */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("udp_ref: bind");
    return 1;
  }
  socklen_t alen = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &alen);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1; /* no SA_RESTART: recvmmsg returns EINTR */
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  enum { kMax = 65536, kCtl = 64 };
  char *bufs = malloc((size_t)batch * kMax);
  char *ctl = malloc((size_t)batch * kCtl);
  struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
  struct iovec *iov = calloc(batch, sizeof *iov);
  struct sockaddr_storage *from = calloc(batch, sizeof *from);
  if (!bufs || !ctl || !msgs || !iov || !from) return 1;
  unsigned long long received = 0, sent = 0;
  uint32_t dropped = 0;
  for (;;) {
    if (want_report || want_exit) {
      printf("{\"received\":%llu,\"dropped\":%u,\"sent\":%llu}\n", received, dropped, sent);
      fflush(stdout);
      want_report = 0;
      if (want_exit) break;
    }
    for (int i = 0; i < batch; i++) {
      iov[i].iov_base = bufs + (size_t)i * kMax;
      iov[i].iov_len = kMax;
      msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &iov[i], .msg_iovlen = 1,
                                        .msg_control = ctl + (size_t)i * kCtl, .msg_controllen = kCtl};
    }
    int n = recvmmsg(fd, msgs, batch, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("udp_ref: recvmmsg");
      return 1;
    }
    received += n;
    struct msghdr *last = &msgs[n - 1].msg_hdr;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(last); c; c = CMSG_NXTHDR(last, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
    if (echo) {
      for (int i = 0; i < n; i++) {
        iov[i].iov_len = msgs[i].msg_len;
        msgs[i].msg_hdr.msg_control = NULL;
        msgs[i].msg_hdr.msg_controllen = 0;
      }
      for (int done = 0; done < n;) {
        int r = sendmmsg(fd, msgs + done, n - done, 0);
        if (r < 0) {
          if (errno == EINTR) continue;
          break; /* a reply the kernel refused: drop it, as a UDP server does */
        }
        done += r;
        sent += r;
      }
    }
  }
  close(fd);
  return 0;
}
