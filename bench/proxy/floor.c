/*
 * The kernel floor: the least any HTTP/1 proxy can do per request on this
 * benchmark, as a contestant to measure against (bench/proxy/pairs.sh,
 * CONTESTANTS="nginx portcullis floor"). It is not a proxy anyone should
 * run: it parses nothing and assumes every read is one whole request or
 * response, which holds for wrk's small requests and the benchmark
 * upstream's small answers on keep-alive connections over loopback.
 *
 * Per request it makes the system calls a proxy cannot avoid, and no others:
 * one recv from the client, one send upstream, one recv of the upstream's
 * answer and one send back, plus a share of one epoll_wait. Both proxies
 * under test make the same calls (strace: four per request), so what a
 * proxy spends above the floor is its own work, and floor/nginx is the best
 * ratio any proxy could reach against nginx on this machine.
 *
 * A request holding the configured key goes upstream as a fixed request
 * carrying that key's identity headers (the same headers and about the
 * same size as the real proxies send), a request for /open as the same
 * request without them, and the upstream's answer goes back unchanged. Any
 * other request gets Kong's 401 for an invalid key, from fixed bytes. So
 * the floor runs run.sh's three scenarios: valid, invalid and open.
 *
 * FLOOR_SPIN=1 makes it poll (epoll_wait with no timeout) instead of
 * sleeping when it has nothing to do: what a proxy that never sleeps would
 * reach, at the price of a whole core even when idle.
 *
 *   cc -O2 -o floor floor.c
 *   floor LISTEN_PORT UPSTREAM_PORT KEY CONSUMER CONSUMER_ID CREDENTIAL_ID
 */
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
#include <unistd.h>

#define MAX_FDS 65536

/* peer[fd]: the other end of fd's pair (client <-> its upstream connection);
 * upstream[fd]: 1 if fd is an upstream connection. */
static int peer[MAX_FDS];
static char upstream[MAX_FDS];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int tcp_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (fd < 0) die("socket");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void watch(int ep, int fd) {
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static void close_pair(int fd) {
  int other = peer[fd];
  close(fd);
  if (other >= 0) close(other);
  peer[fd] = -1;
  if (other >= 0) peer[other] = -1;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s LISTEN_PORT UPSTREAM_PORT KEY CONSUMER CONSUMER_ID CREDENTIAL_ID\n", argv[0]);
    return 2;
  }
  int listen_port = atoi(argv[1]), upstream_port = atoi(argv[2]);
  char key_field[512], request[2048];
  snprintf(key_field, sizeof key_field, "apikey: %s\r\n", argv[3]);
  char open_request[2048];
  int request_len = snprintf(request, sizeof request,
      "GET / HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
      "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n"
      "x-forwarded-host: 127.0.0.1\r\nx-forwarded-port: %d\r\n"
      "x-forwarded-path: /\r\nx-real-ip: 127.0.0.1\r\n"
      "x-consumer-id: %s\r\nx-consumer-username: %s\r\n"
      "x-credential-identifier: %s\r\nuser-agent: wrk\r\n\r\n",
      listen_port, listen_port, argv[5], argv[4], argv[6]);
  int open_request_len = snprintf(open_request, sizeof open_request,
      "GET /open HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
      "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n"
      "x-forwarded-host: 127.0.0.1\r\nx-forwarded-port: %d\r\n"
      "x-forwarded-path: /open\r\nx-real-ip: 127.0.0.1\r\n"
      "user-agent: wrk\r\n\r\n",
      listen_port, listen_port);
  int timeout = getenv("FLOOR_SPIN") ? 0 : -1;
  static const char refused[] =
      "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json; charset=utf-8\r\n"
      "content-length: 52\r\nwww-authenticate: Key realm=\"kong\"\r\n"
      "x-kong-response-latency: 0\r\nserver: floor\r\n\r\n"
      "{\n  \"message\":\"Invalid authentication credentials\"\n}";

  int lfd = tcp_socket(), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = loopback(listen_port);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  watch(ep, lfd);
  memset(peer, -1, sizeof peer);

  static char buf[65536];
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0 || c >= MAX_FDS) { if (c >= 0) close(c); continue; }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* One upstream connection per client connection, kept alive: what a
         * pool settles into under a steady 64-connection load. */
        int u = tcp_socket();
        struct sockaddr_in up = loopback(upstream_port);
        if (u >= MAX_FDS || connect(u, (struct sockaddr *)&up, sizeof up) < 0) { close(u); close(c); continue; }
        peer[c] = u; peer[u] = c; upstream[c] = 0; upstream[u] = 1;
        watch(ep, c);
        watch(ep, u);
        continue;
      }
      ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        close_pair(fd);
        continue;
      }
      if (upstream[fd]) {
        send(peer[fd], buf, got, MSG_NOSIGNAL);
      } else if (memmem(buf, got, key_field, strlen(key_field))) {
        send(peer[fd], request, request_len, MSG_NOSIGNAL);
      } else if (got > 9 && memcmp(buf, "GET /open", 9) == 0) {
        send(peer[fd], open_request, open_request_len, MSG_NOSIGNAL);
      } else {
        send(fd, refused, sizeof refused - 1, MSG_NOSIGNAL);
      }
    }
  }
}
