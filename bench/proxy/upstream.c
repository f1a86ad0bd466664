/*
 * The benchmark's upstream: answers every GET with 200 and a body naming
 * the identity fields the proxy sent (X-Consumer-Username, X-Consumer-ID,
 * X-Credential-Identifier), as upstream.conf's nginx does, for the
 * functional check to see through every contestant.
 *
 * Why not nginx: the upstream shares the load CPU with wrk, and nginx's
 * `return 200` took ~6 µs of that core per request, about half of it
 * (docs/benchmarks.md, "A lighter upstream"). With the load CPU saturated,
 * every proxy's rate was set by wrk and the upstream instead of by the proxy
 * under test. This server does one recv and one send per request and
 * little else, so more of the load CPU is left for wrk.
 *
 * It is a benchmark tool, not a web server: single-threaded epoll,
 * keep-alive, pipelined requests answered with one send, `Connection:
 * close` honoured. A request with a body, a head over 16 KB or a send the
 * socket cannot take at once closes the connection (none happen here:
 * the load is small GETs over loopback).
 *
 *   cc -O2 -o upstream upstream.c
 *   upstream PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define HEAD_MAX 16384
#define VALUE_MAX 256

struct conn {
  size_t len;           /* bytes of unanswered requests in buf */
  char buf[HEAD_MAX];
};
static struct conn *conns[MAX_FDS];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void drop(int fd) {
  free(conns[fd]);
  conns[fd] = NULL;
  close(fd);
}

/* The Date field's value, formatted again only when the second changes. */
static const char *date_now(void) {
  static char date[64];
  static time_t last = -1;
  time_t now = time(NULL);
  if (now != last) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    last = now;
  }
  return date;
}

/* Copies the value of the field `name` (lower case, with its colon) in the
 * head [line, end) into out, trimmed; empty if absent. */
static void field(const char *head, const char *end, const char *name, char *out) {
  size_t name_len = strlen(name);
  out[0] = '\0';
  for (const char *line = head; line < end;) {
    const char *eol = memchr(line, '\n', end - line);
    if (!eol) eol = end;
    if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0) {
      const char *v = line + name_len, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      size_t n = ve - v < VALUE_MAX - 1 ? (size_t)(ve - v) : VALUE_MAX - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return;
    }
    line = eol + 1;
  }
}

/* Appends the answer to one request head [head, end) to out; returns its
 * length, or -1 to close the connection (a body, or no room). *close_after
 * is set when the client asked to close. */
static int answer(const char *head, const char *end, char *out, size_t room, int *close_after) {
  char user[VALUE_MAX], id[VALUE_MAX], cred[VALUE_MAX], value[VALUE_MAX];
  field(head, end, "content-length:", value);
  if (value[0] && strcmp(value, "0") != 0) return -1;
  field(head, end, "transfer-encoding:", value);
  if (value[0]) return -1;
  field(head, end, "connection:", value);
  *close_after = strcasecmp(value, "close") == 0;
  field(head, end, "x-consumer-username:", user);
  field(head, end, "x-consumer-id:", id);
  field(head, end, "x-credential-identifier:", cred);
  char body[3 * VALUE_MAX + 32];
  int body_len = snprintf(body, sizeof body, "user=%s id=%s cred=%s\n", user, id, cred);
  int n = snprintf(out, room,
      "HTTP/1.1 200 OK\r\nServer: upstream\r\nDate: %s\r\n"
      "Content-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s",
      date_now(), body_len, *close_after ? "Connection: close\r\n" : "", body);
  return n < 0 || (size_t)n >= room ? -1 : n;
}

/* Reads what fd has, answers every whole request in it with one send. */
static void serve(int fd) {
  struct conn *c = conns[fd];
  ssize_t got = recv(fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
  if (got <= 0) {
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    drop(fd);
    return;
  }
  c->len += got;
  static char out[65536];
  size_t out_len = 0, used = 0;
  int close_after = 0;
  for (;;) {
    char *head = c->buf + used;
    char *stop = memmem(head, c->len - used, "\r\n\r\n", 4);
    if (!stop) break;
    int n = answer(head, stop + 2, out + out_len, sizeof out - out_len, &close_after);
    if (n < 0) { drop(fd); return; }
    out_len += n;
    used = stop + 4 - c->buf;
    if (close_after) break;
  }
  if (used == 0 && c->len == sizeof c->buf) { drop(fd); return; } /* a head over 16 KB */
  memmove(c->buf, c->buf + used, c->len - used);
  c->len -= used;
  if (out_len && send(fd, out, out_len, MSG_NOSIGNAL) != (ssize_t)out_len) { drop(fd); return; }
  if (close_after) drop(fd);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  if (lfd < 0) die("socket");
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");

  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd != lfd) {
        if (conns[fd]) serve(fd);
        continue;
      }
      int c;
      while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        struct conn *state = c < MAX_FDS ? malloc(sizeof *state) : NULL;
        struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
        if (!state || epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0) {
          free(state);
          close(c);
          continue;
        }
        state->len = 0;
        conns[c] = state;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
    }
  }
}
