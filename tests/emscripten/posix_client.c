/*
 * An ordinary blocking sockets program, built with Emscripten's POSIX socket proxy
 * (-lwebsocket.js -sPROXY_POSIX_SOCKETS -pthread -sPROXY_TO_PTHREAD). It runs each step the test asks for
 * and prints one line per result for the test to check.
 *
 * Usage: posix_client BRIDGE_URL ECHO_NAME ECHO_PORT DENIED_IP DENIED_PORT REFUSED_PORT DENIED_NAME
 *                     PRIVATE_NAME LISTEN_PORT UDP_ECHO_PORT
 */
#include <arpa/inet.h>
#include <emscripten.h>
#include <emscripten/posix_socket.h>
#include <emscripten/threading.h>
#include <emscripten/websocket.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int connect_ip(const char *ip, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    shutdown(fd, SHUT_RDWR);
    errno = e;
    return -1;
  }
  return fd;
}

static int recv_all(int fd, char *buf, size_t want) {
  size_t got = 0;
  while (got < want) {
    ssize_t n = recv(fd, buf + got, want - got, 0);
    if (n <= 0) return (int)got;
    got += (size_t)n;
  }
  return (int)got;
}

int main(int argc, char **argv) {
  if (argc < 11) {
    printf("usage: see source\n");
    return 1;
  }
  EMSCRIPTEN_WEBSOCKET_T bridge = emscripten_init_websocket_to_posix_socket_bridge(argv[1]);
  unsigned short ready = 0;
  for (int i = 0; i < 100 && ready == 0; i++) {
    emscripten_websocket_get_ready_state(bridge, &ready);
    emscripten_thread_sleep(50);
  }
  printf("BRIDGE ready=%d\n", ready);

  /* getaddrinfo through the proxy, then a blocking connect/send/recv to what it answered. */
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(argv[2], argv[3], &hints, &res);
  char ip[64] = "";
  if (gai == 0 && res) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
    printf("GAI ok %s port=%d\n", ip, ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port));
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
      printf("CONNECT ok fd=%d\n", fd);
      /* 3.1.6's client sends getsockname() as an empty message; the proxy answers instead of leaving it hanging. */
      struct sockaddr_in me;
      socklen_t melen = sizeof me;
      int g = getsockname(fd, (struct sockaddr *)&me, &melen);
      printf("GETSOCKNAME ret=%d is_EOPNOTSUPP=%d\n", g, g == -1 && errno == EOPNOTSUPP);
      const char msg[] = "hello through the posix proxy";
      ssize_t n = send(fd, msg, sizeof msg - 1, 0);
      char buf[128] = {0};
      int r = recv_all(fd, buf, sizeof msg - 1);
      printf("ECHO sent=%zd got=%d %s\n", n, r, buf);
      /* A larger transfer in pieces: 200000 bytes out, the same back. */
      static char big[200000], back[200000];
      for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + 3);
      size_t off = 0;
      while (off < sizeof big) {
        ssize_t s = send(fd, big + off, sizeof big - off > 50000 ? 50000 : sizeof big - off, 0);
        if (s <= 0) break;
        off += (size_t)s;
      }
      r = recv_all(fd, back, sizeof back);
      printf("BIG sent=%zu got=%d same=%d\n", off, r, r == (int)sizeof big && memcmp(big, back, sizeof big) == 0);
      shutdown(fd, SHUT_RDWR);
    } else {
      printf("CONNECT failed errno=%d %s\n", errno, strerror(errno));
    }
    freeaddrinfo(res);
  } else {
    printf("GAI failed ret=%d\n", gai);
  }

  /* A target the policy denies: EACCES. */
  int fd = connect_ip(argv[4], atoi(argv[5]));
  printf("DENIED ret=%d errno=%d is_EACCES=%d %s\n", fd, errno, errno == EACCES, strerror(errno));

  /* Nothing listens there: ECONNREFUSED, as without wasmnet. */
  fd = connect_ip("127.0.0.1", atoi(argv[6]));
  printf("REFUSED ret=%d errno=%d is_ECONNREFUSED=%d %s\n", fd, errno, errno == ECONNREFUSED, strerror(errno));

  /* Names: one the policy denies by name, one that resolves into a denied range. */
  res = NULL;
  gai = getaddrinfo(argv[7], "80", &hints, &res);
  printf("GAI_DENIED ret=%d is_EAI_FAIL=%d %s\n", gai, gai == EAI_FAIL, gai_strerror(gai));
  gai = getaddrinfo(argv[8], "80", &hints, &res);
  printf("GAI_PRIVATE ret=%d is_EAI_FAIL=%d\n", gai, gai == EAI_FAIL);

  /* UDP: sendto and recvfrom through the proxy. */
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in ua;
  memset(&ua, 0, sizeof ua);
  ua.sin_family = AF_INET;
  ua.sin_port = htons((unsigned short)atoi(argv[10]));
  inet_pton(AF_INET, "127.0.0.1", &ua.sin_addr);
  const char dgram[] = "udp through the posix proxy";
  ssize_t us = sendto(u, dgram, sizeof dgram - 1, 0, (struct sockaddr *)&ua, sizeof ua);
  char ubuf[64] = {0};
  struct sockaddr_in from;
  socklen_t fromlen = sizeof from;
  ssize_t ur = recvfrom(u, ubuf, sizeof ubuf - 1, 0, (struct sockaddr *)&from, &fromlen);
  printf("UDP sent=%zd got=%zd from_port=%d %s\n", us, ur, ntohs(from.sin_port), ubuf);
  shutdown(u, SHUT_RDWR);

  /* A server: bind, listen, accept one connection, answer in upper case. */
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[9]));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  int b = bind(ls, (struct sockaddr *)&a, sizeof a);
  int l = listen(ls, 4);
  printf("LISTENING bind=%d listen=%d port=%s\n", b, l, argv[9]);
  fflush(stdout);
  int c = accept(ls, NULL, NULL);
  if (c >= 0) {
    char buf[64] = {0};
    ssize_t n = recv(c, buf, sizeof buf - 1, 0);
    for (ssize_t i = 0; i < n; i++) buf[i] = (char)(buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 : buf[i]);
    send(c, buf, (size_t)n, 0);
    shutdown(c, SHUT_RDWR);
    printf("SERVED %s\n", buf);
  } else {
    printf("ACCEPT failed errno=%d %s\n", errno, strerror(errno));
  }
  shutdown(ls, SHUT_RDWR);
  printf("DONE\n");
  return 0;
}
