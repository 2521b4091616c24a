#ifndef VMC_NET_H
#define VMC_NET_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* Bring the loopback interface up. Returns 0, or -1 (logged). */
int vmc_loopback_up(void);

/* One NIC of "network.interfaces" (guest/PROTOCOL.md). IPv4 only. */
struct vmc_net_iface {
    unsigned char mac[6];          /* how the agent finds the device (and its MAC) */
    unsigned char template_mac[6]; /* when has_template_mac: how it finds it, then sets mac */
    int has_template_mac;          /* a template clone's NIC (PROTOCOL.md "Warm start") */
    char name[16];        /* renamed to this (IFNAMSIZ, NUL-terminated) */
    int mtu;              /* 0: leave the driver's */
    unsigned int addr;    /* network byte order; 0: no address */
    int prefix;           /* 0..32 */
    unsigned int gateway; /* network byte order; 0: no default route */
};

struct vmc_net_config {
    struct vmc_net_iface *ifaces;
    size_t n;
};

/* Parse the optional "network" member of the config (absent or null: no NICs).
 * 0, or -1 with a message in err. */
int vmc_net_config_parse(json_object *root, struct vmc_net_config *net, char *err, size_t errlen);
void vmc_net_config_free(struct vmc_net_config *net);

/* "xx:xx:xx:xx:xx:xx" into mac. 0, or -1 for anything else (NULL included). */
int vmc_net_parse_mac(const char *s, unsigned char mac[6]);

/* The name of the interface with MAC mac into out (IFNAMSIZ), looked up through
 * the AF_INET socket fd. 0, or -1 with errno ENODEV. */
int vmc_net_find_by_mac(int fd, const unsigned char mac[6], char *out);

/* Configure every NIC of net: found by MAC (by template_mac, then given mac, where
 * has_template_mac), renamed, MTU, address, up; then the default route through the
 * first gateway. 0, or -1 with a message in err. */
int vmc_net_apply(struct vmc_net_config *net, char *err, size_t errlen);

/* NET_CONFIG (guest/PROTOCOL.md): configure hot-plugged NICs, waiting up to
 * NET_WAIT_MS for each to appear, then write its "resolv_conf" (if any) over the
 * container's resolv.conf; answers NET_RESULT on `session`. */
void vmc_net_on_config(uint16_t session, const uint8_t *payload, size_t len);

/* The file the container's /etc/resolv.conf is bound to (NULL: none), which
 * NET_CONFIG's "resolv_conf" rewrites in place. */
void vmc_net_set_resolv_conf(const char *path);

/* NET_RELEASE (guest/PROTOCOL.md): power off the hot-plug slot of the NIC the
 * payload's "mac" names, so that QEMU detaches it at once; answers NET_RESULT on
 * `session`. */
void vmc_net_on_release(uint16_t session, const uint8_t *payload, size_t len);

#endif
