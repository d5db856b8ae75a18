/*
 * LogCaster C reference server: the ceiling the benchmark compares against.
 * One thread, non-blocking sockets, level-triggered readiness on select, poll or epoll
 * (--model), or completions on io_uring (--model iouring, raw syscalls, no liburing).
 *
 *   echo (default)     every byte read is written back
 *   --ingest           newline-terminated lines are stored in a memory ring
 *   --ingest --ack     ... and "OK\n" is written per stored line (one write per read)
 *   --query-port Q     COUNT -> "COUNT: <n>", STATS -> "STATS: Total=<n>, ..."
 *
 * Prints "READY <port> <query-port>" on stdout once listening. Exits on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LINE 65536
#define ARENA_SIZE (256u << 20)
#define RBUF (1 << 16)

typedef struct conn {
  int fd;
  int kind;      /* 0 data, 1 query, 2 listener(data), 3 listener(query) */
  int want_out;  /* write interest registered */
  char *out;     /* pending output */
  size_t outlen, outoff, outcap;
  char *part;    /* ingest: partial line */
  size_t partlen;
  int closing;   /* close once output drained */
  char *fl;      /* io_uring: the buffer a send in flight reads from */
  size_t fllen, floff, flcap;
} conn_t;

static int o_ingest, o_ack;
static int model; /* 0 select 1 poll 2 epoll 3 iouring */
static const char *o_model = "epoll";
static volatile sig_atomic_t stop_flag;

static char *arena;
static size_t arena_pos;
static unsigned long long lines_total, bytes_total, clients_now;
static char rbuf[RBUF];
static char okbuf[3 * 8192];

static int *pidx; /* poll: fd -> index in pfds, grown with the table */
static conn_t **table; /* by fd */
static int table_cap;

/* ---------- helpers shared by every model ---------- */
static void die(const char *m) {
  fprintf(stderr, "ref_server: %s: %s\n", m, strerror(errno));
  exit(2);
}
static void on_signal(int s) {
  (void)s;
  stop_flag = 1;
}
static int listen_on(const char *host, int port, int *bound) {
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
  if (fam == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, host, &a->sin6_addr);
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &a->sin_addr);
    sl = sizeof *a;
  }
  int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) die("bind");
  if (listen(fd, 4096) < 0) die("listen");
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *bound = ntohs(fam == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}
static conn_t *conn_new(int fd, int kind) {
  if (fd >= table_cap) {
    int nc = table_cap ? table_cap : 1024;
    while (nc <= fd) nc *= 2;
    table = realloc(table, sizeof(conn_t *) * (size_t)nc);
    memset(table + table_cap, 0, sizeof(conn_t *) * (size_t)(nc - table_cap));
    pidx = realloc(pidx, sizeof(int) * (size_t)nc);
    table_cap = nc;
  }
  conn_t *c = calloc(1, sizeof *c);
  c->fd = fd;
  c->kind = kind;
  table[fd] = c;
  return c;
}
static void conn_free(conn_t *c) {
  table[c->fd] = NULL;
  free(c->out);
  free(c->part);
  free(c->fl);
  free(c);
}
static void queue_out(conn_t *c, const char *p, size_t n) {
  if (c->outlen - c->outoff + n > c->outcap) {
    size_t need = c->outlen - c->outoff + n;
    size_t cap = c->outcap ? c->outcap : 4096;
    while (cap < need) cap *= 2;
    char *nb = malloc(cap);
    memcpy(nb, c->out + c->outoff, c->outlen - c->outoff);
    free(c->out);
    c->out = nb;
    c->outlen -= c->outoff;
    c->outoff = 0;
    c->outcap = cap;
  } else if (c->outoff && c->outlen + n > c->outcap) {
    memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
    c->outlen -= c->outoff;
    c->outoff = 0;
  }
  memcpy(c->out + c->outlen, p, n);
  c->outlen += n;
}
/* Write p[0..n) now; queue what the kernel does not take. Returns -1 on a fatal error. */
static int send_or_queue(conn_t *c, const char *p, size_t n) {
  if (model == 3 || c->outlen > c->outoff) {
    queue_out(c, p, n); /* io_uring: sends go through the ring */
    return 0;
  }
  while (n) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) break;
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  if (n) queue_out(c, p, n);
  return 0;
}
/* Flush queued output; returns 1 when the queue is empty, 0 if more remains, -1 on error. */
static int flush_out(conn_t *c) {
  while (c->outlen > c->outoff) {
    ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) return 0;
      if (errno == EINTR) continue;
      return -1;
    }
    c->outoff += (size_t)w;
  }
  c->outlen = c->outoff = 0;
  return 1;
}
static void store_line(const char *p, size_t n) {
  if (n && p[n - 1] == '\r') n--;
  if (arena_pos + n > ARENA_SIZE) arena_pos = 0;
  memcpy(arena + arena_pos, p, n);
  arena_pos += n;
  lines_total++;
}
/* Process bytes read from a data connection. Returns -1 to close. */
static int on_bytes(conn_t *c, const char *p, size_t n) {
  if (!o_ingest) return send_or_queue(c, p, n);
  bytes_total += n;
  size_t start = 0, k = 0;
  for (;;) {
    const char *nl = memchr(p + start, '\n', n - start);
    if (!nl) break;
    size_t end = (size_t)(nl - p);
    if (c->partlen) {
      size_t take = end - start;
      if (c->partlen + take > MAX_LINE) take = MAX_LINE - c->partlen;
      memcpy(c->part + c->partlen, p + start, take);
      store_line(c->part, c->partlen + take);
      c->partlen = 0;
    } else {
      store_line(p + start, end - start > MAX_LINE ? MAX_LINE : end - start);
    }
    k++;
    start = end + 1;
  }
  if (start < n) {
    if (!c->part) c->part = malloc(MAX_LINE);
    size_t take = n - start;
    if (c->partlen + take > MAX_LINE) take = MAX_LINE - c->partlen;
    memcpy(c->part + c->partlen, p + start, take);
    c->partlen += take;
  }
  if (o_ack && k) {
    while (k) {
      size_t m = k > 8192 ? 8192 : k;
      if (send_or_queue(c, okbuf, m * 3) < 0) return -1;
      k -= m;
    }
  }
  return 0;
}
static int on_query(conn_t *c, const char *p, size_t n) {
  /* commands are short; treat each read as whole lines */
  char line[256];
  size_t start = 0;
  while (start < n) {
    const char *nl = memchr(p + start, '\n', n - start);
    size_t end = nl ? (size_t)(nl - p) : n;
    size_t len = end - start;
    if (len >= sizeof line) len = sizeof line - 1;
    memcpy(line, p + start, len);
    line[len] = 0;
    if (len && line[len - 1] == '\r') line[--len] = 0;
    char out[256];
    int m;
    if (!strcmp(line, "COUNT")) m = snprintf(out, sizeof out, "COUNT: %llu\n", lines_total);
    else if (!strcmp(line, "STATS"))
      m = snprintf(out, sizeof out, "STATS: Total=%llu, Dropped=0, Current=%llu, Clients=%llu\n", lines_total,
                   lines_total, clients_now);
    else m = snprintf(out, sizeof out, "ERROR: unknown command\n");
    if (send_or_queue(c, out, (size_t)m) < 0) return -1;
    start = end + 1;
  }
  return 0;
}

