/*
 * io_uring model of the reference server, raw syscalls (no liburing): multishot accept,
 * multishot recv from a provided-buffer ring, one send in flight per connection with the
 * rest queued in the connection's output buffer. Included by ref_server.c.
 */
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define U_ENTRIES 4096
#define U_CQ_ENTRIES 65536
#define U_BUFS 4096
#define U_BUFSZ 4096
#define U_BGID 7

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

static int u_fd;
static unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
static unsigned *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static unsigned sq_local_tail, to_submit;
static struct io_uring_buf_ring *bring;
static char *bufmem;
static unsigned short bring_tail;
static uint32_t *u_gen;       /* per fd generation, to drop stale completions */
static uint8_t *u_sending;    /* per fd: a send is in flight */
static int u_gen_cap;

static int sys_setup(unsigned entries, struct io_uring_params *p) { return (int)syscall(__NR_io_uring_setup, entries, p); }
static int sys_enter(unsigned submit, unsigned min, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, u_fd, submit, min, flags, NULL, 0);
}
static int sys_register(unsigned op, void *arg, unsigned n) { return (int)syscall(__NR_io_uring_register, u_fd, op, arg, n); }

static void u_grow(int fd) {
  if (fd < u_gen_cap) return;
  int nc = u_gen_cap ? u_gen_cap : 1024;
  while (nc <= fd) nc *= 2;
  u_gen = realloc(u_gen, sizeof(uint32_t) * (size_t)nc);
  u_sending = realloc(u_sending, (size_t)nc);
  memset(u_gen + u_gen_cap, 0, sizeof(uint32_t) * (size_t)(nc - u_gen_cap));
  memset(u_sending + u_gen_cap, 0, (size_t)(nc - u_gen_cap));
  u_gen_cap = nc;
}
static uint64_t u_data(int fd, int op) { return ((uint64_t)(uint32_t)fd << 32) | ((uint64_t)(u_gen[fd] & 0xffffff) << 8) | (uint64_t)op; }

static struct io_uring_sqe *u_sqe(void) {
  unsigned head = __atomic_load_n(sq_head, __ATOMIC_ACQUIRE);
  if (sq_local_tail - head >= U_ENTRIES) {
    sys_enter(to_submit, 0, 0);
    to_submit = 0;
    head = __atomic_load_n(sq_head, __ATOMIC_ACQUIRE);
  }
  unsigned idx = sq_local_tail & *sq_mask;
  struct io_uring_sqe *s = &sqes[idx];
  memset(s, 0, sizeof *s);
  sq_array[idx] = idx;
  sq_local_tail++;
  __atomic_store_n(sq_tail, sq_local_tail, __ATOMIC_RELEASE);
  to_submit++;
  return s;
}
static void u_accept(int lfd) {
  struct io_uring_sqe *s = u_sqe();
  s->opcode = IORING_OP_ACCEPT;
  s->fd = lfd;
  s->ioprio = IORING_ACCEPT_MULTISHOT;
  s->user_data = u_data(lfd, OP_ACCEPT);
}
static void u_recv(int fd) {
  struct io_uring_sqe *s = u_sqe();
  s->opcode = IORING_OP_RECV;
  s->fd = fd;
  s->ioprio = IORING_RECV_MULTISHOT;
  s->flags = IOSQE_BUFFER_SELECT;
  s->buf_group = U_BGID;
  s->user_data = u_data(fd, OP_RECV);
}
/* Send the in-flight buffer from floff; when it is empty, swap the queued output in first. */
static void u_send(conn_t *c) {
  if (c->floff >= c->fllen) {
    char *t = c->fl;
    size_t tc = c->flcap;
    c->fl = c->out;
    c->flcap = c->outcap;
    c->floff = c->outoff;
    c->fllen = c->outlen;
    c->out = t;
    c->outcap = tc;
    c->outoff = c->outlen = 0;
    if (c->floff >= c->fllen) return;
  }
  struct io_uring_sqe *s = u_sqe();
  s->opcode = IORING_OP_SEND;
  s->fd = c->fd;
  s->addr = (uint64_t)(uintptr_t)(c->fl + c->floff);
  s->len = (uint32_t)(c->fllen - c->floff);
  s->msg_flags = MSG_NOSIGNAL;
  s->user_data = u_data(c->fd, OP_SEND);
  u_sending[c->fd] = 1;
}
static void u_buf_return(unsigned bid) {
  unsigned mask = U_BUFS - 1;
  struct io_uring_buf *b = &bring->bufs[bring_tail & mask];
  b->addr = (uint64_t)(uintptr_t)(bufmem + (size_t)bid * U_BUFSZ);
  b->len = U_BUFSZ;
  b->bid = (unsigned short)bid;
  bring_tail++;
  __atomic_store_n(&bring->tail, bring_tail, __ATOMIC_RELEASE);
}
static void u_close(conn_t *c) {
  int fd = c->fd;
  close(fd);
  u_gen[fd]++;
  u_sending[fd] = 0;
  if (c->kind == 0) clients_now--;
  conn_free(c);
}

