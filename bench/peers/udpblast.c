/* The UDP limit on this machine for a given segment size: one thread sends with UDP GSO
 * (UDP_SEGMENT, SEGS segments of SIZE bytes per sendmsg, at most 64 KB), another receives with
 * UDP_GRO into a 64 KiB buffer (one recvmsg returns the coalesced run), 32 MiB receive buffer
 * (SO_RCVBUFFORCE as root). Loopback only. Prints (stderr) what the receiver got:
 *     received N datagrams, X MB in T s: D datagrams/s, M MB/s; sent S, lost L%
 * Build: gcc -O2 -pthread -o udpblast udpblast.c
 * Usage: udpblast [SIZE=1200] [SECONDS=1] [SEGS=64KB/SIZE]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

static int size = 1200, segs = 0;
static double seconds = 1.0;
static atomic_int done;
static atomic_long sent;
static struct sockaddr_in dst;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *sender(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int sndbuf = 32 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) { perror("connect"); exit(1); }
    size_t len = (size_t)size * segs;
    char *buf = calloc(1, len);
    char ctrl[CMSG_SPACE(sizeof(uint16_t))];
    struct iovec iov = {buf, len};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)size;
    memcpy(CMSG_DATA(c), &seg, sizeof seg);
    double end = now() + seconds;
    long n = 0;
    while (now() < end) {
        for (int i = 0; i < 16; i++) {
            if (sendmsg(fd, &msg, 0) < 0) {
                if (errno == ECONNREFUSED || errno == ENOBUFS || errno == EAGAIN) continue;
                perror("sendmsg");
                exit(1);
            }
            n += segs;
        }
    }
    atomic_store(&sent, n);
    atomic_store(&done, 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) size = atoi(argv[1]);
    if (argc > 2) seconds = atof(argv[2]);
    segs = argc > 3 ? atoi(argv[3]) : 65000 / size;
    if (segs < 1) segs = 1;
    if (segs > 64) segs = 64;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 32 << 20, on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) != 0) perror("UDP_GRO");
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&dst, sizeof dst) != 0) { perror("bind"); return 1; }
    socklen_t alen = sizeof dst;
    getsockname(fd, (struct sockaddr *)&dst, &alen);
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    static char buf[65536];
    char ctrl[CMSG_SPACE(sizeof(int))];
    long got = 0, bytes = 0;
    double first = 0, last = 0;
    for (;;) {
        struct iovec iov = {buf, sizeof buf};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl;
        msg.msg_controllen = sizeof ctrl;
        ssize_t r = recvmsg(fd, &msg, 0);
        if (r < 0) {
            if (atomic_load(&done)) break;
            continue;
        }
        int gso = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) memcpy(&gso, CMSG_DATA(c), sizeof gso);
        long n = gso > 0 ? (r + gso - 1) / gso : 1;
        double t = now();
        if (got == 0) first = t;
        got += n;
        bytes += r;
        last = t;
    }
    pthread_join(t, NULL);
    double secs = last - first;
    if (secs <= 0) secs = 1e-9;
    long s = atomic_load(&sent);
    fprintf(stderr,
            "received %ld datagrams, %.2f MB in %.2f s: %.0f datagrams/s, %.1f MB/s; sent %ld, lost %.1f%%\n",
            got, bytes / 1e6, secs, got / secs, bytes / 1e6 / secs, s, s ? 100.0 * (s - got) / s : 0.0);
    return 0;
}
