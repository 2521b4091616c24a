/* vmcontainer guest agent: PID 1 of the guest's initramfs.
 *
 * Mounts /dev, /proc and /sys; opens the virtio-serial port and says HELLO;
 * reads /config.json from the config disk; mounts the root filesystem; starts
 * the container's process (container.c); forwards its stdout and stderr; reaps
 * every zombie; when the process ends, drains its output, syncs the disks, sends
 * EXIT and waits for the host to end the VM (reboot after 10 s otherwise).
 * It never exits: PID 1 exiting panics the kernel. Protocol: guest/PROTOCOL.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "channel.h"
#include "config.h"
#include "container.h"
#include "net.h"
#include "protocol.h"
#include "replay.h"
#include "reply.h"
#include "session.h"
#include "util.h"
#include "warm.h"

#define AGENT_NAME "vmcontainer-agent 2"
#define NEWROOT "/newroot"
#define CONFIG_MNT "/config"
#define RUN_DIR "/run/vmcontainer"
#define PORT_TIMEOUT_MS 10000
#define DISK_TIMEOUT_MS 5000
#define GRACE_MS 10000 /* after EXIT or START_ERROR, before rebooting */

static struct vmc_channel *chan;
static int sig_fd = -1;

static void reboot_now(void) __attribute__((noreturn));
static void reboot_now(void)
{
    sync();
    for (;;) {
        reboot(RB_AUTOBOOT);
        /* Not allowed to end? Never exit PID 1: wait instead. */
        vmc_error("reboot: %s (errno %d)", strerror(errno), errno);
        pause();
    }
}

/* Serve the port (EXEC refused, TOP answered) and reap zombies for ms milliseconds. */
static void idle(int ms)
{
    int64_t deadline = vmc_now_ms() + ms;
    bool host_gone = false;
    for (;;) {
        int64_t left = deadline - vmc_now_ms();
        if (left <= 0)
            return;
        struct pollfd p[2] = {{.fd = sig_fd, .events = POLLIN}, {.fd = chan ? vmc_channel_fd(chan) : -1, .events = POLLIN}};
        if (host_gone)
            p[1].fd = -1; /* not connected: the port polls readable until it is */
        int r = poll(p, 2, (int)(left < 200 ? left : 200));
        if (r < 0 && errno != EINTR)
            vmc_sleep_ms(10);
        host_gone = false;
        if (sig_fd >= 0 && r > 0 && (p[0].revents & POLLIN)) {
            struct signalfd_siginfo si[8];
            while (read(sig_fd, si, sizeof si) > 0)
                ;
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (r > 0 && p[1].revents && vmc_channel_read_input(chan, vmc_session_on_frame, NULL) <= 0)
            host_gone = true;
    }
}

/* The kernel's count of OOM kills since boot (/proc/vmstat oom_kill), or 0. */
static long oom_kills(void)
{
    FILE *f = fopen("/proc/vmstat", "re");
    if (f == NULL)
        return 0;
    char line[128];
    long n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "oom_kill %ld", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* START_ERROR, then sync and wait for the host to end the VM. */
static void start_error(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void start_error(int code, const char *fmt, ...)
{
    char msg[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vmc_error("start error %d: %s", code, msg);
    sync();
    if (chan != NULL) {
        vmc_send_start_error(VMC_MAIN_SESSION, code, msg);
        idle(GRACE_MS);
    }
    reboot_now();
}

/* /dev first: without it PID 1 has no console (the initramfs has no nodes). */
static void early_mounts(void)
{
    mkdir("/dev", 0755);
    int mount_dev_errno = 0; /* reported below, once the console may be open */
    if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, NULL) < 0)
        mount_dev_errno = errno;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int c = open("/dev/console", O_RDWR | O_NOCTTY);
        if (c < 0)
            c = open("/dev/null", O_RDWR);
        if (c >= 0 && c != fd) {
            dup2(c, fd);
            close(c);
        }
    }
    if (access("/dev/null", F_OK) < 0)
        vmc_error("mount devtmpfs on /dev: %s (errno %d)", strerror(mount_dev_errno), mount_dev_errno);
    mkdir("/proc", 0555);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        vmc_error("mount proc on /proc: %s (errno %d)", strerror(errno), errno);
    mkdir("/sys", 0555);
    if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        vmc_error("mount sysfs on /sys: %s (errno %d)", strerror(errno), errno);
}

static bool cmdline_has(const char *word)
{
    char *cmdline = vmc_read_file("/proc/cmdline", 65536, NULL);
    if (cmdline == NULL)
        return false;
    bool found = false;
    for (char *save = NULL, *tok = strtok_r(cmdline, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
        if (strcmp(tok, word) == 0)
            found = true;
    free(cmdline);
    return found;
}

/* /dev/vdX of the virtio-blk disk whose serial is `serial` (compared as the
 * kernel shows it: at most 20 bytes). Waits up to DISK_TIMEOUT_MS. */
static int find_disk(const char *serial, char *dev, size_t len)
{
    char want[21];
    snprintf(want, sizeof want, "%s", serial);
    int64_t deadline = vmc_now_ms() + DISK_TIMEOUT_MS;
    for (;;) {
        DIR *d = opendir("/sys/block");
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, "vd", 2) != 0)
                continue;
            char attr[300], value[64];
            snprintf(attr, sizeof attr, "/sys/block/%s/serial", de->d_name);
            if (vmc_read_attr(attr, value, sizeof value) == 0 && strcmp(value, want) == 0) {
                snprintf(dev, len, "/dev/%s", de->d_name);
                if (access(dev, F_OK) == 0) {
                    closedir(d);
                    return 0;
                }
            }
        }
        if (d != NULL)
            closedir(d);
        if (vmc_now_ms() >= deadline) {
            errno = ENOENT;
            return -1;
        }
        vmc_sleep_ms(2);
    }
}

