/*
 * LogCaster load generator: one thread, one epoll instance, up to tens of thousands of
 * TCP connections to 127.0.0.1 / ::1. Prints one JSON object on stdout.
 *
 * Modes
 *   echo    each active connection sends --size bytes, waits for the whole echo, repeats
 *   ack     each active connection sends one line of --size bytes (newline included) and
 *           waits for "OK\n", repeats (LogCaster --ack)
 *   stream  each active connection writes whole lines as fast as the socket accepts them,
 *           never reads; at the end it finishes its current line, half-closes and waits
 *           for the server to close (so every line was read) before reporting
 *   idle    only connect --conns connections and prime each with one exchange, then report
 *           the server's RSS growth and its CPU while they idle for --duration (needs
 *           --server-pid)
 *           --seq: each line is a syslog line numbered per connection ("c=<conn> s=<n>"),
 *           and the JSON lists how many lines each connection wrote (lines_per_conn)
 *   --idle K with echo/ack adds K connections that are opened, primed once, then held open
 *   without traffic (sparse activity).
 *
 * Measurement: connect, prime (one exchange per connection, proves the server accepted it),
 * optional warm-up, then a measured window of --duration seconds or --count messages.
 * Latency is recorded per message into a log-linear histogram (64 sub-buckets per power of
 * two, < 1.6 % error). The generator measures its own CPU with getrusage and, with
 * --server-pid, the server's CPU (/proc/<pid>/stat) and memory (/proc/<pid>/status) over
 * exactly the same window.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { MODE_ECHO, MODE_ACK, MODE_STREAM, MODE_IDLE };
enum { ST_CONNECTING, ST_PRIME, ST_READY, ST_BUSY, ST_IDLE, ST_FINISH, ST_DONE, ST_DEAD };

typedef struct {
  int fd;
  int state;
  int active;      /* takes part in the measured traffic */
  uint32_t woff;   /* bytes of the current message already written */
  uint32_t rgot;   /* bytes of the current reply already read */
  uint64_t t0;     /* send time of the current message (ns) */
  uint64_t quota;  /* messages left in --count mode */
  uint64_t lines;  /* stream: whole lines written */
  int want_out;    /* EPOLLOUT currently requested */
  char *chunk;     /* stream --seq: this connection's numbered lines */
  uint64_t chunk_base; /* stream --seq: sequence number of the chunk's first line */
} conn_t;

/* ---- options ---- */
static const char *o_host = "127.0.0.1";
static int o_port = 0;
static int o_mode = MODE_ECHO;
static long o_conns = 1;
static long o_idle = 0;
static long o_size = 64;
static double o_duration = 2.0;
static double o_warmup = 0.5;
static long long o_count = 0;
static int o_server_pid = 0;
static long o_inflight = 256;
static double o_timeout = 60.0;
static double o_settle = 1.0;
static double o_connect_timeout = 30.0;
static int o_idle_ack = 0; /* idle mode: prime with an acked line instead of an echo */
static int o_seq = 0;      /* stream: syslog lines carrying "c=<conn> s=<sequence>" */

/* ---- state ---- */
static int ep;
static conn_t *conns;
static long nconns;
static char *msg;      /* one message (echo) or one line (ack) */
static char *chunk;    /* stream: many whole lines */
static long chunk_len, chunk_lines;
static char rbuf[1 << 16];
static long expect;    /* reply bytes per message */

static long n_connected, n_connect_failed, n_closed_by_peer, n_errors, n_primed;
static long n_bad_reply;
static uint64_t msgs_measured, msgs_total;
static int phase_measure, phase_stop;

/* ---- histogram ---- */
#define SUB 64
#define HBUCKETS (2 * SUB + 58 * SUB)
static uint64_t hist[HBUCKETS];
static uint64_t hist_count, hist_max, hist_min = UINT64_MAX;
static double hist_sum;

