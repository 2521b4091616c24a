/* Guest networking the agent sets up before any container process: the loopback
 * interface up (the kernel then gives it 127.0.0.1/8 and ::1), as every Docker
 * container has it, even with --network none; then the config's NICs (found by
 * MAC, renamed to the config's name, MTU, IPv4 address, up) and the default route;
 * a template clone's NICs are found by the template's MAC and given their own.
 * Plain ioctls: no netlink library in PID 1, and IPv4 is all the config carries. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "protocol.h"
#include "reply.h"
#include "util.h"

static int set_flags_up(int fd, const char *name, int up)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
        return -1;
    if (up)
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    else
        ifr.ifr_flags &= ~IFF_UP;
    return ioctl(fd, SIOCSIFFLAGS, &ifr);
}

int vmc_loopback_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vmc_error("loopback: socket: %s", strerror(errno));
        return -1;
    }
    int rc = set_flags_up(fd, "lo", 1);
    if (rc != 0)
        vmc_error("loopback: %s", strerror(errno));
    close(fd);
    return rc;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int vmc_net_find_by_mac(int fd, const unsigned char mac[6], char *out)
{
    struct if_nameindex *list = if_nameindex();
    int rc = -1;
    if (list == NULL)
        return -1;
    for (struct if_nameindex *p = list; p->if_index != 0 && p->if_name != NULL; p++) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        strncpy(ifr.ifr_name, p->if_name, IFNAMSIZ - 1);
        if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 && memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) == 0) {
            strncpy(out, p->if_name, IFNAMSIZ - 1);
            out[IFNAMSIZ - 1] = '\0';
            rc = 0;
            break;
        }
    }
    if_freenameindex(list);
    if (rc < 0)
        errno = ENODEV;
    return rc;
}

/* Give interface name (down) the MAC mac: virtio-net passes it to the device
 * (VIRTIO_NET_CTRL_MAC_ADDR_SET), whose receive filter then takes it. */
static int set_mac(int fd, const char *name, const unsigned char mac[6])
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return ioctl(fd, SIOCSIFHWADDR, &ifr);
}

static int rename_if(int fd, const char *from, const char *to)
{
    if (strcmp(from, to) == 0)
        return 0;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", from);
    snprintf(ifr.ifr_newname, IFNAMSIZ, "%s", to);
    return ioctl(fd, SIOCSIFNAME, &ifr);
}

static void set_sin(struct sockaddr *sa, unsigned int addr)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = addr;
}

static int configure(int fd, const struct vmc_net_iface *f)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, f->name, IFNAMSIZ);
    if (f->mtu > 0) {
        ifr.ifr_mtu = f->mtu;
        if (ioctl(fd, SIOCSIFMTU, &ifr) != 0)
            return -1;
    }
    if (f->addr != 0) {
        set_sin(&ifr.ifr_addr, f->addr);
        if (ioctl(fd, SIOCSIFADDR, &ifr) != 0)
            return -1;
        unsigned int mask = f->prefix == 0 ? 0 : htonl(0xffffffffu << (32 - f->prefix));
        set_sin(&ifr.ifr_netmask, mask);
        if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0)
            return -1;
    }
    return set_flags_up(fd, f->name, 1);
}

static int default_route(int fd, const struct vmc_net_iface *f)
{
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    set_sin(&rt.rt_dst, 0);
    set_sin(&rt.rt_genmask, 0);
    set_sin(&rt.rt_gateway, f->gateway);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    char dev[IFNAMSIZ];
    memcpy(dev, f->name, IFNAMSIZ);
    rt.rt_dev = dev;
    return ioctl(fd, SIOCADDRT, &rt);
}