/* ---------- readiness models ---------- */
enum { R_IN = 1, R_OUT = 2, R_ERR = 4 };
typedef struct {
  int fd;
  int ev;
} ready_t;
static int epfd;
static struct pollfd *pfds;
static int npfds, pcap;
static fd_set sel_in, sel_out;
static int sel_max = -1;
static ready_t readyv[4096];

static int watch_add(int fd, int out) {
  if (model == 0) {
    if (fd >= FD_SETSIZE) return -1;
    FD_SET(fd, &sel_in);
    if (out) FD_SET(fd, &sel_out);
    if (fd > sel_max) sel_max = fd;
  } else if (model == 1) {
    if (npfds == pcap) {
      pcap = pcap ? pcap * 2 : 1024;
      pfds = realloc(pfds, sizeof *pfds * (size_t)pcap);
    }
    if (fd >= table_cap) return -1;
    pfds[npfds].fd = fd;
    pfds[npfds].events = POLLIN | (out ? POLLOUT : 0);
    pfds[npfds].revents = 0;
    pidx[fd] = npfds++;
  } else {
    struct epoll_event e = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data = {.fd = fd}};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) return -1;
  }
  return 0;
}
static void watch_mod(int fd, int out) {
  if (model == 0) {
    if (out) FD_SET(fd, &sel_out);
    else FD_CLR(fd, &sel_out);
  } else if (model == 1) {
    pfds[pidx[fd]].events = POLLIN | (out ? POLLOUT : 0);
  } else {
    struct epoll_event e = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data = {.fd = fd}};
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e);
  }
}
static void watch_del(int fd) {
  if (model == 0) {
    FD_CLR(fd, &sel_in);
    FD_CLR(fd, &sel_out);
    while (sel_max >= 0 && !FD_ISSET(sel_max, &sel_in)) sel_max--;
  } else if (model == 1) {
    int i = pidx[fd];
    pfds[i] = pfds[--npfds];
    if (i < npfds) pidx[pfds[i].fd] = i;
  } else {
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
  }
}
static int watch_wait(int timeout_ms) {
  int n = 0;
  if (model == 0) {
    fd_set in = sel_in, out = sel_out;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int r = select(sel_max + 1, &in, &out, NULL, &tv);
    if (r <= 0) return 0;
    for (int fd = 0; fd <= sel_max && n < 4096; fd++) {
      int ev = (FD_ISSET(fd, &in) ? R_IN : 0) | (FD_ISSET(fd, &out) ? R_OUT : 0);
      if (ev) readyv[n++] = (ready_t){fd, ev};
    }
  } else if (model == 1) {
    int r = poll(pfds, (nfds_t)npfds, timeout_ms);
    if (r <= 0) return 0;
    for (int i = 0; i < npfds && n < 4096; i++) {
      short re = pfds[i].revents;
      if (!re) continue;
      int ev = (re & POLLIN ? R_IN : 0) | (re & POLLOUT ? R_OUT : 0) | (re & (POLLERR | POLLHUP | POLLNVAL) ? R_ERR : 0);
      readyv[n++] = (ready_t){pfds[i].fd, ev};
    }
  } else {
    static struct epoll_event evs[4096];
    int r = epoll_wait(epfd, evs, 4096, timeout_ms);
    for (int i = 0; i < r; i++) {
      uint32_t e = evs[i].events;
      readyv[n++] = (ready_t){evs[i].data.fd,
                              (e & EPOLLIN ? R_IN : 0) | (e & EPOLLOUT ? R_OUT : 0) | (e & (EPOLLERR | EPOLLHUP) ? R_ERR : 0)};
    }
  }
  return n;
}