static int hindex(uint64_t v) {
  if (v < 2 * SUB) return (int)v;
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - 6; /* v >> shift in [64,127] */
  int idx = 2 * SUB + (shift - 1) * SUB + (int)((v >> shift) - SUB);
  return idx < HBUCKETS ? idx : HBUCKETS - 1;
}
static double hvalue(int idx) {
  if (idx < 2 * SUB) return idx;
  int shift = (idx - 2 * SUB) / SUB + 1;
  uint64_t sub = (uint64_t)((idx - 2 * SUB) % SUB) + SUB;
  return (double)(sub << shift) + (double)(1ULL << shift) / 2.0;
}
static void hrecord(uint64_t v) {
  hist[hindex(v)]++;
  hist_count++;
  hist_sum += (double)v;
  if (v > hist_max) hist_max = v;
  if (v < hist_min) hist_min = v;
}
static double hpercentile(double p) {
  if (!hist_count) return 0;
  uint64_t rank = (uint64_t)(p / 100.0 * (double)hist_count + 0.999999);
  if (rank < 1) rank = 1;
  uint64_t cum = 0;
  for (int i = 0; i < HBUCKETS; i++) {
    cum += hist[i];
    if (cum >= rank) {
      double v = hvalue(i);
      return v > (double)hist_max ? (double)hist_max : v;
    }
  }
  return (double)hist_max;
}

/* ---- helpers ---- */
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
static double cpu_self(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  return *user + *sys;
}
/* utime + stime of the whole server process (all threads), in seconds. */
static int server_cpu(double *user, double *sys) {
  if (!o_server_pid) return -1;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", o_server_pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  /* fields after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
  unsigned long long ut = 0, st = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  double tck = (double)sysconf(_SC_CLK_TCK);
  *user = ut / tck;
  *sys = st / tck;
  return 0;
}
static long server_status_kb(const char *key) {
  if (!o_server_pid) return -1;
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", o_server_pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, key, kl) && line[kl] == ':') {
      v = atol(line + kl + 1);
      break;
    }
  }
  fclose(f);
  return v;
}
static void die(const char *m) {
  fprintf(stderr, "loadgen: %s: %s\n", m, strerror(errno));
  exit(2);
}

static void set_events(conn_t *c, uint32_t ev) {
  struct epoll_event e = {.events = ev, .data = {.ptr = c}};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0 && errno != ENOENT) die("epoll_ctl MOD");
}
static void kill_conn(conn_t *c, int by_peer) {
  if (c->state == ST_DEAD || c->state == ST_DONE) return;
  if (by_peer) n_closed_by_peer++;
  else n_errors++;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->state = ST_DEAD;
}

static struct sockaddr_storage addr;
static socklen_t addrlen;

static void start_connect(conn_t *c) {
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket (raise ulimit -n?)");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->state = ST_CONNECTING;
  int r = connect(fd, (struct sockaddr *)&addr, addrlen);
  if (r < 0 && errno != EINPROGRESS) {
    close(fd);
    c->state = ST_DEAD;
    n_connect_failed++;
    return;
  }
  struct epoll_event e = {.events = EPOLLOUT, .data = {.ptr = c}};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl ADD");
}

/* Send (or continue sending) the current message. Returns -1 if the connection died. */
static int send_msg(conn_t *c) {
  while (c->woff < (uint32_t)o_size) {
    ssize_t w = write(c->fd, msg + c->woff, (size_t)(o_size - c->woff));
    if (w < 0) {
      if (errno == EAGAIN) {
        if (!c->want_out) { c->want_out = 1; set_events(c, EPOLLIN | EPOLLOUT); }
        return 0;
      }
      if (errno == EINTR) continue;
      kill_conn(c, errno == ECONNRESET || errno == EPIPE);
      return -1;
    }
    c->woff += (uint32_t)w;
  }
  if (c->want_out) { c->want_out = 0; set_events(c, EPOLLIN); }
  return 0;
}

static void begin_msg(conn_t *c) {
  c->woff = 0;
  c->rgot = 0;
  c->t0 = now_ns();
  c->state = c->state == ST_PRIME ? ST_PRIME : ST_BUSY;
  send_msg(c);
}

/* A whole reply arrived for connection c. */
static void on_reply(conn_t *c, uint64_t t) {
  if (c->state == ST_PRIME) {
    n_primed++;
    c->state = c->active ? ST_READY : ST_IDLE;
    return;
  }
  msgs_total++;
  if (phase_measure) {
    msgs_measured++;
    hrecord(t - c->t0);
  }
  if (o_count && phase_measure) {
    if (c->quota) c->quota--;
    if (!c->quota) { c->state = ST_READY; return; }
  }
  if (phase_stop) { c->state = ST_READY; return; }
  c->state = ST_BUSY;
  begin_msg(c);
}

/* --seq lines: an RFC 3164 syslog line of exactly --size bytes,
 *   <134>Dec  2 01:23:45 web07 app[4242]: c=0007 s=0000000000 login ok user=...\n
 * where c is the connection's index and s counts its lines from 0, so a receiver's
 * output can be checked line by line (packages/bench/c/seqcheck.c). */