int vmc_net_apply(struct vmc_net_config *net, char *err, size_t errlen)
{
    if (net->n == 0)
        return 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(err, errlen, "network: socket: %s (errno %d)", strerror(errno), errno);
    int rc = -1;
    char (*cur)[IFNAMSIZ] = calloc(net->n, IFNAMSIZ);
    if (cur == NULL) {
        close(fd);
        return fail(err, errlen, "network: out of memory");
    }
    /* Every NIC found before any changes its MAC or name, so that one NIC's new
     * MAC cannot be taken for another's template MAC. */
    for (size_t i = 0; i < net->n; i++) {
        const struct vmc_net_iface *f = &net->ifaces[i];
        const unsigned char *m = f->has_template_mac ? f->template_mac : f->mac;
        if (vmc_net_find_by_mac(fd, m, cur[i]) < 0) {
            fail(err, errlen, "network: no interface with MAC %02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                 m[4], m[5]);
            goto out;
        }
    }
    /* Two passes, so that a NIC may take a name another one has now (eth0 <-> eth1).
     * A NIC that has its name already keeps it: each rename waits for an RCU grace
     * period (dev_change_name), ~11 ms under TCG, measured. */
#define KEEPS_NAME(i) (net->ifaces[i].name[0] != '\0' && strcmp(cur[i], net->ifaces[i].name) == 0)
    for (size_t i = 0; i < net->n; i++) {
        char tmp[IFNAMSIZ];
        snprintf(tmp, sizeof tmp, "vmcnic%u", (unsigned)(i % 64));
        if (set_flags_up(fd, cur[i], 0) != 0) {
            fail(err, errlen, "network: down %s: %s (errno %d)", cur[i], strerror(errno), errno);
            goto out;
        }
        if (net->ifaces[i].has_template_mac && set_mac(fd, cur[i], net->ifaces[i].mac) != 0) {
            fail(err, errlen, "network: set the MAC of %s: %s (errno %d)", cur[i], strerror(errno), errno);
            goto out;
        }
        if (!KEEPS_NAME(i) && rename_if(fd, cur[i], tmp) != 0) {
            fail(err, errlen, "network: rename %s: %s (errno %d)", cur[i], strerror(errno), errno);
            goto out;
        }
    }
    for (size_t i = 0; i < net->n; i++) {
        char tmp[IFNAMSIZ];
        snprintf(tmp, sizeof tmp, "vmcnic%u", (unsigned)(i % 64));
        int keep = KEEPS_NAME(i);
        if (net->ifaces[i].name[0] == '\0') /* the first free ethN */
            for (unsigned k = 0; k < 1000; k++) {
                snprintf(net->ifaces[i].name, sizeof net->ifaces[i].name, "eth%u", k);
                if (if_nametoindex(net->ifaces[i].name) == 0)
                    break;
            }
        if (!keep && rename_if(fd, tmp, net->ifaces[i].name) != 0) {
            fail(err, errlen, "network: rename %s to %s: %s (errno %d)", tmp, net->ifaces[i].name, strerror(errno),
                 errno);
            goto out;
        }
        if (configure(fd, &net->ifaces[i]) != 0) {
            fail(err, errlen, "network: configure %s: %s (errno %d)", net->ifaces[i].name, strerror(errno), errno);
            goto out;
        }
    }
    for (size_t i = 0; i < net->n; i++) {
        if (net->ifaces[i].gateway == 0)
            continue;
        if (default_route(fd, &net->ifaces[i]) != 0) {
            fail(err, errlen, "network: default route via %s: %s (errno %d)", net->ifaces[i].name, strerror(errno),
                 errno);
            goto out;
        }
        break;
    }
#undef KEEPS_NAME
    rc = 0;
out:
    free(cur);
    close(fd);
    return rc;
}

#define NET_WAIT_MS 20000 /* pciehp powers a slot on 5 s after the button press */

/* Wait until every NIC of net is present (a hot-plugged device appears once the
 * guest's PCIe hot-plug driver has probed it). */
static void wait_for_nics(const struct vmc_net_config *net)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    for (int waited = 0; waited < NET_WAIT_MS; waited += 20) {
        size_t found = 0;
        char name[IFNAMSIZ];
        for (size_t i = 0; i < net->n; i++)
            found += vmc_net_find_by_mac(fd, net->ifaces[i].mac, name) == 0;
        if (found == net->n)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    close(fd);
}

static const char *resolv_conf_path; /* the file bound on the container's /etc/resolv.conf */

void vmc_net_set_resolv_conf(const char *path)
{
    resolv_conf_path = path;
}

/* NET_CONFIG's optional "resolv_conf": NULL when absent or null, 1 in *bad when
 * it is something other than a string without NUL bytes. */
static const char *resolv_conf_member(json_object *root, size_t *len, int *bad)
{
    json_object *v;
    *bad = 0;
    if (!json_object_object_get_ex(root, "resolv_conf", &v) || v == NULL)
        return NULL;
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    *len = s ? (size_t)json_object_get_string_len(v) : 0;
    if (s == NULL || strlen(s) != *len) {
        *bad = 1;
        return NULL;
    }
    return s;
}

/* Write text over the container's resolv.conf in place (open with O_TRUNC, not a
 * new file renamed over it): the container's /etc/resolv.conf is a bind mount of
 * this inode, so its processes see the new text at once, as under Docker. */
static void rewrite_resolv_conf(const char *text, size_t len, char *err, size_t errlen)
{
    if (resolv_conf_path == NULL)
        snprintf(err, errlen, "NET_CONFIG: the container's /etc/resolv.conf is not the agent's");
    else if (vmc_write_file(resolv_conf_path, text, len, 0644) < 0)
        snprintf(err, errlen, "NET_CONFIG: write %s: %s (errno %d)", resolv_conf_path, strerror(errno), errno);
}

void vmc_net_on_config(uint16_t session, const uint8_t *payload, size_t len)
{
    char err[256] = "";
    struct vmc_net_config net;
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, (const char *)payload, (int)len) : NULL;
    int is_object = root != NULL && json_object_is_type(root, json_type_object);
    size_t resolv_len = 0;
    int bad = 0;
    const char *resolv = is_object ? resolv_conf_member(root, &resolv_len, &bad) : NULL;
    if (!is_object)
        snprintf(err, sizeof err, "NET_CONFIG: not a JSON object");
    else if (bad) /* refused before any NIC is touched */
        snprintf(err, sizeof err, "NET_CONFIG: \"resolv_conf\" must be a string without NUL bytes");
    else if (vmc_net_config_parse(root, &net, err, sizeof err) == 0) {
        wait_for_nics(&net);
        if (vmc_net_apply(&net, err, sizeof err) == 0 && resolv != NULL)
            rewrite_resolv_conf(resolv, resolv_len, err, sizeof err);
        vmc_net_config_free(&net);
    }
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    json_object *reply = json_object_new_object();
    json_object_object_add(reply, "error", json_object_new_string(err));
    vmc_send_json(VMC_MSG_NET_RESULT, session, reply);
}
