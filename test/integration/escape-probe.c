/*
 * The escape suite's probe (test/integration/escape.test.ts): a static binary put into the test image
 * (owned by root, setuid), that makes the system calls an escaping agent would and prints what each
 * returned, one line each, with errno's name. Every subcommand first prints "probe <subcommand> ran", so a
 * test can tell a blocked attempt from one that never ran.
 *
 *   probe setuid                 setuid(0) and friends; uid/euid before and after
 *   probe raw                    raw and packet sockets (CAP_NET_RAW), and unprivileged ICMP for comparison
 *   probe syscalls DIR           mount, unshare, chroot, mknod, chown: each in a child of its own
 *   probe tcp HOST PORT MS       TCP connect with a timeout; on success sends an HTTP request, prints the reply's first line
 *   probe unix PATH              connect to a unix socket; on success asks GET /version, prints the reply's first line
 *   probe forkbomb               every process forks forever, ignoring failures: pinned at the pids limit
 *
 * Built with: gcc -static -O2 -o probe escape-probe.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int rc) {
  static char buf[64];
  if (rc >= 0) return "ok";
  const char *name = strerrorname_np(errno);
  snprintf(buf, sizeof buf, "%s", name ? name : "E?");
  return buf;
}

static void ids(const char *when) {
  uid_t r, e, s;
  getresuid(&r, &e, &s);
  printf("%s uid=%d euid=%d suid=%d\n", when, (int)r, (int)e, (int)s);
}

static void first_line(int fd) {
  char buf[512];
  ssize_t n = 0, got;
  while (n < (ssize_t)sizeof buf - 1 && (got = read(fd, buf + n, sizeof buf - 1 - n)) > 0) {
    n += got;
    if (memchr(buf, '\n', n)) break;
  }
  buf[n < 0 ? 0 : n] = 0;
  char *nl = strpbrk(buf, "\r\n");
  if (nl) *nl = 0;
  printf("reply: %s\n", buf);
}

static int cmd_setuid(void) {
  ids("before");
  printf("setuid(0)=%s\n", err(setuid(0)));
  printf("setgid(0)=%s\n", err(setgid(0)));
  printf("seteuid(0)=%s\n", err(seteuid(0)));
  ids("after");
  return 0;
}

static int cmd_raw(void) {
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  printf("raw-inet=%s\n", err(fd));
  if (fd >= 0) close(fd);
  fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  printf("raw-packet=%s\n", err(fd));
  if (fd >= 0) close(fd);
  /* Not a capability: ICMP datagram sockets, allowed by net.ipv4.ping_group_range. */
  fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  printf("icmp-dgram=%s\n", err(fd));
  if (fd >= 0) close(fd);
  return 0;
}

static const char *target;

static int try_mount_tmpfs(void) { return mount("none", target, "tmpfs", 0, NULL); }
static int try_mount_bind(void) { return mount("/workspace", target, NULL, MS_BIND, NULL); }
static int try_mount_proc(void) { return mount("proc", target, "proc", 0, NULL); }
static int try_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static int try_unshare_mount(void) { return unshare(CLONE_NEWNS); }
static int try_unshare_net(void) { return unshare(CLONE_NEWNET); }
static int try_chroot(void) { return chroot(target); }
static int try_mknod(void) {
  char node[512];
  snprintf(node, sizeof node, "%s.node", target);
  return mknod(node, S_IFCHR | 0666, makedev(1, 3));
}
static int try_chown(void) { return chown("/workspace/.probe-chown", 0, 0); }

/* Each attempt in a child of its own, from the same starting point: one that succeeds (a new user namespace,
 * say) changes nothing for the next. */
static void attempt(const char *name, int (*call)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    printf("%s=fork-%s\n", name, err(-1));
    return;
  }
  if (pid == 0) {
    int rc = call();
    printf("%s=%s\n", name, err(rc));
    fflush(stdout);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
}

static int cmd_syscalls(const char *dir) {
  target = dir;
  mkdir(dir, 0755);
  attempt("mount-tmpfs", try_mount_tmpfs);
  attempt("mount-bind", try_mount_bind);
  attempt("mount-proc", try_mount_proc);
  attempt("unshare-user", try_unshare_user);
  attempt("unshare-mount", try_unshare_mount);
  attempt("unshare-net", try_unshare_net);
  attempt("chroot", try_chroot);
  attempt("mknod-char", try_mknod);
  attempt("chown-root", try_chown);
  return 0;
}

static int cmd_tcp(const char *host, int port, int ms) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    printf("tcp %s:%d bad-address\n", host, port);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    printf("tcp %s:%d socket=%s\n", host, port, err(fd));
    return 1;
  }
  int rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  if (rc < 0 && errno == EINPROGRESS) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int ready = poll(&p, 1, ms);
    if (ready == 0) {
      printf("tcp %s:%d timeout\n", host, port);
      return 1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    errno = soerr;
    rc = soerr ? -1 : 0;
  }
  if (rc < 0) {
    printf("tcp %s:%d %s\n", host, port, err(rc));
    return 1;
  }
  printf("tcp %s:%d open\n", host, port);
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  struct timeval tv = {.tv_sec = ms / 1000 + 1};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char req[256];
  snprintf(req, sizeof req, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host);
  if (write(fd, req, strlen(req)) > 0) first_line(fd);
  close(fd);
  return 0;
}

static int cmd_unix(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  int rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  if (rc < 0) {
    printf("unix %s %s\n", path, err(rc));
    return 1;
  }
  printf("unix %s open\n", path);
  struct timeval tv = {.tv_sec = 3};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const char *req = "GET /version HTTP/1.0\r\nHost: d\r\n\r\n";
  if (write(fd, req, strlen(req)) > 0) first_line(fd);
  close(fd);
  return 0;
}

__attribute__((noreturn)) static void cmd_forkbomb(void) {
  for (;;) (void)fork();
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: probe setuid|raw|syscalls DIR|tcp HOST PORT MS|unix PATH|forkbomb\n");
    return 2;
  }
  printf("probe %s ran\n", argv[1]);
  if (!strcmp(argv[1], "setuid")) return cmd_setuid();
  if (!strcmp(argv[1], "raw")) return cmd_raw();
  if (!strcmp(argv[1], "syscalls") && argc == 3) return cmd_syscalls(argv[2]);
  if (!strcmp(argv[1], "tcp") && argc == 5) return cmd_tcp(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (!strcmp(argv[1], "unix") && argc == 3) return cmd_unix(argv[2]);
  if (!strcmp(argv[1], "forkbomb")) cmd_forkbomb();
  fprintf(stderr, "probe: bad arguments\n");
  return 2;
}
