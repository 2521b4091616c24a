/* /config.json of the config disk (guest/PROTOCOL.md, "Container config"). */
#ifndef VMC_CONFIG_H
#define VMC_CONFIG_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "mounts.h"
#include "net.h"

/* A process to start: "process" of the config, or the payload of EXEC. */
struct vmc_process {
    char **args; /* NULL-terminated, at least one */
    char **env;  /* NULL-terminated, with one spare slot (for HOME) */
    size_t nenv;
    char *cwd;  /* absolute; default "/" */
    char *user; /* Docker's --user; default "" */
    bool tty;   /* a PTY as stdin, stdout and stderr */
    bool stdin; /* stdin fed by STDIN frames (else /dev/null, or the PTY) */
    int rows, cols; /* initial PTY size; 0: leave the kernel's */
    bool init;      /* config only: the agent's small init as PID 1 */
    char **groups;  /* Docker's GroupAdd: names or numbers; NULL-terminated, may be NULL */
    bool make_cwd;  /* create cwd when missing: the main process yes (as Docker's
                     * create), an exec no (Docker's exec fails on chdir) */
};

struct vmc_config {
    int version;
    char *id;
    char *hostname;    /* NULL when absent: the image's files are left alone */
    char *hosts;       /* NULL when absent */
    char *resolv_conf; /* NULL when absent */
    char *rootfs_serial;
    char *rootfs_fstype; /* default "ext4" */
    bool rootfs_readonly;
    struct vmc_process process;
    struct vmc_mount *mounts; /* "mounts", in order; may be NULL */
    size_t nmounts;
    struct vmc_net_config network; /* "network": the NICs; none when absent */
};

/* Parse text (len bytes). 0, or -1 with a message in err (the config is then
 * freed). Unknown keys are ignored, so that later versions can add some. */
int vmc_config_parse(const char *text, size_t len, struct vmc_config *cfg, char *err, size_t errlen);
void vmc_config_free(struct vmc_config *cfg);

/* Parse a process object (`what` names it in messages: "process" or "exec").
 * 0, or -1 with a message in err (p is then freed). */
int vmc_process_parse(json_object *obj, const char *what, struct vmc_process *p, char *err, size_t errlen);
void vmc_process_free(struct vmc_process *p);

/* Writes "config.json: " and the message into err (errlen bytes); returns -1. */
int vmc_config_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
