/*
 * TLS load generator for the TLS benchmark (src/tls.ts): one thread, one epoll instance,
 * non-blocking OpenSSL clients to 127.0.0.1. Prints one JSON object on stdout.
 *
 * Modes
 *   echo       --conns connections handshake, then each sends --size bytes, waits for the
 *              whole echo, repeats; messages counted over --duration s after --warmup s
 *   stream     --conns connections write whole lines of --size bytes (newline included)
 *              as fast as TLS lets them for --duration s, 16 KiB of lines per write (one
 *              TLS record, as a buffered sender writes), then close_notify + FIN; reports
 *              the lines written (the server counts what it stored)
 *   handshake  --conns connections at a time: connect, full handshake (no resumption),
 *              close, reconnect; handshakes counted over --duration s after --warmup s
 *   --plain    the same over plain TCP (no TLS), the baseline
 *
 * echo and stream measure the steady state: every connection completes its handshake
 * first ("READY <seconds>" on stdout when all have; stream connections wait for it before
 * writing), then --warmup, then the measured window. A server that cannot complete them
 * all within 120 s fails the run.
 *
 * The server is not verified (SSL_VERIFY_NONE): the benchmark measures the server.
 * The generator reports its own CPU seconds (getrusage) so a reader can tell whether it,
 * not the server, was the bottleneck.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MODE_ECHO, MODE_STREAM, MODE_HANDSHAKE };
enum { ST_CONNECTING, ST_HANDSHAKE, ST_RUN, ST_CLOSING, ST_DONE };

typedef struct {
  int fd;
  int state;
  SSL *ssl;
  uint32_t woff, rgot;
  uint64_t lines;
} conn_t;

static int o_port = 0, o_conns = 100, o_size = 64, o_mode = MODE_ECHO, o_plain = 0;
static double o_duration = 2, o_warmup = 0.5;
static SSL_CTX *ctx;
static int ep;
static char *msg, *rbuf;
static char *sbuf; /* stream: whole lines, batch of them */
static int sbatch, slen;
static uint64_t counted, total_lines, failures;
static int measuring;
static int ready_conns;
static conn_t *all_conns;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void watch(conn_t *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(ep, op, c->fd, &ev);
}

static void open_conn(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(o_port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  c->state = ST_CONNECTING;
  c->woff = c->rgot = 0;
  c->ssl = NULL;
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    perror("connect");
    exit(1);
  }
  watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void close_conn(conn_t *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  if (c->ssl) SSL_free(c->ssl);
  c->ssl = NULL;
  close(c->fd);
  c->state = ST_DONE;
}

/* <0: error/closed, 0: would block, >0 bytes */
static int io_write(conn_t *c, const char *p, int n) {
  if (o_plain) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    return (int)w;
  }
  int w = SSL_write(c->ssl, p, n);
  if (w > 0) return w;
  int e = SSL_get_error(c->ssl, w);
  return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
}

