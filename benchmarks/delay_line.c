/*
 * A delay line between a TUN device and an Ethernet device, for benchmarks/accuracy.py.
 *
 *   delay_line <tun> <ethernet device> <peer MAC> <one-way delay in microseconds>
 *              [<delay variation in microseconds>]
 *
 * IP packets the kernel routes into <tun> leave on <ethernet device>, addressed to
 * <peer MAC>, after the delay; IPv4 frames that arrive on <ethernet device> enter the
 * kernel through <tun> after the same delay. Both directions keep their order. The
 * device's own qdisc (tc tbf) still shapes what leaves, and drops when its queue is
 * full, as a real bottleneck does. Runs until killed.
 *
 * Both devices hand over whole TCP segments of up to 64 KB with a virtio-net header,
 * as a network card with segmentation offload takes them: the kernel splits them into
 * packets on the wire, and tbf still counts every packet's headers. Copying each
 * 1500-byte packet through this process one system call at a time kept a gigabit
 * upload below 0.80 of the link on two cores.
 *
 * With a delay variation, every other TCP connection the client opens (counted by its
 * SYNs) has all its outgoing packets held that much longer. A connection's packets
 * keep one delay, so none is reordered within its connection and TCP sees a steady
 * path; and since each latency probe is a connection of its own, taken one after the
 * other, consecutive probes of one round trip per exchange differ by exactly the
 * variation: that is the jitter's true value.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING_BYTES (64u << 20)
#define MAX_PACKET 65600u
#define HEADER 16u
#define WRAP 0xffffffffu
#define TCP 6
#define SYN 0x02
#define ACK 0x10

struct ring {
    unsigned char *bytes;
    size_t head, tail, used;
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static size_t record_size(uint32_t length) { return (HEADER + length + 7u) & ~(size_t)7u; }

/* Append a packet (prefix + data) due at `due`; drop it when the ring is full. */
static void push(struct ring *r, uint64_t due, const unsigned char *prefix, uint32_t prefix_length,
                 const unsigned char *data, uint32_t length) {
    uint32_t total = prefix_length + length;
    size_t need = record_size(total);
    if (RING_BYTES - r->tail < need) {
        size_t waste = RING_BYTES - r->tail;
        if (r->used + waste + need > RING_BYTES) return;
        if (waste >= HEADER) {
            uint32_t marker = WRAP;
            memcpy(r->bytes + r->tail + 8, &marker, 4);
        }
        r->used += waste;
        r->tail = 0;
    }
    if (r->used + need > RING_BYTES) return;
    unsigned char *record = r->bytes + r->tail;
    memcpy(record, &due, 8);
    memcpy(record + 8, &total, 4);
    memcpy(record + HEADER, prefix, prefix_length);
    memcpy(record + HEADER + prefix_length, data, length);
    r->tail += need;
    r->used += need;
}

/* The oldest packet, skipping a wrap; NULL when empty. */
static unsigned char *peek(struct ring *r) {
    if (r->used == 0) return NULL;
    size_t left = RING_BYTES - r->head;
    uint32_t length = 0;
    if (left >= HEADER) memcpy(&length, r->bytes + r->head + 8, 4);
    if (left < HEADER || length == WRAP) {
        r->used -= left;
        r->head = 0;
        if (r->used == 0) return NULL;
    }
    return r->bytes + r->head;
}

static void pop(struct ring *r) {
    uint32_t length;
    memcpy(&length, r->bytes + r->head + 8, 4);
    size_t size = record_size(length);
    r->head += size;
    r->used -= size;
}

/* Send every packet that is due; the time the next one is due, or 0. */
static uint64_t flush(struct ring *r, int fd, uint64_t now) {
    unsigned char *record;
    while ((record = peek(r)) != NULL) {
        uint64_t due;
        uint32_t length;
        memcpy(&due, record, 8);
        if (due > now) return due;
        memcpy(&length, record + 8, 4);
        /* A full queue downstream drops the packet, as a real link would. */
        if (write(fd, record + HEADER, length) < 0 && errno == EINTR) continue;
        pop(r);
    }
    return 0;
}

#define VNET_HEADER sizeof(struct virtio_net_hdr)

/* The header of a packet that gains (or loses) an Ethernet header of `shift` bytes:
 * its offsets count from the start of what follows it. */
static void shift_vnet_header(unsigned char *header, int shift) {
    struct virtio_net_hdr vnet;
    memcpy(&vnet, header, VNET_HEADER);
    if (vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) vnet.csum_start = (uint16_t)(vnet.csum_start + shift);
    if (vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE && vnet.hdr_len)
        vnet.hdr_len = (uint16_t)(vnet.hdr_len + shift);
    memcpy(header, &vnet, VNET_HEADER);
}

/* Which of the two delays an outgoing IPv4 packet gets: that of its TCP connection,
 * chosen in turn when the connection's SYN leaves; 0 for everything else. */
