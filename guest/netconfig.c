/* The "network" member of /config.json (guest/PROTOCOL.md), parsed with json-c. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "net.h"


static const char *member_string(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    return (size_t)json_object_get_string_len(v) == strlen(s) ? s : NULL;
}

int vmc_net_parse_mac(const char *s, unsigned char mac[6])
{
    unsigned int b[6];
    char tail;
    if (s == NULL || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        mac[i] = (unsigned char)b[i];
    return 0;
}

/* "a.b.c.d/len" */
static int parse_cidr(const char *s, unsigned int *addr, int *prefix)
{
    char buf[32];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (slash == NULL || (size_t)(slash - s) >= sizeof buf)
        return -1;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (*end != '\0' || end == slash + 1 || p < 0 || p > 32)
        return -1;
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -1;
    *addr = a.s_addr;
    *prefix = (int)p;
    return 0;
}

static int parse_iface(json_object *o, size_t i, struct vmc_net_iface *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (!json_object_is_type(o, json_type_object))
        return vmc_config_fail(err, errlen, "\"network.interfaces[%zu]\" must be an object", i);
    if (vmc_net_parse_mac(member_string(o, "mac"), f->mac) < 0)
        return vmc_config_fail(err, errlen, "\"network.interfaces[%zu].mac\" must be a MAC address (xx:xx:xx:xx:xx:xx)", i);
    json_object *tm;
    if (json_object_object_get_ex(o, "template_mac", &tm) && tm != NULL) {
        if (vmc_net_parse_mac(member_string(o, "template_mac"), f->template_mac) < 0)
            return vmc_config_fail(err, errlen,
                                   "\"network.interfaces[%zu].template_mac\" must be a MAC address (xx:xx:xx:xx:xx:xx)", i);
        f->has_template_mac = 1;
    }
    const char *name = member_string(o, "name");
    if (name == NULL || strlen(name) >= sizeof f->name || strchr(name, '/') != NULL ||
        strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return vmc_config_fail(err, errlen, "\"network.interfaces[%zu].name\" must be an interface name of 0-15 bytes", i);
    strcpy(f->name, name);
    json_object *v;
    if (json_object_object_get_ex(o, "mtu", &v) && v != NULL) {
        int64_t mtu = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
        if (mtu < 68 || mtu > 65535)
            return vmc_config_fail(err, errlen, "\"network.interfaces[%zu].mtu\" must be an integer from 68 to 65535", i);
        f->mtu = (int)mtu;
    }
    const char *addr = member_string(o, "address");
    if (json_object_object_get_ex(o, "address", &v) && v != NULL && parse_cidr(addr, &f->addr, &f->prefix) < 0)
        return vmc_config_fail(err, errlen, "\"network.interfaces[%zu].address\" must be IPv4 address/prefix", i);
    const char *gw = member_string(o, "gateway");
    if (json_object_object_get_ex(o, "gateway", &v) && v != NULL) {
        struct in_addr a;
        if (gw == NULL || inet_pton(AF_INET, gw, &a) != 1)
            return vmc_config_fail(err, errlen, "\"network.interfaces[%zu].gateway\" must be an IPv4 address", i);
        f->gateway = a.s_addr;
    }
    return 0;
}

int vmc_net_config_parse(json_object *root, struct vmc_net_config *net, char *err, size_t errlen)
{
    memset(net, 0, sizeof *net);
    json_object *network, *ifaces;
    if (!json_object_object_get_ex(root, "network", &network) || network == NULL)
        return 0;
    if (!json_object_is_type(network, json_type_object))
        return vmc_config_fail(err, errlen, "\"network\" must be an object");
    if (!json_object_object_get_ex(network, "interfaces", &ifaces) || ifaces == NULL)
        return 0;
    if (!json_object_is_type(ifaces, json_type_array))
        return vmc_config_fail(err, errlen, "\"network.interfaces\" must be an array");
    size_t n = json_object_array_length(ifaces);
    if (n > 64)
        return vmc_config_fail(err, errlen, "\"network.interfaces\": at most 64");
    if (n == 0)
        return 0;
    if ((net->ifaces = calloc(n, sizeof *net->ifaces)) == NULL)
        return vmc_config_fail(err, errlen, "out of memory");
    net->n = n;
    for (size_t i = 0; i < n; i++) {
        if (parse_iface(json_object_array_get_idx(ifaces, i), i, &net->ifaces[i], err, errlen) < 0) {
            vmc_net_config_free(net);
            return -1;
        }
    }
    return 0;
}

void vmc_net_config_free(struct vmc_net_config *net)
{
    free(net->ifaces);
    memset(net, 0, sizeof *net);
}
