/*
 * wasix_sockets.h — BSD sockets for C programs built with a stock wasi-libc (clang --target=wasm32-wasi),
 * through the WASIX socket imports (module "wasix_32v1") that wasmnet's `client/wasi` provides in the
 * browser. wasi-libc compiles out socket/connect/bind/listen/getsockname; this header declares the WASIX
 * imports and defines those functions on top of them. send/recv/accept/shutdown/read/write/close/poll come
 * from wasi-libc itself (preview 1 sock_* and fd_* imports, which the bridge also serves).
 *
 * Include it once per program (the functions are static). Public domain / 0BSD: copy it freely.
 */
#ifndef WASIX_SOCKETS_H
#define WASIX_SOCKETS_H

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/uio.h>

#define WASIX_IMPORT(name) __attribute__((import_module("wasix_32v1"), import_name(name)))

/* __wasi_addr_port_t: 20 bytes. The port is a host-order (little-endian) u16, the address in network order. */
typedef struct wasix_addr_port {
  uint8_t tag; /* 1 = IPv4, 2 = IPv6 */
  uint8_t _pad;
  uint16_t port;
  uint8_t addr[16];
} wasix_addr_port_t;

/* __wasi_addr_t: 18 bytes (resolve's output). */
typedef struct wasix_addr {
  uint8_t tag;
  uint8_t _pad;
  uint8_t addr[16];
} wasix_addr_t;

_Static_assert(sizeof(wasix_addr_port_t) == 20, "__wasi_addr_port_t is 20 bytes");
_Static_assert(sizeof(wasix_addr_t) == 18, "__wasi_addr_t is 18 bytes");

/* The raw WASIX imports; each returns a WASI errno (0 = success). */
uint16_t wasix_sock_open(int32_t af, int32_t socktype, int32_t proto, int32_t *ret_fd) WASIX_IMPORT("sock_open");
uint16_t wasix_sock_bind(int32_t fd, const wasix_addr_port_t *addr) WASIX_IMPORT("sock_bind");
uint16_t wasix_sock_listen(int32_t fd, int32_t backlog) WASIX_IMPORT("sock_listen");
uint16_t wasix_sock_accept_v2(int32_t fd, int32_t flags, int32_t *ret_fd, wasix_addr_port_t *ret_addr)
    WASIX_IMPORT("sock_accept_v2");
uint16_t wasix_sock_connect(int32_t fd, const wasix_addr_port_t *addr) WASIX_IMPORT("sock_connect");
uint16_t wasix_sock_addr_local(int32_t fd, wasix_addr_port_t *ret_addr) WASIX_IMPORT("sock_addr_local");
uint16_t wasix_sock_addr_peer(int32_t fd, wasix_addr_port_t *ret_addr) WASIX_IMPORT("sock_addr_peer");
uint16_t wasix_sock_status(int32_t fd, uint8_t *ret_status) WASIX_IMPORT("sock_status");
uint16_t wasix_sock_set_opt_flag(int32_t fd, int32_t opt, int32_t flag) WASIX_IMPORT("sock_set_opt_flag");
uint16_t wasix_sock_get_opt_flag(int32_t fd, int32_t opt, uint8_t *ret_flag) WASIX_IMPORT("sock_get_opt_flag");
uint16_t wasix_sock_send_to(int32_t fd, const struct iovec *iovs, uint32_t iovs_len, int32_t si_flags,
                            const wasix_addr_port_t *addr, uint32_t *ret_len) WASIX_IMPORT("sock_send_to");
uint16_t wasix_sock_recv_from(int32_t fd, const struct iovec *iovs, uint32_t iovs_len, int32_t ri_flags,
                              uint32_t *ret_len, uint16_t *ret_flags, wasix_addr_port_t *ret_addr)
    WASIX_IMPORT("sock_recv_from");
uint16_t wasix_resolve(const char *host, uint32_t host_len, uint32_t port, wasix_addr_t *addrs, uint32_t naddrs,
                       uint32_t *ret_naddrs) WASIX_IMPORT("resolve");

static inline int wasix_fail(uint16_t err) {
  errno = err;
  return -1;
}

static inline int wasix_from_sockaddr(const struct sockaddr *sa, socklen_t len, wasix_addr_port_t *out) {
  memset(out, 0, sizeof(*out));
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    out->tag = 1;
    out->port = ntohs(in->sin_port);
    memcpy(out->addr, &in->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    out->tag = 2;
    out->port = ntohs(in6->sin6_port);
    memcpy(out->addr, &in6->sin6_addr, 16);
    return 0;
  }
  return EAFNOSUPPORT;
}

static inline void wasix_to_sockaddr(const wasix_addr_port_t *a, struct sockaddr *sa, socklen_t *len) {
  if (!sa || !len) return;
  if (a->tag == 2) {
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(a->port);
    memcpy(&in6.sin6_addr, a->addr, 16);
    memcpy(sa, &in6, *len < sizeof in6 ? *len : sizeof in6);
    *len = sizeof in6;
  } else {
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons(a->port);
    memcpy(&in.sin_addr, a->addr, 4);
    memcpy(sa, &in, *len < sizeof in ? *len : sizeof in);
    *len = sizeof in;
  }
}

