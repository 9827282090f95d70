/*
 * Test program for UDP: sendto/recvfrom on an unconnected socket, then connect + send/recv, then a
 * datagram cut short by a small buffer. Prints one line per step.
 *   usage: udp_client PORT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "wasix_sockets.h"

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  int port = atoi(argv[1]);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    printf("socket failed: %s\n", strerror(errno));
    return 1;
  }
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ssize_t n = sendto(fd, "first datagram", 14, 0, (struct sockaddr *)&to, sizeof to);
  printf("sendto %zd\n", n);
  char buf[64];
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &flen);
  if (n < 0) {
    printf("recvfrom failed: %s\n", strerror(errno));
    return 1;
  }
  buf[n] = 0;
  char ip[32];
  inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
  printf("recvfrom %s from %s:%d\n", buf, ip, ntohs(from.sin_port) == port ? 1 : 0);
  if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
    printf("connect failed: %s\n", strerror(errno));
    return 1;
  }
  send(fd, "second", 6, 0);
  n = recv(fd, buf, sizeof buf - 1, 0);
  buf[n > 0 ? n : 0] = 0;
  printf("recv %s\n", buf);
  send(fd, "a-longer-datagram", 17, 0);
  n = recv(fd, buf, 4, 0);
  buf[n > 0 ? n : 0] = 0;
  printf("short recv %zd %s\n", n, buf);
  close(fd);
  return 0;
}
