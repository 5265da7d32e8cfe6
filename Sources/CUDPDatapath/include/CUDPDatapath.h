// The few pieces of the Linux UDP API that Swift cannot reach or use comfortably:
// recvmmsg/sendmmsg (glibc declares them only under _GNU_SOURCE), the CMSG_* macros, and
// in_pktinfo/in6_pktinfo. Used by the UDPDatapath target only.
#ifndef CUDPDATAPATH_H
#define CUDPDATAPATH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/// The layout of glibc's `struct mmsghdr` (checked by a static assertion in the .c file).
struct cudp_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

int cudp_recvmmsg(int fd, struct cudp_mmsghdr *messages, unsigned int count, int flags);
int cudp_sendmmsg(int fd, struct cudp_mmsghdr *messages, unsigned int count, int flags);

/// Asks the kernel for each datagram's destination address (IP_PKTINFO or
/// IPV6_RECVPKTINFO). Returns 0 or -1 with errno.
int cudp_enable_pktinfo(int fd, int family);

/// Bytes of control buffer that hold one pktinfo message of either family.
size_t cudp_pktinfo_space(void);

/// The destination address of a received datagram, from its control messages: 4 (IPv4) or
/// 16 (IPv6) bytes into `address`, the arrival interface into `ifindex`. Returns AF_INET,
/// AF_INET6, or 0 when the datagram carries no pktinfo.
int cudp_read_destination(const struct msghdr *message, uint8_t address[16], unsigned int *ifindex);

/// Writes into `control` (at least `cudp_pktinfo_space()` bytes, aligned for cmsghdr) the
/// control message that makes a datagram leave from `address` (4 or 16 bytes, per
/// `family`), and for IPv6 through `ifindex` (0: let routing choose). Returns the
/// `msg_controllen` to use.
size_t cudp_write_source(void *control, int family, const uint8_t address[16], unsigned int ifindex);


/// A non-blocking, close-on-exec eventfd (a wake-up for a thread blocked in poll), or -1.
int cudp_eventfd(void);
/// Adds 1 to the eventfd's counter (wakes its poller). Returns 0 or -1.
int cudp_eventfd_signal(int fd);

/// Names the calling thread (at most 15 bytes are kept), for top/perf.
void cudp_name_this_thread(const char *name);

#endif