/* socket(2): SOCK_STREAM (TCP) or SOCK_DGRAM (UDP); SOCK_NONBLOCK is honoured. */
static inline int socket(int domain, int type, int protocol) {
  int af = domain == AF_INET ? 1 : domain == AF_INET6 ? 2 : 0;
  if (!af) return wasix_fail(EAFNOSUPPORT);
  int nonblock = (type & SOCK_NONBLOCK) != 0;
  type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  int wtype = type == SOCK_STREAM ? 1 : type == SOCK_DGRAM ? 2 : 0;
  int32_t fd;
  uint16_t err = wasix_sock_open(af, wtype, protocol, &fd);
  if (err) return wasix_fail(err);
  if (nonblock) fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static inline int connect(int fd, const struct sockaddr *sa, socklen_t len) {
  wasix_addr_port_t a;
  int err = wasix_from_sockaddr(sa, len, &a);
  if (err) return wasix_fail(err);
  err = wasix_sock_connect(fd, &a);
  return err ? wasix_fail(err) : 0;
}

static inline int bind(int fd, const struct sockaddr *sa, socklen_t len) {
  wasix_addr_port_t a;
  int err = wasix_from_sockaddr(sa, len, &a);
  if (err) return wasix_fail(err);
  err = wasix_sock_bind(fd, &a);
  return err ? wasix_fail(err) : 0;
}

static inline int listen(int fd, int backlog) {
  uint16_t err = wasix_sock_listen(fd, backlog);
  return err ? wasix_fail(err) : 0;
}

/* accept(2) with the peer address (wasi-libc's own accept() cannot report it). */
static inline int wasix_accept(int fd, struct sockaddr *sa, socklen_t *len) {
  int32_t conn;
  wasix_addr_port_t a;
  uint16_t err = wasix_sock_accept_v2(fd, 0, &conn, &a);
  if (err) return wasix_fail(err);
  wasix_to_sockaddr(&a, sa, len);
  return conn;
}

static inline int getsockname(int fd, struct sockaddr *sa, socklen_t *len) {
  wasix_addr_port_t a;
  uint16_t err = wasix_sock_addr_local(fd, &a);
  if (err) return wasix_fail(err);
  wasix_to_sockaddr(&a, sa, len);
  return 0;
}

static inline int getpeername(int fd, struct sockaddr *sa, socklen_t *len) {
  wasix_addr_port_t a;
  uint16_t err = wasix_sock_addr_peer(fd, &a);
  if (err) return wasix_fail(err);
  wasix_to_sockaddr(&a, sa, len);
  return 0;
}

/* sendto(2) / recvfrom(2) for UDP sockets (and TCP ones, where the address is ignored / the peer). */
static inline ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *sa,
                             socklen_t salen) {
  (void)flags;
  if (!sa) return send(fd, buf, len, 0);
  wasix_addr_port_t a;
  int err = wasix_from_sockaddr(sa, salen, &a);
  if (err) return wasix_fail(err);
  struct iovec iov = {(void *)buf, len};
  uint32_t n = 0;
  err = wasix_sock_send_to(fd, &iov, 1, 0, &a, &n);
  return err ? wasix_fail(err) : (ssize_t)n;
}

static inline ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *sa, socklen_t *salen) {
  struct iovec iov = {buf, len};
  uint32_t n = 0;
  uint16_t roflags = 0;
  wasix_addr_port_t a;
  memset(&a, 0, sizeof a);
  int ri = (flags & MSG_PEEK) ? 1 : 0;
  uint16_t err = wasix_sock_recv_from(fd, &iov, 1, ri, &n, &roflags, &a);
  if (err) return wasix_fail(err);
  wasix_to_sockaddr(&a, sa, salen);
  return (ssize_t)n;
}

/* Looks `host` up (through the wasmnet server, under its policy); fills an IPv4 sockaddr_in with `port`.
 * Returns 0, or -1 with errno set. IP literals are answered without asking the server. */
static inline int wasix_lookup_ipv4(const char *host, uint16_t port, struct sockaddr_in *out) {
  wasix_addr_t addrs[8];
  uint32_t n = 0;
  uint16_t err = wasix_resolve(host, (uint32_t)strlen(host), port, addrs, 8, &n);
  if (err) return wasix_fail(err);
  for (uint32_t i = 0; i < n; i++) {
    if (addrs[i].tag == 1) {
      memset(out, 0, sizeof *out);
      out->sin_family = AF_INET;
      out->sin_port = htons(port);
      memcpy(&out->sin_addr, addrs[i].addr, 4);
      return 0;
    }
  }
  return wasix_fail(EADDRNOTAVAIL);
}

#endif