static int io_read(conn_t *c, char *p, int n) {
  if (o_plain) {
    ssize_t r = recv(c->fd, p, n, 0);
    if (r < 0) return errno == EAGAIN ? 0 : -1;
    return r == 0 ? -1 : (int)r;
  }
  int r = SSL_read(c->ssl, p, n);
  if (r > 0) return r;
  int e = SSL_get_error(c->ssl, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static void start_run(conn_t *c) {
  c->state = ST_RUN;
  if (o_mode == MODE_HANDSHAKE) {
    if (measuring) counted++;
    close_conn(c);
    open_conn(c);
    return;
  }
  ready_conns++;
  if (o_mode == MODE_ECHO) {
    watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    return;
  }
  /* stream: nobody writes until every connection is ready, then all start together */
  watch(c, 0, EPOLL_CTL_MOD);
  if (ready_conns == o_conns)
    for (int i = 0; i < o_conns; i++)
      if (all_conns[i].state == ST_RUN) watch(&all_conns[i], EPOLLOUT, EPOLL_CTL_MOD);
}

static void step(conn_t *c, uint32_t events) {
  if (c->state == ST_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      failures++;
      close_conn(c);
      open_conn(c);
      return;
    }
    if (o_plain) return start_run(c);
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    c->state = ST_HANDSHAKE;
  }
  if (c->state == ST_HANDSHAKE) {
    int r = SSL_connect(c->ssl);
    if (r == 1) return start_run(c);
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) watch(c, EPOLLIN, EPOLL_CTL_MOD);
    else if (e == SSL_ERROR_WANT_WRITE) watch(c, EPOLLOUT, EPOLL_CTL_MOD);
    else {
      failures++;
      ERR_clear_error();
      close_conn(c);
      open_conn(c);
    }
    return;
  }
  if (c->state != ST_RUN) return;
  if (o_mode == MODE_STREAM) {
    /* at most 16 writes per wake-up: a server that keeps up would otherwise keep one
       connection writing for ever, and the clock would never be looked at */
    for (int k = 0; k < 16; k++) {
      int w = io_write(c, sbuf + c->woff, slen - c->woff);
      if (w < 0) {
        failures++;
        close_conn(c);
        return;
      }
      if (w == 0) return;
      c->woff += w;
      if (c->woff == (uint32_t)slen) {
        c->woff = 0;
        c->lines += sbatch;
      }
    }
    return;
  }
  /* echo: write what is left of the message, read the reply (a bounded number of
     round trips per wake-up, for the same reason) */
  (void)events;
  for (int k = 0; k < 64; k++) {
    if (c->woff < (uint32_t)o_size) {
      int w = io_write(c, msg + c->woff, o_size - c->woff);
      if (w < 0) goto dead;
      c->woff += w;
    }
    int r = io_read(c, rbuf, o_size - c->rgot);
    if (r < 0) goto dead;
    if (r == 0) return;
    c->rgot += r;
    if (c->rgot == (uint32_t)o_size) {
      if (measuring) counted++;
      c->rgot = 0;
      c->woff = 0;
    }
  }
  return;
dead:
  failures++;
  close_conn(c);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(k, "--port")) o_port = atoi(v), i++;
    else if (!strcmp(k, "--conns")) o_conns = atoi(v), i++;
    else if (!strcmp(k, "--size")) o_size = atoi(v), i++;
    else if (!strcmp(k, "--duration")) o_duration = atof(v), i++;
    else if (!strcmp(k, "--warmup")) o_warmup = atof(v), i++;
    else if (!strcmp(k, "--plain")) o_plain = 1;
    else if (!strcmp(k, "--mode")) {
      o_mode = !strcmp(v, "echo") ? MODE_ECHO : !strcmp(v, "stream") ? MODE_STREAM : !strcmp(v, "handshake") ? MODE_HANDSHAKE : -1;
      if (o_mode < 0) return fprintf(stderr, "unknown mode %s\n", v), 2;
      i++;
    } else return fprintf(stderr, "unknown argument %s\n", k), 2;
  }
  msg = malloc(o_size);
  rbuf = malloc(o_size);
  memset(msg, 'x', o_size);
  msg[o_size - 1] = '\n';
  sbatch = o_size >= 16384 ? 1 : 16384 / o_size;
  slen = sbatch * o_size;
  sbuf = malloc(slen);
  for (int i = 0; i < sbatch; i++) memcpy(sbuf + i * o_size, msg, o_size);
  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  ep = epoll_create1(0);
  conn_t *conns = calloc(o_conns, sizeof *conns);
  all_conns = conns;
  for (int i = 0; i < o_conns; i++) open_conn(&conns[i]);
  struct epoll_event evs[512];
  uint64_t t0 = now_ns();
  uint64_t warm_end = t0 + (uint64_t)(o_warmup * 1e9), end = warm_end + (uint64_t)(o_duration * 1e9);
  int all_ready = o_mode == MODE_HANDSHAKE;
  double cpu0 = 0;
  uint64_t m0 = 0;
  for (;;) {
    uint64_t t = now_ns();
    if (!all_ready) {
      if (ready_conns == o_conns) {
        all_ready = 1;
        printf("READY %.4f\n", (t - t0) / 1e9);
        fflush(stdout);
        warm_end = t + (uint64_t)(o_warmup * 1e9);
        end = warm_end + (uint64_t)(o_duration * 1e9);
      } else if (t - t0 > 120000000000ull) {
        fprintf(stderr, "only %d of %d connections completed their handshake in 120 s\n", ready_conns, o_conns);
        return 1;
      }
    }
    if (all_ready && !measuring && t >= warm_end) {
      measuring = 1;
      cpu0 = cpu_seconds();
      m0 = t;
      for (int i = 0; i < o_conns; i++) conns[i].lines = 0;
    }
    if (all_ready && t >= end) break;
    int n = epoll_wait(ep, evs, 512, 50);
    for (int i = 0; i < n; i++) step(evs[i].data.ptr, evs[i].events);
  }
  double secs = (now_ns() - m0) / 1e9;
  double cpu = cpu_seconds() - cpu0;
  if (o_mode == MODE_STREAM) {
    /* finish the current line, then close_notify + FIN: the server reads everything */
    for (int i = 0; i < o_conns; i++) {
      conn_t *c = &conns[i];
      if (c->state != ST_RUN) continue;
      while (c->woff > 0) {
        int w = io_write(c, sbuf + c->woff, slen - c->woff);
        if (w < 0) break;
        if (w == 0) {
          usleep(1000);
          continue;
        }
        c->woff += w;
        if (c->woff == (uint32_t)slen) c->lines += sbatch, c->woff = 0;
      }
    }
    for (int i = 0; i < o_conns; i++) {
      conn_t *c = &conns[i];
      if (c->state != ST_RUN) continue;
      total_lines += c->lines;
      if (c->ssl) SSL_shutdown(c->ssl);
      shutdown(c->fd, SHUT_WR);
    }
  }
  printf("{\"mode\":\"%s\",\"tls\":%s,\"conns\":%d,\"size\":%d,\"seconds\":%.4f,\"count\":%llu,\"lines\":%llu,\"failures\":%llu,\"loadgenCpu\":%.4f}\n",
         o_mode == MODE_ECHO ? "echo" : o_mode == MODE_STREAM ? "stream" : "handshake", o_plain ? "false" : "true", o_conns, o_size, secs,
         (unsigned long long)counted, (unsigned long long)total_lines, (unsigned long long)failures, cpu);
  fflush(stdout);
  if (o_mode == MODE_STREAM) {
    /* wait (bounded) for the server to close each connection: it read everything */
    uint64_t until = now_ns() + 30000000000ull;
    char b[4096];
    for (int i = 0; i < o_conns; i++) {
      conn_t *c = &conns[i];
      if (c->state != ST_RUN) continue;
      while (now_ns() < until) {
        ssize_t r = recv(c->fd, b, sizeof b, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) break;
        if (r < 0) usleep(1000);
      }
      close(c->fd);
    }
  }
  return 0;
}