static void read_config(struct vmc_config *cfg)
{
    char dev[300], err[1024];
    if (find_disk("config", dev, sizeof dev) < 0)
        start_error(VMC_EXIT_SETUP_FAILED, "config disk: no virtio-blk disk with serial \"config\" in /sys/block");
    mkdir(CONFIG_MNT, 0755);
    if (mount(dev, CONFIG_MNT, "iso9660", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        start_error(VMC_EXIT_SETUP_FAILED, "mount %s (iso9660) on %s: %s (errno %d)", dev, CONFIG_MNT, strerror(errno),
                    errno);
    size_t len;
    char *text = vmc_read_file(CONFIG_MNT "/config.json", 16u << 20, &len);
    if (text == NULL)
        start_error(VMC_EXIT_SETUP_FAILED, "read %s: %s (errno %d)", CONFIG_MNT "/config.json", strerror(errno), errno);
    if (umount(CONFIG_MNT) < 0)
        vmc_error("umount %s: %s (errno %d)", CONFIG_MNT, strerror(errno), errno);
    if (vmc_config_parse(text, len, cfg, err, sizeof err) < 0)
        start_error(VMC_EXIT_SETUP_FAILED, "%s", err);
    free(text);
}

/* A template's boot (vmcontainer.template=1): the host saves the VM while this
 * waits; each clone resumes here and gets its own config over the port. */
static void receive_config(struct vmc_config *cfg)
{
    char err[1024];
    size_t len;
    char *text = vmc_warm_wait_config(chan, &len);
    vmc_warm_freshen(text, len);
    if (vmc_config_parse(text, len, cfg, err, sizeof err) < 0)
        start_error(VMC_EXIT_SETUP_FAILED, "%s", err);
    free(text);
}

static void mount_rootfs(const struct vmc_config *cfg)
{
    char dev[300];
    if (find_disk(cfg->rootfs_serial, dev, sizeof dev) < 0)
        start_error(VMC_EXIT_SETUP_FAILED, "rootfs: no virtio-blk disk with serial \"%s\" in /sys/block",
                    cfg->rootfs_serial);
    mkdir(NEWROOT, 0755);
    /* Read-only root filesystems are mounted read-write when the disk allows, so
     * that mount points can be made; the container's view is then remounted
     * read-only (container.c), as runc does. */
    if (mount(dev, NEWROOT, cfg->rootfs_fstype, 0, NULL) == 0)
        return;
    int e = errno;
    if (cfg->rootfs_readonly && (e == EROFS || e == EACCES) &&
        mount(dev, NEWROOT, cfg->rootfs_fstype, MS_RDONLY, NULL) == 0)
        return;
    start_error(VMC_EXIT_SETUP_FAILED, "mount %s (%s) on %s: %s (errno %d)", dev, cfg->rootfs_fstype, NEWROOT,
                strerror(e), e);
}

static const char *write_etc_file(const char *name, const char *content, const char *suffix)
{
    static char paths[3][64];
    static int used;
    if (content == NULL)
        return NULL;
    char *path = paths[used++ % 3];
    snprintf(path, sizeof paths[0], RUN_DIR "/%s", name);
    size_t len = strlen(content);
    char *buf = malloc(len + strlen(suffix) + 1);
    if (buf == NULL)
        start_error(VMC_EXIT_SETUP_FAILED, "out of memory writing %s", path);
    memcpy(buf, content, len + 1);
    strcat(buf, suffix);
    if (vmc_write_file(path, buf, strlen(buf), 0644) < 0)
        start_error(VMC_EXIT_SETUP_FAILED, "write %s: %s (errno %d)", path, strerror(errno), errno);
    free(buf);
    return path;
}

static int64_t boottime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
    int64_t t_init = boottime_ms();
    early_mounts();
    vmc_loopback_up();
    umask(022);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0)
        vmc_error("signalfd: %s (errno %d)", strerror(errno), errno);
    signal(SIGPIPE, SIG_IGN);

    char port[300];
    if (vmc_channel_find(VMC_AGENT_PORT_NAME, port, sizeof port, PORT_TIMEOUT_MS) < 0) {
        vmc_error("no virtio-serial port named %s in /sys/class/virtio-ports: %s (errno %d)", VMC_AGENT_PORT_NAME,
                  strerror(errno), errno);
        reboot_now();
    }
    if ((chan = vmc_channel_open(port)) == NULL) {
        vmc_error("open %s: %s (errno %d)", port, strerror(errno), errno);
        reboot_now();
    }
    vmc_reply_set_channel(chan);
    vmc_sessions_init(chan, sig_fd);
    json_object *hello = json_object_new_object();
    json_object_object_add(hello, "version", json_object_new_int(VMC_PROTOCOL_VERSION));
    json_object_object_add(hello, "agent", json_object_new_string(AGENT_NAME));
    vmc_send_json(VMC_MSG_HELLO, VMC_MAIN_SESSION, hello);
    if (cmdline_has("vmcontainer.probe=1")) {
        /* The host only wants HELLO: write nothing more, and power off once the
         * host hangs up (so HELLO surely left QEMU: with KVM's ioeventfd QEMU
         * hands it to the socket asynchronously), or after a second. */
        for (int64_t end = vmc_now_ms() + 1000, left; (left = end - vmc_now_ms()) > 0;) {
            struct pollfd p = {.fd = vmc_channel_fd(chan), .events = POLLIN};
            if (poll(&p, 1, (int)left) > 0 && ((p.revents & POLLHUP) ||
                                               vmc_channel_read_input(chan, vmc_session_on_frame, NULL) <= 0))
                break;
        }
        reboot_now();
    }
    vmc_log_set_channel(chan);
    vmc_info("boot: kernel start to init %lld ms, init to HELLO %lld ms", (long long)t_init,
             (long long)(boottime_ms() - t_init));

    struct vmc_config cfg;
    if (cmdline_has("vmcontainer.template=1"))
        receive_config(&cfg);
    else
        read_config(&cfg);
    char net_err[256];
    if (vmc_net_apply(&cfg.network, net_err, sizeof net_err) < 0)
        start_error(VMC_EXIT_SETUP_FAILED, "%s", net_err);
    mount_rootfs(&cfg);
    for (size_t i = 0; i < cfg.nmounts; i++)
        if (cfg.mounts[i].type == VMC_MOUNT_VOLUME && find_disk(cfg.mounts[i].source, cfg.mounts[i].dev,
                                                                 sizeof cfg.mounts[i].dev) < 0)
            start_error(VMC_EXIT_SETUP_FAILED, "volume: no virtio-blk disk with serial \"%s\" in /sys/block",
                        cfg.mounts[i].source);
    vmc_sessions_set_rootfs(NEWROOT);

    mkdir("/run", 0755);
    if (mkdir(RUN_DIR, 0755) < 0 && errno != EEXIST)
        start_error(VMC_EXIT_SETUP_FAILED, "mkdir %s: %s (errno %d)", RUN_DIR, strerror(errno), errno);
    struct vmc_etc_files etc = {
        .hostname = write_etc_file("hostname", cfg.hostname, "\n"),
        .hosts = write_etc_file("hosts", cfg.hosts, ""),
        .resolv_conf = write_etc_file("resolv.conf", cfg.resolv_conf, ""),
    };
    vmc_net_set_resolv_conf(etc.resolv_conf);
    if (cmdline_has("vmcontainer.maintenance=1")) {
        /* docker cp/export/diff/commit of a stopped container: its disks, no
         * process (PROTOCOL.md, "Maintenance boot"). */
        vmc_archive_set_etc_files(etc.hostname, etc.hosts, etc.resolv_conf);
        vmc_info("maintenance boot: serving ARCHIVE requests only");
        vmc_sessions_serve_maintenance();
    }

    long oom_before = oom_kills();
    struct vmc_spawned st;
    int rc = vmc_container_start(&cfg, NEWROOT, &etc, &st);
    if (rc != 0)
        start_error(st.exit_code, "%s", st.message);
    json_object *started = json_object_new_object();
    json_object_object_add(started, "pid", json_object_new_int(st.pid));
    vmc_send_json(VMC_MSG_STARTED, VMC_MAIN_SESSION, started);

    /* Output, stdin, signals and EXEC sessions until the process ended and every
     * EXEC session got its EXIT. */
    int status = vmc_sessions_serve(&st, cfg.process.stdin);

    /* Every process of the container's PID namespace is gone with its PID 1:
     * sync, so that the host may end the VM at once. No umount: it costs 15-20 ms
     * of TCG time on every exit (measured), while sync alone (~9 ms) leaves the
     * rootfs consistent, its journal replayed by the next mount. */
    sync();
    /* As Docker's OOMKilled: the kernel's OOM killer ended a process of the
     * container (the guest runs nothing else that it could pick). */
    json_object *exit_obj = vmc_exit_json(status, oom_kills() > oom_before);
    vmc_replay_send_exit(json_object_to_json_string_ext(exit_obj, JSON_C_TO_STRING_PLAIN));
    json_object_put(exit_obj);
    idle(GRACE_MS);
    reboot_now();
}