static void close_conn(conn_t *c) {
  watch_del(c->fd);
  close(c->fd);
  if (c->kind == 0) clients_now--;
  conn_free(c);
}
static void accept_all(conn_t *l) {
  for (int i = 0; i < 256; i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (model == 0 && fd >= FD_SETSIZE) {
      /* select cannot watch it: refuse this one connection, keep serving */
      close(fd);
      continue;
    }
    conn_t *c = conn_new(fd, l->kind == 2 ? 0 : 1);
    if (watch_add(fd, 0) < 0) {
      conn_free(c);
      close(fd);
      continue;
    }
    if (c->kind == 0) clients_now++;
  }
}
static void run_readiness(void) {
  while (!stop_flag) {
    int n = watch_wait(200);
    for (int i = 0; i < n; i++) {
      int fd = readyv[i].fd, ev = readyv[i].ev;
      conn_t *c = fd < table_cap ? table[fd] : NULL;
      if (!c) continue;
      if (c->kind >= 2) {
        accept_all(c);
        continue;
      }
      if (ev & R_OUT) {
        int r = flush_out(c);
        if (r < 0) { close_conn(c); continue; }
        if (r == 1) {
          watch_mod(fd, 0);
          c->want_out = 0;
          if (c->closing) { close_conn(c); continue; }
        }
      }
      if ((ev & (R_IN | R_ERR)) && !c->want_out) {
        ssize_t r = recv(fd, rbuf, RBUF, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
          if (r == 0 && c->outlen > c->outoff) { c->closing = 1; continue; }
          close_conn(c);
          continue;
        }
        int rc = c->kind == 0 ? on_bytes(c, rbuf, (size_t)r) : on_query(c, rbuf, (size_t)r);
        if (rc < 0) { close_conn(c); continue; }
        if (c->outlen > c->outoff) {
          /* backpressure: stop reading until the queue drains */
          c->want_out = 1;
          watch_mod(fd, 1);
        }
      }
    }
  }
}

#ifdef __linux__
#include "ref_uring.h"
#endif

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, qport = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--model")) o_model = v, i++;
    else if (!strcmp(a, "--host")) host = v, i++;
    else if (!strcmp(a, "--port")) port = atoi(v), i++;
    else if (!strcmp(a, "--query-port")) qport = atoi(v), i++;
    else if (!strcmp(a, "--ingest")) o_ingest = 1;
    else if (!strcmp(a, "--ack")) o_ack = 1;
    else {
      fprintf(stderr, "usage: ref_server [--model select|poll|epoll|iouring] [--host H] [--port P] "
                      "[--query-port Q] [--ingest [--ack]]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  for (int i = 0; i < 8192; i++) memcpy(okbuf + 3 * i, "OK\n", 3);
  if (o_ingest) {
    arena = malloc(ARENA_SIZE);
    if (!arena) die("malloc arena");
  }
  if (!strcmp(o_model, "select")) model = 0;
  else if (!strcmp(o_model, "poll")) model = 1;
  else if (!strcmp(o_model, "epoll")) model = 2;
  else if (!strcmp(o_model, "iouring")) model = 3;
  else {
    fprintf(stderr, "ref_server: unknown model %s\n", o_model);
    return 2;
  }
  int bport = 0, bq = 0;
  int lfd = listen_on(host, port, &bport);
  int qfd = qport >= 0 ? listen_on(host, qport, &bq) : -1;
  if (model == 3) {
#ifdef __linux__
    return run_uring(lfd, qfd, bport, bq);
#else
    fprintf(stderr, "ref_server: io_uring needs Linux\n");
    return 2;
#endif
  }
  if (model == 2) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
  }
  conn_new(lfd, 2);
  watch_add(lfd, 0);
  if (qfd >= 0) {
    conn_new(qfd, 3);
    watch_add(qfd, 0);
  }
  printf("READY %d %d\n", bport, qfd >= 0 ? bq : -1);
  fflush(stdout);
  run_readiness();
  return 0;
}
