#define _GNU_SOURCE
#include "CUDPDatapath.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/eventfd.h>
#include <pthread.h>
#include <unistd.h>

_Static_assert(sizeof(struct cudp_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct cudp_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

int cudp_recvmmsg(int fd, struct cudp_mmsghdr *messages, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

int cudp_sendmmsg(int fd, struct cudp_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int cudp_enable_pktinfo(int fd, int family) {
    int on = 1;
    if (family == AF_INET6) return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
    return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
}

size_t cudp_pktinfo_space(void) {
    size_t v4 = CMSG_SPACE(sizeof(struct in_pktinfo)), v6 = CMSG_SPACE(sizeof(struct in6_pktinfo));
    return v4 > v6 ? v4 : v6;
}

int cudp_read_destination(const struct msghdr *message, uint8_t address[16], unsigned int *ifindex) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(message); c != NULL; c = CMSG_NXTHDR((struct msghdr *)message, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            memcpy(address, &info.ipi_addr, 4);
            *ifindex = (unsigned int)info.ipi_ifindex;
            return AF_INET;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            memcpy(address, &info.ipi6_addr, 16);
            *ifindex = info.ipi6_ifindex;
            return AF_INET6;
        }
    }
    return 0;
}

size_t cudp_write_source(void *control, int family, const uint8_t address[16], unsigned int ifindex) {
    struct cmsghdr *c = (struct cmsghdr *)control;
    if (family == AF_INET6) {
        struct in6_pktinfo info;
        memset(&info, 0, sizeof info);
        memcpy(&info.ipi6_addr, address, 16);
        info.ipi6_ifindex = ifindex;
        memset(c, 0, CMSG_SPACE(sizeof info));
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(c), &info, sizeof info);
        return CMSG_SPACE(sizeof info);
    }
    // ipi_spec_dst is the source address; ipi_ifindex 0 lets routing pick the interface
    // (as Unbound does), so a reply to a client behind another interface still leaves.
    struct in_pktinfo info;
    memset(&info, 0, sizeof info);
    memcpy(&info.ipi_spec_dst, address, 4);
    memset(c, 0, CMSG_SPACE(sizeof info));
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof info);
    memcpy(CMSG_DATA(c), &info, sizeof info);
    return CMSG_SPACE(sizeof info);
}

int cudp_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int cudp_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof one) == sizeof one ? 0 : -1;
}

void cudp_name_this_thread(const char *name) {
    char short_name[16];
    strncpy(short_name, name, sizeof short_name - 1);
    short_name[sizeof short_name - 1] = 0;
    pthread_setname_np(pthread_self(), short_name);
}
