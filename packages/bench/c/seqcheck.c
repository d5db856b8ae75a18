/*
 * seqcheck: checks a receiver's output against what `loadgen --mode stream --seq` sent.
 *
 *   seqcheck --sent N0,N1,... [file|-]...
 *
 * Connection i sent the lines numbered 0 .. Ni-1, each carrying " c=<4 digits> s=<10 digits>"
 * (loadgen.c, seq_template). The files (or stdin, "-") are scanned as bytes for that token, so
 * any output format works: a plain log file, a journal segment with binary record headers
 * between the lines, a query answer with a timestamp prefix. Prints one JSON object:
 *   found        tokens seen
 *   distinct     distinct (connection, sequence) pairs among the lines that were sent
 *   duplicates   tokens seen more than once (found - distinct - unexpected)
 *   lost         lines sent and never seen
 *   unexpected   tokens naming a connection or sequence that was never sent
 *   out_of_order tokens whose sequence is lower than the previous one of the same connection
 * Exit status 0 whatever the result (the caller judges it); 2 on bad usage or I/O errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN_LEN 20 /* " c=DDDD s=DDDDDDDDDD" */
#define MAX_CONNS 10000

typedef struct {
  uint64_t sent;
  uint8_t *seen; /* one bit per line sent */
  uint64_t distinct;
  int64_t last; /* previous sequence seen, -1 before the first */
} conn_seen_t;

static conn_seen_t *conns;
static long nconns;
static uint64_t found, unexpected, duplicates, out_of_order, bytes;

static int digits(const char *p, int n, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < n; i++) {
    unsigned d = (unsigned char)p[i] - '0';
    if (d > 9) return 0;
    x = x * 10 + d;
  }
  *v = x;
  return 1;
}

static void record(uint64_t c, uint64_t s) {
  found++;
  if (c >= (uint64_t)nconns || s >= conns[c].sent) {
    unexpected++;
    return;
  }
  conn_seen_t *k = &conns[c];
  if ((int64_t)s < k->last) out_of_order++;
  k->last = (int64_t)s;
  uint8_t bit = (uint8_t)(1u << (s & 7));
  if (k->seen[s >> 3] & bit) {
    duplicates++;
    return;
  }
  k->seen[s >> 3] |= bit;
  k->distinct++;
}

/* Scans buf[0..len); returns how many bytes were consumed (a token that may continue past
 * the end is left for the next call unless this is the last one). */
static size_t scan(const char *buf, size_t len, int last) {
  size_t pos = 0;
  for (;;) {
    const char *p = memmem(buf + pos, len - pos, " c=", 3);
    if (!p) return last || len < TOKEN_LEN ? len : len - (TOKEN_LEN - 1);
    size_t at = (size_t)(p - buf);
    if (at + TOKEN_LEN > len) return last ? len : at;
    uint64_t c, s;
    if (digits(p + 3, 4, &c) && p[7] == ' ' && p[8] == 's' && p[9] == '=' && digits(p + 10, 10, &s)) {
      record(c, s);
      pos = at + TOKEN_LEN;
    } else {
      pos = at + 1;
    }
  }
}

static void scan_fd(int fd, const char *name) {
  static char buf[(1 << 22) + TOKEN_LEN];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "seqcheck: %s: %s\n", name, strerror(errno));
      exit(2);
    }
    bytes += (uint64_t)r;
    have += (size_t)r;
    size_t used = scan(buf, have, r == 0);
    memmove(buf, buf + used, have - used);
    have -= used;
    if (r == 0) break;
  }
}

int main(int argc, char **argv) {
  const char *sent = NULL;
  int first_file = argc;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sent") && i + 1 < argc) sent = argv[++i];
    else {
      first_file = i;
      break;
    }
  }
  if (!sent) {
    fprintf(stderr, "usage: seqcheck --sent N0,N1,... [file|-]...\n");
    return 2;
  }
  conns = calloc(MAX_CONNS, sizeof *conns);
  for (const char *p = sent; *p && nconns < MAX_CONNS;) {
    char *end;
    unsigned long long n = strtoull(p, &end, 10);
    if (end == p) {
      fprintf(stderr, "seqcheck: bad --sent list at '%s'\n", p);
      return 2;
    }
    conns[nconns].sent = n;
    conns[nconns].last = -1;
    conns[nconns].seen = calloc((size_t)(n / 8 + 1), 1);
    if (!conns[nconns].seen) {
      fprintf(stderr, "seqcheck: out of memory\n");
      return 2;
    }
    nconns++;
    p = *end == ',' ? end + 1 : end;
  }
  if (first_file == argc) scan_fd(0, "stdin");
  for (int i = first_file; i < argc; i++) {
    if (!strcmp(argv[i], "-")) {
      scan_fd(0, "stdin");
      continue;
    }
    int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "seqcheck: %s: %s\n", argv[i], strerror(errno));
      return 2;
    }
    scan_fd(fd, argv[i]);
    close(fd);
  }
  uint64_t total_sent = 0, distinct = 0;
  for (long i = 0; i < nconns; i++) {
    total_sent += conns[i].sent;
    distinct += conns[i].distinct;
  }
  printf("{\"bytes\":%llu,\"sent\":%llu,\"found\":%llu,\"distinct\":%llu,\"duplicates\":%llu,\"lost\":%llu,"
         "\"unexpected\":%llu,\"out_of_order\":%llu}\n",
         (unsigned long long)bytes, (unsigned long long)total_sent, (unsigned long long)found,
         (unsigned long long)distinct, (unsigned long long)duplicates, (unsigned long long)(total_sent - distinct),
         (unsigned long long)unexpected, (unsigned long long)out_of_order);
  return 0;
}
