/*
 * http_client.c — fetches http://HOST:PORT/PATH with HTTP/1.1 over a real TCP socket and prints the
 * response (status line, headers, body) to stdout. In the browser the socket goes through wasmnet.
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -o http_client.wasm http_client.c
 *   usage: http_client HOST PORT [PATH]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "wasix_sockets.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s HOST PORT [PATH]\n", argv[0]);
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  const char *path = argc > 3 ? argv[3] : "/";
  setvbuf(stdout, NULL, _IONBF, 0);

  struct sockaddr_in addr;
  if (wasix_lookup_ipv4(host, (uint16_t)port, &addr) < 0) {
    printf("resolve failed: %s\n", strerror(errno));
    return 1;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    printf("socket failed: %s\n", strerror(errno));
    return 1;
  }
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    printf("connect failed: %s (errno %d)\n", strerror(errno), errno);
    return 1;
  }
  char request[512];
  int len = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: wasmnet-wasix-example\r\nConnection: close\r\n\r\n",
                     path, host, port);
  for (int off = 0; off < len;) {
    ssize_t n = send(fd, request + off, (size_t)(len - off), 0);
    if (n < 0) {
      printf("send failed: %s\n", strerror(errno));
      return 1;
    }
    off += (int)n;
  }
  char buf[4096];
  size_t total = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      printf("recv failed: %s\n", strerror(errno));
      return 1;
    }
    if (n == 0) break;
    fwrite(buf, 1, (size_t)n, stdout);
    total += (size_t)n;
  }
  close(fd);
  printf("\n[http_client] received %zu bytes\n", total);
  return 0;
}
