/*
 * An ordinary Emscripten sockets program (default SOCKFS: one WebSocket per socket, websockify style).
 * Non-blocking, as SOCKFS requires in a browser: connect() answers EINPROGRESS, then a main loop polls.
 * Usage: sockfs_echo HOST PORT MESSAGE. Prints ECHO <reply> or CONNECT_FAILED errno=<n> <text>.
 */
#include <emscripten.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int fd = -1;
static int sent = 0;
static const char *message = "";
static char reply[70000];
static size_t got = 0;

static void finish(void) {
  emscripten_cancel_main_loop();
  printf("DONE\n");
}

static void step(void) {
  struct pollfd p = {fd, POLLIN | POLLOUT, 0};
  poll(&p, 1, 0);
  if (!sent) {
    if (p.revents & (POLLHUP | POLLERR)) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      printf("CONNECT_FAILED errno=%d is_ECONNREFUSED=%d %s\n", err, err == ECONNREFUSED, strerror(err));
      finish();
      return;
    }
    if (p.revents & POLLOUT) {
      ssize_t n = send(fd, message, strlen(message), 0);
      printf("SENT %zd\n", n);
      sent = 1;
    }
    return;
  }
  ssize_t n = recv(fd, reply + got, sizeof reply - 1 - got, 0);
  if (n > 0) {
    got += (size_t)n;
    if (got >= strlen(message)) {
      reply[got] = 0;
      printf("ECHO %s\n", reply);
      finish();
    }
  } else if (n == 0) {
    printf("CLOSED_EARLY after %zu bytes\n", got);
    finish();
  } else if (errno != EAGAIN) {
    printf("RECV_FAILED %s\n", strerror(errno));
    finish();
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    printf("usage: sockfs_echo HOST PORT MESSAGE\n");
    return 1;
  }
  message = argv[3];
  fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  int r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  printf("CONNECT ret=%d inprogress=%d\n", r, r == -1 && errno == EINPROGRESS);
  emscripten_set_main_loop(step, 100, 0);
  return 0;
}
