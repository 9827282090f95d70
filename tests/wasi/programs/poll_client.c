/*
 * Test program for the non-blocking path: socket(SOCK_NONBLOCK), connect -> EINPROGRESS, poll() for
 * POLLOUT, send, poll() for POLLIN, recv until end of stream, plus a pure-timeout poll() (the clock
 * subscription) and a recv that must say EAGAIN. Prints one line per step.
 *   usage: poll_client PORT MESSAGE
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "wasix_sockets.h"

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  int port = atoi(argv[1]);
  const char *msg = argv[2];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  poll(NULL, 0, 30);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long slept = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  printf("slept>=25ms %s\n", slept >= 25 ? "yes" : "no");

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in addr;
  wasix_lookup_ipv4("127.0.0.1", (uint16_t)port, &addr);
  int r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  printf("connect %d %s\n", r, r < 0 && errno == EINPROGRESS ? "EINPROGRESS" : strerror(errno));
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  printf("early recv %zd %s\n", n, n < 0 && errno == EAGAIN ? "EAGAIN" : "other");
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  r = poll(&p, 1, 5000);
  printf("poll out %d %s\n", r, (p.revents & POLLOUT) ? "POLLOUT" : "none");
  uint8_t status = 9;
  wasix_sock_status(fd, &status);
  printf("status %d\n", status);
  send(fd, msg, strlen(msg), 0);
  size_t got = 0;
  while (got < strlen(msg)) {
    p.events = POLLIN;
    p.revents = 0;
    r = poll(&p, 1, 5000);
    if (r <= 0) {
      printf("poll in timed out\n");
      return 1;
    }
    n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
    if (n <= 0) break;
    got += (size_t)n;
  }
  buf[got] = 0;
  printf("echo %s\n", buf);
  close(fd);
  return 0;
}