#define SEQ_MIN_SIZE 60
static long seq_at; /* offset of the 10 sequence digits in a line */
static void put_digits(char *p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
}
static void seq_template(char *line, long conn) {
  char head[96];
  struct tm tm;
  time_t t = time(NULL);
  localtime_r(&t, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
  int n = snprintf(head, sizeof head, "<134>%s web%02ld app[%04ld]: c=%04ld s=0000000000 ", stamp, conn % 100,
                   4000 + conn % 1000, conn % 10000);
  static const char tail[] = "login ok user=alice src=10.1.2.3 took=12ms session=7f3a9c";
  seq_at = strstr(head, " s=") - head + 3;
  for (long i = 0; i < o_size - 1; i++) line[i] = i < n ? head[i] : tail[(i - n) % (sizeof tail - 1)];
  line[o_size - 1] = '\n';
}
static void seq_fill(conn_t *c) {
  for (long i = 0; i < chunk_lines; i++) put_digits(c->chunk + i * o_size + seq_at, c->chunk_base + (uint64_t)i, 10);
}

static void stream_write(conn_t *c) {
  const char *buf = o_seq ? c->chunk : chunk;
  for (;;) {
    /* c->woff: offset inside chunk */
    long len = chunk_len - c->woff;
    if (c->state == ST_FINISH) {
      /* finish the current line only */
      long rem = (long)(c->woff % (uint32_t)o_size);
      if (rem == 0) break;
      len = o_size - rem;
    }
    ssize_t w = write(c->fd, buf + c->woff, (size_t)len);
    if (w < 0) {
      if (errno == EAGAIN) return;
      if (errno == EINTR) continue;
      kill_conn(c, errno == ECONNRESET || errno == EPIPE);
      return;
    }
    uint32_t before = c->woff;
    c->woff += (uint32_t)w;
    uint64_t lines = c->woff / (uint32_t)o_size - before / (uint32_t)o_size;
    c->lines += lines;
    msgs_total += lines;
    if (phase_measure) msgs_measured += lines;
    if (c->woff >= (uint32_t)chunk_len) {
      c->woff = 0;
      if (o_seq) {
        c->chunk_base += (uint64_t)chunk_lines;
        seq_fill(c);
      }
    }
    if (c->state != ST_FINISH && phase_stop) c->state = ST_FINISH;
  }
  if (c->state == ST_FINISH) {
    shutdown(c->fd, SHUT_WR);
    c->state = ST_DONE; /* still registered: wait for the server's close */
    set_events(c, EPOLLIN);
  }
}

static void handle(conn_t *c, uint32_t ev) {
  if (c->state == ST_DEAD) return;
  if (c->state == ST_CONNECTING) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->state = ST_DEAD;
      n_connect_failed++;
      return;
    }
    n_connected++;
    if (o_mode == MODE_STREAM) {
      c->state = ST_READY;
      set_events(c, EPOLLIN);
      return;
    }
    c->state = ST_PRIME;
    c->want_out = 0;
    set_events(c, EPOLLIN);
    begin_msg(c);
    return;
  }
  if (o_mode == MODE_STREAM) {
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      ssize_t r = read(c->fd, rbuf, sizeof rbuf);
      if (r == 0 || (r < 0 && errno != EAGAIN)) {
        if (c->state == ST_DONE) {
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          close(c->fd);
          c->state = ST_DEAD;
          return;
        }
        kill_conn(c, 1);
        return;
      }
    }
    if ((ev & EPOLLOUT) && (c->state == ST_BUSY || c->state == ST_FINISH)) stream_write(c);
    return;
  }
  if (ev & EPOLLOUT) {
    if (send_msg(c) < 0) return;
  }
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    for (;;) {
      ssize_t r = read(c->fd, rbuf, sizeof rbuf);
      if (r < 0) {
        if (errno == EAGAIN) break;
        if (errno == EINTR) continue;
        kill_conn(c, errno == ECONNRESET);
        return;
      }
      if (r == 0) { kill_conn(c, 1); return; }
      if (o_mode == MODE_ACK && c->rgot == 0 && rbuf[0] != 'O') n_bad_reply++;
      uint64_t t = now_ns();
      c->rgot += (uint32_t)r;
      if (c->state != ST_BUSY && c->state != ST_PRIME) {
        n_bad_reply++; /* unsolicited bytes */
        c->rgot = 0;
        continue;
      }
      if (c->rgot > expect) n_bad_reply++;
      if (c->rgot >= expect) on_reply(c, t);
      if (c->state == ST_DEAD) return;
      if ((size_t)r < sizeof rbuf) break;
    }
  }
}

