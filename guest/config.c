/* /config.json of the config disk, parsed with json-c. */
#include "config.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int vmc_config_fail(char *err, size_t errlen, const char *fmt, ...)
{
    int n = snprintf(err, errlen, "config.json: ");
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* A copy of the string member `key` of obj into *out: 0 found, 1 absent (or
 * null) and *out = def (copied, or NULL), -1 wrong type or an embedded NUL. */
static int get_string(json_object *obj, const char *key, const char *def, char **out)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
        if (def != NULL && (*out = strdup(def)) == NULL)
            return -1;
        return 1;
    }
    if (!json_object_is_type(v, json_type_string))
        return -1;
    const char *s = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != strlen(s))
        return -1;
    return (*out = strdup(s)) == NULL ? -1 : 0;
}

/* A NULL-terminated copy of an array of strings; `extra` spare slots at the end. */
static char **get_string_array(json_object *arr, size_t extra, size_t *n_out)
{
    size_t n = json_object_array_length(arr);
    char **out = calloc(n + 1 + extra, sizeof *out);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        if (s == NULL || (size_t)json_object_get_string_len(v) != strlen(s) || (out[i] = strdup(s)) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
    }
    *n_out = n;
    return out;
}

int vmc_config_parse(const char *text, size_t len, struct vmc_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    int rc = -1;
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return vmc_config_fail(err, errlen, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        vmc_config_fail(err, errlen, "invalid JSON: %s at offset %zu",
             json_tokener_error_desc(jerr == json_tokener_success ? json_tokener_continue : jerr),
             json_tokener_get_parse_end(tok));
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        vmc_config_fail(err, errlen, "not a JSON object");
        goto out;
    }
    json_object *v, *rootfs, *process;
    if (!json_object_object_get_ex(root, "version", &v) || !json_object_is_type(v, json_type_int)) {
        vmc_config_fail(err, errlen, "\"version\" missing or not an integer");
        goto out;
    }
    cfg->version = json_object_get_int(v);
    if (cfg->version != VMC_CONFIG_VERSION) {
        vmc_config_fail(err, errlen, "unsupported version %d (this agent reads %d)", cfg->version, VMC_CONFIG_VERSION);
        goto out;
    }
    if (get_string(root, "id", "", &cfg->id) < 0 || get_string(root, "hostname", NULL, &cfg->hostname) < 0 ||
        get_string(root, "hosts", NULL, &cfg->hosts) < 0 ||
        get_string(root, "resolv_conf", NULL, &cfg->resolv_conf) < 0) {
        vmc_config_fail(err, errlen, "\"id\", \"hostname\", \"hosts\" and \"resolv_conf\" must be strings");
        goto out;
    }

    if (!json_object_object_get_ex(root, "rootfs", &rootfs) || !json_object_is_type(rootfs, json_type_object)) {
        vmc_config_fail(err, errlen, "\"rootfs\" missing or not an object");
        goto out;
    }
    if (get_string(rootfs, "serial", NULL, &cfg->rootfs_serial) != 0 || cfg->rootfs_serial[0] == '\0') {
        vmc_config_fail(err, errlen, "\"rootfs.serial\" missing or not a non-empty string");
        goto out;
    }
    if (get_string(rootfs, "fstype", "ext4", &cfg->rootfs_fstype) < 0) {
        vmc_config_fail(err, errlen, "\"rootfs.fstype\" must be a string");
        goto out;
    }
    if (json_object_object_get_ex(rootfs, "readonly", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_boolean)) {
            vmc_config_fail(err, errlen, "\"rootfs.readonly\" must be a boolean");
            goto out;
        }
        cfg->rootfs_readonly = json_object_get_boolean(v);
    }

    if (!json_object_object_get_ex(root, "process", &process) || !json_object_is_type(process, json_type_object)) {
        vmc_config_fail(err, errlen, "\"process\" missing or not an object");
        goto out;
    }
    if (vmc_process_parse(process, "process", &cfg->process, err, errlen) < 0)
        goto out;
    if (vmc_mounts_parse(root, &cfg->mounts, &cfg->nmounts, err, errlen) < 0)
        goto out;
    if (vmc_net_config_parse(root, &cfg->network, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    if (root != NULL)
        json_object_put(root);
    json_tokener_free(tok);
    if (rc < 0)
        vmc_config_free(cfg);
    return rc;
}

static void free_array(char **a)
{
    if (a == NULL)
        return;
    for (char **p = a; *p != NULL; p++)
        free(*p);
    free(a);
}

void vmc_config_free(struct vmc_config *cfg)
{
    free(cfg->id);
    free(cfg->hostname);
    free(cfg->hosts);
    free(cfg->resolv_conf);
    free(cfg->rootfs_serial);
    free(cfg->rootfs_fstype);
    vmc_process_free(&cfg->process);
    vmc_mounts_free(cfg->mounts, cfg->nmounts);
    vmc_net_config_free(&cfg->network);
    memset(cfg, 0, sizeof *cfg);
}

void vmc_process_free(struct vmc_process *p)
{
    free_array(p->args);
    free_array(p->env);
    free_array(p->groups);
    free(p->cwd);
    free(p->user);
    memset(p, 0, sizeof *p);
}

/* An optional boolean member: 0 (absent or null: *out = false), -1 wrong type. */
static int get_bool(json_object *obj, const char *key, bool *out)
{
    json_object *v;
    *out = false;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return -1;
    *out = json_object_get_boolean(v);
    return 0;
}

/* An optional integer member in 0..65535: 0 (absent or null: *out = 0), -1 otherwise. */
static int get_u16(json_object *obj, const char *key, int *out)
{
    json_object *v;
    *out = 0;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -1;
    int64_t n = json_object_get_int64(v);
    if (n < 0 || n > 65535)
        return -1;
    *out = (int)n;
    return 0;
}

int vmc_process_parse(json_object *process, const char *what, struct vmc_process *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->make_cwd = strcmp(what, "process") == 0;
    json_object *v;
    size_t nargs = 0;
    if (!json_object_object_get_ex(process, "args", &v) || !json_object_is_type(v, json_type_array) ||
        (p->args = get_string_array(v, 0, &nargs)) == NULL || nargs == 0 || p->args[0][0] == '\0') {
        vmc_config_fail(err, errlen, "\"%s.args\" must be a non-empty array of strings", what);
        goto bad;
    }
    if (json_object_object_get_ex(process, "env", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_array) || (p->env = get_string_array(v, 1, &p->nenv)) == NULL) {
            vmc_config_fail(err, errlen, "\"%s.env\" must be an array of strings", what);
            goto bad;
        }
    } else if ((p->env = calloc(2, sizeof *p->env)) == NULL) {
        vmc_config_fail(err, errlen, "out of memory");
        goto bad;
    }
    if (get_string(process, "cwd", "/", &p->cwd) < 0 || get_string(process, "user", "", &p->user) < 0) {
        vmc_config_fail(err, errlen, "\"%s.cwd\" and \"%s.user\" must be strings", what, what);
        goto bad;
    }
    if (get_bool(process, "tty", &p->tty) < 0 || get_bool(process, "stdin", &p->stdin) < 0 ||
        get_bool(process, "init", &p->init) < 0) {
        vmc_config_fail(err, errlen, "\"%s.tty\", \"%s.stdin\" and \"%s.init\" must be booleans", what, what, what);
        goto bad;
    }
    if (json_object_object_get_ex(process, "groups", &v) && !json_object_is_type(v, json_type_null)) {
        size_t ngroups = 0;
        if (!json_object_is_type(v, json_type_array) || (p->groups = get_string_array(v, 0, &ngroups)) == NULL) {
            vmc_config_fail(err, errlen, "\"%s.groups\" must be an array of strings", what);
            goto bad;
        }
    }
    if (get_u16(process, "rows", &p->rows) < 0 || get_u16(process, "cols", &p->cols) < 0) {
        vmc_config_fail(err, errlen, "\"%s.rows\" and \"%s.cols\" must be integers from 0 to 65535", what, what);
        goto bad;
    }
    if (p->cwd[0] == '\0') {
        free(p->cwd);
        if ((p->cwd = strdup("/")) == NULL) {
            vmc_config_fail(err, errlen, "out of memory");
            goto bad;
        }
    }
    if (p->cwd[0] != '/') {
        vmc_config_fail(err, errlen, "the working directory \"%s\" is invalid, it needs to be an absolute path", p->cwd);
        goto bad;
    }
    return 0;
bad:
    vmc_process_free(p);
    return -1;
}
