/* NET_RELEASE (guest/PROTOCOL.md): a hot-plugged NIC is leaving the guest
 * (`docker network disconnect`). QEMU's own unplug request is an attention-button
 * press, which Linux's PCIe hot-plug driver (pciehp) acts on only after 5 s, the
 * window the PCIe spec gives a person to cancel it. The agent instead powers the
 * NIC's slot off through pciehp's sysfs file: pciehp unbinds the driver and
 * powers the slot off at once (then waits the spec's 1 s before it turns the
 * power indicator off), and QEMU detaches a device whose slot the guest powered
 * off. The write returns when pciehp is done, so the agent's loop waits ~1 s. */
#include <errno.h>
#include <limits.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <net/if.h>

#include "net.h"
#include "protocol.h"
#include "reply.h"
#include "util.h"

#define SLOTS_DIR "/sys/bus/pci/slots"

/* The PCI address (dddd:bb:dd.f) of interface ifname into bdf: the parent of the
 * virtio device its "device" link names. 0, or -1 with a message in err. */
static int pci_address(const char *ifname, char *bdf, size_t len, char *err, size_t errlen)
{
    char link[PATH_MAX], real[PATH_MAX];
    snprintf(link, sizeof link, "/sys/class/net/%s/device", ifname);
    if (realpath(link, real) == NULL) {
        snprintf(err, errlen, "NET_RELEASE: %.64s: %s (errno %d)", link, strerror(errno), errno);
        return -1;
    }
    char *slash = strrchr(real, '/');
    if (slash != NULL)
        *slash = '\0'; /* .../0000:01:00.0/virtio1 -> .../0000:01:00.0 */
    const char *base = (slash = strrchr(real, '/')) != NULL ? slash + 1 : real;
    unsigned dom, bus, dev, fn;
    char tail;
    if (sscanf(base, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) != 4) {
        snprintf(err, errlen, "NET_RELEASE: %.15s is not on a PCI bus", ifname);
        return -1;
    }
    snprintf(bdf, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    return 0;
}

/* Power off the hot-plug slot whose address is bdf without its function. */
static int power_off_slot(const char *bdf, char *err, size_t errlen)
{
    char want[32];
    snprintf(want, sizeof want, "%.*s", (int)(strrchr(bdf, '.') - bdf), bdf);
    DIR *d = opendir(SLOTS_DIR);
    if (d == NULL) {
        snprintf(err, errlen, "NET_RELEASE: %s: %s (errno %d)", SLOTS_DIR, strerror(errno), errno);
        return -1;
    }
    int rc = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[128], addr[64];
        if (de->d_name[0] == '.' || strlen(de->d_name) > 64)
            continue;
        snprintf(path, sizeof path, SLOTS_DIR "/%.64s/address", de->d_name);
        if (vmc_read_attr(path, addr, sizeof addr) != 0 || strcmp(addr, want) != 0)
            continue;
        snprintf(path, sizeof path, SLOTS_DIR "/%.64s/power", de->d_name);
        if (vmc_write_file(path, "0\n", 2, 0644) == 0)
            rc = 0;
        else
            snprintf(err, errlen, "NET_RELEASE: %s: %s (errno %d)", path, strerror(errno), errno);
        break;
    }
    closedir(d);
    if (rc < 0 && err[0] == '\0')
        snprintf(err, errlen, "NET_RELEASE: PCI device %.31s is not in a hot-plug slot", bdf);
    return rc;
}

void vmc_net_on_release(uint16_t session, const uint8_t *payload, size_t len)
{
    char err[256] = "", ifname[IFNAMSIZ], bdf[32];
    unsigned char mac[6];
    json_object *root = vmc_json_parse(payload, len), *v;
    const char *text = NULL;
    if (root != NULL && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "mac", &v) && json_object_is_type(v, json_type_string))
        text = json_object_get_string(v);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (vmc_net_parse_mac(text, mac) < 0)
        snprintf(err, sizeof err, "NET_RELEASE: \"mac\" must be a MAC address (xx:xx:xx:xx:xx:xx)");
    else if (fd < 0 || vmc_net_find_by_mac(fd, mac, ifname) < 0)
        snprintf(err, sizeof err, "NET_RELEASE: no interface with MAC %s", text);
    else if (pci_address(ifname, bdf, sizeof bdf, err, sizeof err) == 0)
        power_off_slot(bdf, err, sizeof err);
    if (fd >= 0)
        close(fd);
    if (root != NULL)
        json_object_put(root);
    if (err[0] != '\0')
        vmc_error("%s", err);
    json_object *reply = json_object_new_object();
    json_object_object_add(reply, "error", json_object_new_string(err));
    vmc_send_json(VMC_MSG_NET_RESULT, session, reply);
}