static void loop_once(int timeout_ms) {
  static struct epoll_event evs[1024];
  int n = epoll_wait(ep, evs, 1024, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return;
    die("epoll_wait");
  }
  for (int i = 0; i < n; i++) handle((conn_t *)evs[i].data.ptr, evs[i].events);
}

static void connect_upto(long limit, long *next, uint64_t deadline) {
  while (now_ns() < deadline) {
    long settled = (o_mode == MODE_STREAM ? n_connected : n_primed) + n_connect_failed + n_closed_by_peer + n_errors;
    long pending = *next - settled;
    while (*next < limit && pending < o_inflight) {
      start_connect(&conns[(*next)++]);
      pending++;
    }
    if (*next == limit && settled >= limit) break;
    loop_once(5);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--host 127.0.0.1] [--mode echo|ack|stream|idle] [--conns N]\n"
          "               [--idle K] [--size B] [--duration S | --count N] [--warmup S]\n"
          "               [--server-pid PID] [--inflight N] [--timeout S] [--settle S] [--seq]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
    if (OPT("--host")) o_host = v;
    else if (OPT("--port")) o_port = atoi(v);
    else if (OPT("--mode")) {
      if (!strcmp(v, "echo")) o_mode = MODE_ECHO;
      else if (!strcmp(v, "ack")) o_mode = MODE_ACK;
      else if (!strcmp(v, "stream")) o_mode = MODE_STREAM;
      else if (!strcmp(v, "idle")) o_mode = MODE_IDLE;
      else usage();
    } else if (OPT("--conns")) o_conns = atol(v);
    else if (OPT("--idle")) o_idle = atol(v);
    else if (OPT("--size")) o_size = atol(v);
    else if (OPT("--duration")) o_duration = atof(v);
    else if (OPT("--warmup")) o_warmup = atof(v);
    else if (OPT("--count")) o_count = atoll(v);
    else if (OPT("--server-pid")) o_server_pid = atoi(v);
    else if (OPT("--inflight")) o_inflight = atol(v);
    else if (OPT("--timeout")) o_timeout = atof(v);
    else if (OPT("--settle")) o_settle = atof(v);
    else if (OPT("--connect-timeout")) o_connect_timeout = atof(v);
    else if (OPT("--idle-proto")) o_idle_ack = !strcmp(v, "ack");
    else if (!strcmp(a, "--seq")) o_seq = 1;
    else usage();
  }
  if (!o_port || o_conns < 0 || o_size < 1 || o_size > (1 << 20)) usage();
  if (o_seq && (o_mode != MODE_STREAM || o_size < SEQ_MIN_SIZE || o_conns > 10000)) {
    fprintf(stderr, "loadgen: --seq needs --mode stream, --size >= %d and at most 10000 connections\n", SEQ_MIN_SIZE);
    exit(2);
  }
  if (o_mode == MODE_IDLE) { o_idle = o_conns; o_conns = 0; }
  int lines = o_mode == MODE_ACK || o_mode == MODE_STREAM || (o_mode == MODE_IDLE && o_idle_ack);
  if (lines && o_size < 2) o_size = 2;
  memset(&addr, 0, sizeof addr);
  if (strchr(o_host, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&addr;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)o_port);
    if (inet_pton(AF_INET6, o_host, &s6->sin6_addr) != 1) usage();
    addrlen = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&addr;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)o_port);
    if (inet_pton(AF_INET, o_host, &s4->sin_addr) != 1) usage();
    addrlen = sizeof *s4;
  }

  msg = malloc((size_t)o_size);
  for (long i = 0; i < o_size; i++) msg[i] = (char)('a' + i % 26);
  if (lines) msg[o_size - 1] = '\n';
  expect = (o_mode == MODE_ACK || (o_mode == MODE_IDLE && o_idle_ack)) ? 3 : o_size;
  chunk_lines = (1 << 16) / o_size;
  if (chunk_lines < 1) chunk_lines = 1;
  chunk_len = chunk_lines * o_size;
  chunk = malloc((size_t)chunk_len);
  for (long i = 0; i < chunk_lines; i++) memcpy(chunk + i * o_size, msg, (size_t)o_size);

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  nconns = o_conns + o_idle;
  conns = calloc((size_t)(nconns ? nconns : 1), sizeof(conn_t));
  /* ---- connect + prime ---- */
  uint64_t t_start = now_ns();
  uint64_t deadline = t_start + (uint64_t)(o_connect_timeout * 1e9);
  /* idle connections first, then the active ones */
  for (long i = 0; i < nconns; i++) conns[i].active = i >= o_idle;
  if (o_seq) {
    for (long i = 0; i < nconns; i++) {
      conn_t *c = &conns[i];
      c->chunk = malloc((size_t)chunk_len);
      if (!c->chunk) die("malloc");
      seq_template(c->chunk, i);
      for (long k = 1; k < chunk_lines; k++) memcpy(c->chunk + k * o_size, c->chunk, (size_t)o_size);
      seq_fill(c);
    }
  }
  long next = 0;
  long rss_before = -1, rss_base_conns = 0;
  if (o_mode == MODE_IDLE && o_server_pid) {
    /* a few connections first, so the baseline includes whatever the first connection costs */
    rss_base_conns = nconns >= 100 ? 10 : 1;
    connect_upto(rss_base_conns, &next, deadline);
    uint64_t until = now_ns() + (uint64_t)(o_settle * 1e9);
    while (now_ns() < until) loop_once(20);
  }
  rss_before = server_status_kb("VmRSS");
  connect_upto(nconns, &next, deadline);
  uint64_t t_connected = now_ns();
  long rss_after = -1;
  if (o_idle > 0 && o_server_pid) {
    /* let the server settle (GC, lazy allocations), then read its RSS */
    uint64_t until = now_ns() + (uint64_t)(o_settle * 1e9);
    while (now_ns() < until) loop_once(20);
    rss_after = server_status_kb("VmRSS");
  }

  double cu0 = 0, cs0 = 0, cu1 = 0, cs1 = 0, su0 = 0, ss0 = 0, su1 = 0, ss1 = 0;
  int have_server_cpu = 0;
  uint64_t t_m0 = now_ns(), t_m1 = t_m0;
  double drain_s = 0;
  long live_active = 0;
  for (long i = 0; i < nconns; i++)
    if (conns[i].active && conns[i].state != ST_DEAD) live_active++;

  if (o_mode != MODE_IDLE && live_active > 0) {
    /* ---- start traffic on every active connection ---- */
    uint64_t per = 0;
    if (o_count) per = (uint64_t)((o_count + live_active - 1) / live_active);
    for (long i = 0; i < nconns; i++) {
      conn_t *c = &conns[i];
      if (!c->active || c->state == ST_DEAD) continue;
      c->quota = per;
      if (o_mode == MODE_STREAM) {
        c->state = ST_BUSY;
        c->woff = 0;
        set_events(c, EPOLLIN | EPOLLOUT);
      } else {
        c->state = ST_BUSY;
        begin_msg(c);
      }
    }
    /* warm-up (not recorded; skipped in --count mode so the count stays exact) */
    if (!o_count && o_warmup > 0) {
      uint64_t until = now_ns() + (uint64_t)(o_warmup * 1e9);
      while (now_ns() < until) loop_once(5);
    }
    phase_measure = 1;
    cpu_self(&cu0, &cs0);
    have_server_cpu = server_cpu(&su0, &ss0) == 0;
    t_m0 = now_ns();
    uint64_t hard = t_m0 + (uint64_t)(o_timeout * 1e9);
    if (o_count) {
      for (;;) {
        int busy = 0;
        for (long i = 0; i < nconns && !busy; i++) busy = conns[i].active && conns[i].state == ST_BUSY;
        if (!busy || now_ns() > hard) break;
        loop_once(5);
      }
    } else {
      uint64_t until = t_m0 + (uint64_t)(o_duration * 1e9);
      while (now_ns() < until) loop_once(2);
    }
    t_m1 = now_ns();
    cpu_self(&cu1, &cs1);
    if (have_server_cpu) have_server_cpu = server_cpu(&su1, &ss1) == 0;
    phase_measure = 0;
    phase_stop = 1;
    if (o_mode == MODE_STREAM) {
      /* finish the current line, half-close, wait until the server has read everything and closed */
      for (long i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        if (c->state == ST_BUSY) {
          c->state = ST_FINISH;
          stream_write(c);
        }
      }
      uint64_t until = now_ns() + (uint64_t)(o_timeout * 1e9);
      for (;;) {
        int open = 0;
        for (long i = 0; i < nconns && !open; i++) open = conns[i].state == ST_FINISH || conns[i].state == ST_DONE;
        if (!open || now_ns() > until) break;
        loop_once(5);
      }
      drain_s = (now_ns() - t_m1) / 1e9;
    } else {
      /* let in-flight messages complete (bounded) so the server sees clean closes */
      uint64_t until = now_ns() + 2000000000ULL;
      for (;;) {
        int busy = 0;
        for (long i = 0; i < nconns && !busy; i++) busy = conns[i].state == ST_BUSY;
        if (!busy || now_ns() > until) break;
        loop_once(5);
      }
    }
  } else if (o_mode == MODE_IDLE && o_server_pid) {
    /* the server's CPU while every connection idles for --duration */
    have_server_cpu = server_cpu(&su0, &ss0) == 0;
    t_m0 = now_ns();
    uint64_t until = t_m0 + (uint64_t)(o_duration * 1e9);
    while (now_ns() < until) loop_once(20);
    t_m1 = now_ns();
    if (have_server_cpu) have_server_cpu = server_cpu(&su1, &ss1) == 0;
  }
  long hwm = server_status_kb("VmHWM");
  long rss_end = server_status_kb("VmRSS");
  for (long i = 0; i < nconns; i++)
    if (conns[i].state != ST_DEAD) close(conns[i].fd);

  double secs = (t_m1 - t_m0) / 1e9;
  double client_cpu = (cu1 - cu0) + (cs1 - cs0);
  double util = secs > 0 ? client_cpu / secs : 0;
  uint64_t lines_sent = 0;
  for (long i = 0; i < nconns; i++) lines_sent += conns[i].lines;
  static const char *mode_names[] = {"echo", "ack", "stream", "idle"};
  printf("{\"mode\":\"%s\",\"conns\":%ld,\"idle\":%ld,\"size\":%ld,", mode_names[o_mode], o_conns, o_idle, o_size);
  printf("\"connected\":%ld,\"connect_failed\":%ld,\"closed_by_peer\":%ld,\"errors\":%ld,\"bad_replies\":%ld,",
         n_connected, n_connect_failed, n_closed_by_peer, n_errors, n_bad_reply);
  printf("\"connect_seconds\":%.4f,\"seconds\":%.4f,\"messages\":%llu,\"messages_total\":%llu,\"msgs_per_sec\":%.1f,",
         (t_connected - t_start) / 1e9, secs, (unsigned long long)msgs_measured, (unsigned long long)msgs_total,
         secs > 0 ? msgs_measured / secs : 0.0);
  if (o_mode == MODE_STREAM)
    printf("\"lines_sent\":%llu,\"drain_seconds\":%.4f,", (unsigned long long)lines_sent, drain_s);
  if (o_seq) {
    /* connection i wrote the lines numbered 0 .. lines_per_conn[i]-1 */
    printf("\"lines_per_conn\":[");
    for (long i = 0; i < nconns; i++) printf("%s%llu", i ? "," : "", (unsigned long long)conns[i].lines);
    printf("],");
  }
  printf("\"latency_us\":{\"count\":%llu,\"min\":%.2f,\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f},",
         (unsigned long long)hist_count, hist_count ? hist_min / 1e3 : 0.0, hist_count ? hist_sum / hist_count / 1e3 : 0.0,
         hpercentile(50) / 1e3, hpercentile(90) / 1e3, hpercentile(99) / 1e3, hpercentile(99.9) / 1e3, hist_max / 1e3);
  printf("\"client_cpu\":{\"user\":%.3f,\"sys\":%.3f,\"utilization\":%.3f,\"saturated\":%s},", cu1 - cu0, cs1 - cs0, util,
         util >= 0.9 ? "true" : "false");
  if (have_server_cpu)
    printf("\"server_cpu\":{\"user\":%.3f,\"sys\":%.3f,\"utilization\":%.3f},", su1 - su0, ss1 - ss0,
           secs > 0 ? ((su1 - su0) + (ss1 - ss0)) / secs : 0.0);
  printf("\"unanswered\":%ld,\"rss_base_conns\":%ld,", n_connected - n_primed - n_closed_by_peer - n_errors < 0 || o_mode == MODE_STREAM
                                       ? 0
                                       : n_connected - n_primed - n_closed_by_peer - n_errors,
         rss_base_conns);
  printf("\"server_rss_kb\":{\"before\":%ld,\"idle_held\":%ld,\"end\":%ld,\"hwm\":%ld}}\n", rss_before, rss_after, rss_end,
         hwm);
  if (util >= 0.9)
    fprintf(stderr, "loadgen: warning: client CPU %.0f%% of one core — the load generator may be the bottleneck\n",
            util * 100);
  return 0;
}
