/*
 * echo_server.c — binds a TCP port (0 = any free one), prints "listening on port N", accepts COUNT
 * connections one after another and echoes back every byte each sends until it closes.
 * In the browser the listener lives on the wasmnet server (its policy decides what may be bound).
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -o echo_server.wasm echo_server.c
 *   usage: echo_server [ADDRESS] [PORT] [COUNT]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "wasix_sockets.h"

int main(int argc, char **argv) {
  const char *address = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 0;
  int count = argc > 3 ? atoi(argv[3]) : 1;
  setvbuf(stdout, NULL, _IONBF, 0);

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) {
    printf("socket failed: %s\n", strerror(errno));
    return 1;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
    printf("bad address %s\n", address);
    return 1;
  }
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 16) < 0) {
    printf("bind/listen failed: %s (errno %d)\n", strerror(errno), errno);
    return 1;
  }
  struct sockaddr_in local;
  socklen_t llen = sizeof local;
  getsockname(lfd, (struct sockaddr *)&local, &llen);
  printf("listening on port %d\n", ntohs(local.sin_port));

  for (int i = 0; i < count; i++) {
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int cfd = wasix_accept(lfd, (struct sockaddr *)&peer, &plen);
    if (cfd < 0) {
      printf("accept failed: %s\n", strerror(errno));
      return 1;
    }
    char ip[64];
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    printf("accepted %s:%d\n", ip, ntohs(peer.sin_port));
    char buf[4096];
    size_t total = 0;
    for (;;) {
      ssize_t n = read(cfd, buf, sizeof buf);
      if (n < 0) {
        printf("read failed: %s\n", strerror(errno));
        break;
      }
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(cfd, buf + off, (size_t)(n - off));
        if (w < 0) {
          printf("write failed: %s\n", strerror(errno));
          break;
        }
        off += w;
      }
      total += (size_t)n;
    }
    close(cfd);
    printf("echoed %zu bytes\n", total);
  }
  close(lfd);
  return 0;
}