static int delay_class(const unsigned char *packet, ssize_t length) {
    static unsigned char class_of_port[65536];
    static unsigned int connections;
    if (length < 20 || packet[0] >> 4 != 4 || packet[9] != TCP) return 0;
    size_t header = (size_t)(packet[0] & 15u) * 4u;
    if ((size_t)length < header + 14u) return 0;
    unsigned int port = (unsigned int)packet[header] << 8 | packet[header + 1];
    unsigned char flags = packet[header + 13];
    if ((flags & SYN) && !(flags & ACK)) class_of_port[port] = (unsigned char)(connections++ & 1u);
    return class_of_port[port];
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s tun ethernet-device peer-mac one-way-delay-us [variation-us]\n",
                argv[0]);
        return 2;
    }
    uint64_t delay = strtoull(argv[4], NULL, 10) * 1000u;
    uint64_t variation = argc == 6 ? strtoull(argv[5], NULL, 10) * 1000u : 0;
    unsigned char frame_header[ETH_HLEN];
    unsigned int mac[6];
    if (sscanf(argv[3], "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6) {
        fprintf(stderr, "bad MAC %s\n", argv[3]);
        return 2;
    }
    for (int i = 0; i < 6; i++) frame_header[i] = (unsigned char)mac[i];

    int tun = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    strncpy(request.ifr_name, argv[1], IFNAMSIZ - 1);
    if (tun < 0 || ioctl(tun, TUNSETIFF, &request) < 0 ||
        ioctl(tun, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0) {
        perror("tun");
        return 1;
    }
    int packet = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    struct ifreq device;
    memset(&device, 0, sizeof device);
    strncpy(device.ifr_name, argv[2], IFNAMSIZ - 1);
    if (packet < 0 || ioctl(packet, SIOCGIFINDEX, &device) < 0) {
        perror("packet socket");
        return 1;
    }
    struct sockaddr_ll address = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                                  .sll_ifindex = device.ifr_ifindex};
    if (bind(packet, (struct sockaddr *)&address, sizeof address) < 0 ||
        ioctl(packet, SIOCGIFHWADDR, &device) < 0) {
        perror("bind");
        return 1;
    }
    memcpy(frame_header + 6, device.ifr_hwaddr.sa_data, 6);
    frame_header[12] = 0x08;
    frame_header[13] = 0x00;
    /* Frames this socket sends would come back to it as outgoing copies, doubling its
     * work at the packet rates of a fast link. */
    int on = 1;
    setsockopt(packet, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof on);
    if (setsockopt(packet, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) < 0) {
        perror("packet socket offload");
        return 1;
    }
    int buffer_size = 16 << 20;
    setsockopt(packet, SOL_SOCKET, SO_RCVBUF, &buffer_size, sizeof buffer_size);
    setsockopt(packet, SOL_SOCKET, SO_SNDBUF, &buffer_size, sizeof buffer_size);

    /* One ring per delay, so that a later-due packet never holds back an earlier one. */
    struct ring outward[2] = {{.bytes = malloc(RING_BYTES)}, {.bytes = malloc(RING_BYTES)}};
    struct ring inward = {.bytes = malloc(RING_BYTES)};
    static unsigned char buffer[MAX_PACKET];
    struct pollfd fds[2] = {{.fd = tun, .events = POLLIN}, {.fd = packet, .events = POLLIN}};
    for (;;) {
        uint64_t now = now_ns();
        uint64_t next = 0;
        uint64_t due[3] = {flush(&outward[0], packet, now), flush(&outward[1], packet, now),
                           flush(&inward, tun, now)};
        for (int i = 0; i < 3; i++)
            if (due[i] && (!next || due[i] < next)) next = due[i];
        struct timespec wait = {1, 0};
        if (next) {
            uint64_t gap = next > now ? next - now : 0;
            wait.tv_sec = (time_t)(gap / 1000000000u);
            wait.tv_nsec = (long)(gap % 1000000000u);
        }
        if (ppoll(fds, 2, &wait, NULL) < 0 && errno != EINTR) return 1;
        now = now_ns();
        for (int i = 0; i < 256; i++) {
            ssize_t length = read(tun, buffer, sizeof buffer);
            if (length <= (ssize_t)VNET_HEADER) break;
            unsigned char *ip = buffer + VNET_HEADER;
            ssize_t ip_length = length - (ssize_t)VNET_HEADER;
            unsigned char prefix[VNET_HEADER + ETH_HLEN];
            memcpy(prefix, buffer, VNET_HEADER);
            shift_vnet_header(prefix, ETH_HLEN);
            memcpy(prefix + VNET_HEADER, frame_header, ETH_HLEN);
            int class = variation ? delay_class(ip, ip_length) : 0;
            push(&outward[class], now + delay + (class ? variation : 0), prefix, sizeof prefix, ip,
                 (uint32_t)ip_length);
        }
        for (int i = 0; i < 256; i++) {
            struct sockaddr_ll from;
            socklen_t from_length = sizeof from;
            ssize_t length = recvfrom(packet, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &from_length);
            if (length <= 0) break;
            if (from.sll_pkttype == PACKET_OUTGOING || length <= (ssize_t)(VNET_HEADER + ETH_HLEN)) continue;
            unsigned char *frame = buffer + VNET_HEADER;
            if (frame[12] != 0x08 || frame[13] != 0x00) continue;
            shift_vnet_header(buffer, -ETH_HLEN);
            push(&inward, now + delay, buffer, VNET_HEADER, frame + ETH_HLEN,
                 (uint32_t)(length - (ssize_t)(VNET_HEADER + ETH_HLEN)));
        }
    }
}