static int run_uring(int lfd, int qfd, int port, int qport) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE;
  p.cq_entries = U_CQ_ENTRIES;
  u_fd = sys_setup(U_ENTRIES, &p);
  if (u_fd < 0) die("io_uring_setup");
  size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    if (cq_sz > sq_sz) sq_sz = cq_sz;
    cq_sz = sq_sz;
  }
  char *sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u_fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) die("mmap sq");
  char *cq = (p.features & IORING_FEAT_SINGLE_MMAP)
                 ? sq
                 : mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u_fd, IORING_OFF_CQ_RING);
  if (cq == MAP_FAILED) die("mmap cq");
  sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u_fd,
              IORING_OFF_SQES);
  if (sqes == MAP_FAILED) die("mmap sqes");
  sq_head = (unsigned *)(sq + p.sq_off.head);
  sq_tail = (unsigned *)(sq + p.sq_off.tail);
  sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  sq_array = (unsigned *)(sq + p.sq_off.array);
  cq_head = (unsigned *)(cq + p.cq_off.head);
  cq_tail = (unsigned *)(cq + p.cq_off.tail);
  cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  sq_local_tail = *sq_tail;

  /* provided-buffer ring */
  bring = mmap(NULL, U_BUFS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (bring == MAP_FAILED) die("mmap buf ring");
  bufmem = malloc((size_t)U_BUFS * U_BUFSZ);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)bring;
  reg.ring_entries = U_BUFS;
  reg.bgid = U_BGID;
  if (sys_register(IORING_REGISTER_PBUF_RING, &reg, 1) < 0) die("register pbuf ring");
  for (unsigned i = 0; i < U_BUFS; i++) u_buf_return(i);

  u_grow(lfd > qfd ? lfd : qfd);
  conn_new(lfd, 2);
  u_accept(lfd);
  if (qfd >= 0) {
    conn_new(qfd, 3);
    u_accept(qfd);
  }
  printf("READY %d %d\n", port, qfd >= 0 ? qport : -1);
  fflush(stdout);

  while (!stop_flag) {
    int r = sys_enter(to_submit, 1, IORING_ENTER_GETEVENTS);
    to_submit = 0;
    if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) die("io_uring_enter");
    unsigned head = *cq_head, tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; head++) {
      struct io_uring_cqe *e = &cqes[head & *cq_mask];
      uint64_t ud = e->user_data;
      int res = e->res;
      unsigned fl = e->flags;
      int fd = (int)(ud >> 32), op = (int)(ud & 0xff);
      uint32_t gen = (uint32_t)((ud >> 8) & 0xffffff);
      int has_buf = (fl & IORING_CQE_F_BUFFER) != 0;
      unsigned bid = fl >> IORING_CQE_BUFFER_SHIFT;
      conn_t *c = fd < table_cap ? table[fd] : NULL;
      int stale = !c || (u_gen[fd] & 0xffffff) != gen;
      if (op == OP_ACCEPT) {
        if (res >= 0) {
          int cfd = res;
          int one = 1;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          u_grow(cfd);
          conn_t *nc = conn_new(cfd, c && c->kind == 3 ? 1 : 0);
          if (nc->kind == 0) clients_now++;
          u_recv(cfd);
        }
        if (!(fl & IORING_CQE_F_MORE) && !stale) u_accept(fd);
        continue;
      }
      if (op == OP_RECV) {
        if (stale) {
          if (has_buf) u_buf_return(bid);
          continue;
        }
        if (res > 0) {
          const char *data = bufmem + (size_t)bid * U_BUFSZ;
          /* the shared handlers queue into c->out (send_or_queue never sends directly here) */
          int rc = c->kind == 0 ? on_bytes(c, data, (size_t)res) : on_query(c, data, (size_t)res);
          if (has_buf) u_buf_return(bid);
          if (rc < 0) { u_close(c); continue; }
          if (c->outlen > c->outoff && !u_sending[fd]) u_send(c);
          if (!(fl & IORING_CQE_F_MORE)) u_recv(fd);
        } else if (res == -ENOBUFS) {
          if (has_buf) u_buf_return(bid);
          u_recv(fd);
        } else {
          if (has_buf) u_buf_return(bid);
          if (fl & IORING_CQE_F_MORE) continue;
          if (u_sending[fd]) c->closing = 1;
          else u_close(c);
        }
        continue;
      }
      if (op == OP_SEND) {
        if (stale) continue;
        u_sending[fd] = 0;
        if (res < 0) { u_close(c); continue; }
        c->floff += (size_t)res;
        if (c->floff >= c->fllen) c->floff = c->fllen = 0;
        if (c->floff < c->fllen || c->outlen > c->outoff) u_send(c);
        else if (c->closing) u_close(c);
      }
    }
    __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
  }
  return 0;
}
