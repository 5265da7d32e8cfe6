/* udp-echo: the kernel-only floor of `make bench` (the "physical limit" rows).
 *
 *   cc -O2 -pthread -o udp-echo scripts/bench/udp-echo.c
 *   udp-echo --listen 127.0.0.1:PORT [--threads N]
 *
 * N threads, each with its own UDP socket on the same address (SO_REUSEPORT, so the kernel
 * spreads clients over them as it does for NSD, Unbound and vpcdns), each looping over
 * recvmmsg/sendmmsg batches of preallocated buffers. Every datagram of at least a DNS header
 * (12 bytes) goes back to its sender as it came, with the QR bit set, so dnsperf counts it as
 * an answer (NOERROR, the question echoed, no records); shorter ones are dropped. There is no
 * DNS work at all: what a query costs here is what the kernel and the syscalls cost, the
 * least any UDP resolver on this machine can spend.
 *
 * Loopback only (it is a benchmark tool, not a server): any other listen address is refused.
 * Stops on SIGTERM or SIGINT (the default actions).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 64, BUFSIZE = 4096, MAX_THREADS = 256 };

static struct sockaddr_storage listen_addr;
static socklen_t listen_len;

static void usage(void) {
    fprintf(stderr, "usage: udp-echo --listen IP:PORT [--threads N]   (IP: 127.x.x.x, or [::1])\n");
    exit(64);
}

/* 127.0.0.1:5300 or [::1]:5300; loopback only. */
static int parse_listen(const char *text) {
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text) return -1;
    size_t hlen = (size_t)(colon - text);
    if (text[0] == '[') {
        if (hlen < 3 || text[hlen - 1] != ']') return -1;
        text++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) return -1;
    memcpy(host, text, hlen);
    host[hlen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535) return -1;
    memset(&listen_addr, 0, sizeof listen_addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&listen_addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&listen_addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) return -2;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        listen_len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return -2;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        listen_len = sizeof *v6;
        return 0;
    }
    return -1;
}

static int open_socket(void) {
    int fd = socket(listen_addr.ss_family, SOCK_DGRAM, 0);
    if (fd < 0) { perror("udp-echo: socket"); exit(1); }
    int one = 1, rcvbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) { perror("udp-echo: SO_REUSEPORT"); exit(1); }
    /* As Unbound is given (so-rcvbuf: 4m); best effort, capped by net.core.rmem_max. */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (struct sockaddr *)&listen_addr, listen_len) < 0) { perror("udp-echo: bind"); exit(1); }
    return fd;
}

struct worker {
    int fd;
    pthread_t thread;
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    struct sockaddr_storage peers[BATCH];
    unsigned char bufs[BATCH][BUFSIZE];
};

static void reset_slot(struct worker *w, int i) {
    w->iovs[i].iov_base = w->bufs[i];
    w->iovs[i].iov_len = BUFSIZE;
    memset(&w->msgs[i].msg_hdr, 0, sizeof w->msgs[i].msg_hdr);
    w->msgs[i].msg_hdr.msg_name = &w->peers[i];
    w->msgs[i].msg_hdr.msg_namelen = sizeof w->peers[i];
    w->msgs[i].msg_hdr.msg_iov = &w->iovs[i];
    w->msgs[i].msg_hdr.msg_iovlen = 1;
}

static void *echo_loop(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < BATCH; i++) reset_slot(w, i);
    for (;;) {
        int n = recvmmsg(w->fd, w->msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("udp-echo: recvmmsg");
            exit(1);
        }
        /* Compact the batch to the datagrams that get an answer: QR set, sent back as read. */
        int out = 0;
        for (int i = 0; i < n; i++) {
            unsigned len = w->msgs[i].msg_len;
            if (len < 12 || (w->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) continue;
            w->bufs[i][2] |= 0x80;
            w->iovs[i].iov_len = len;
            if (out != i) w->msgs[out].msg_hdr = w->msgs[i].msg_hdr;
            out++;
        }
        int sent = 0;
        while (sent < out) {
            int k = sendmmsg(w->fd, w->msgs + sent, (unsigned)(out - sent), 0);
            if (k < 0) {
                if (errno == EINTR) continue;
                break; /* e.g. ENOBUFS: the rest of this batch is lost, as a server would lose it */
            }
            sent += k;
        }
        /* Only the slots this batch used were changed (lengths, compaction). */
        for (int i = 0; i < n; i++) reset_slot(w, i);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *listen_text = NULL;
    long threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen_text = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            threads = strtol(argv[++i], &end, 10);
            if (*end || threads < 1 || threads > MAX_THREADS) {
                fprintf(stderr, "udp-echo: --threads wants 1 to %d, not '%s'\n", MAX_THREADS, argv[i]);
                return 64;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) usage();
        else { fprintf(stderr, "udp-echo: unknown argument '%s'\n", argv[i]); usage(); }
    }
    if (!listen_text) usage();
    int rc = parse_listen(listen_text);
    if (rc == -2) { fprintf(stderr, "udp-echo: %s is not a loopback address (loopback only)\n", listen_text); return 64; }
    if (rc < 0) { fprintf(stderr, "udp-echo: cannot read '%s' as IP:PORT\n", listen_text); return 64; }

    static struct worker workers[MAX_THREADS];
    /* Every socket bound before any thread runs: a query never meets a half-started group. */
    for (long t = 0; t < threads; t++) workers[t].fd = open_socket();
    for (long t = 0; t < threads; t++) {
        int e = pthread_create(&workers[t].thread, NULL, echo_loop, &workers[t]);
        if (e) { fprintf(stderr, "udp-echo: pthread_create: %s\n", strerror(e)); return 1; }
    }
    fprintf(stderr, "udp-echo: listening on %s, %ld thread(s)\n", listen_text, threads);
    pthread_join(workers[0].thread, NULL);
    return 0;
}
