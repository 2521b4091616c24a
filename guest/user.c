/* Docker's --user resolution (runc, github.com/moby/sys/user GetExecUser). */
#include "user.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_ID 2147483647L
#define MAX_FILE (16u << 20)

/* strconv.Atoi: optional sign, decimal digits, no overflow. */
static bool parse_int(const char *s, long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '\0')
        return false;
    for (const char *q = p; *q != '\0'; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Split line (modified in place) at ':' into at most n fields; missing ones "". */
static void split_fields(char *line, char **f, int n)
{
    for (int i = 0; i < n; i++) {
        f[i] = line;
        char *c = line != NULL ? strchr(line, ':') : NULL;
        if (line == NULL)
            f[i] = "";
        else if (c != NULL) {
            *c = '\0';
            line = c + 1;
        } else
            line = NULL;
    }
}

/* Atoi with failures read as 0, as moby's parseLine does. */
static long field_int(const char *s)
{
    long v;
    return parse_int(s, &v) ? v : 0;
}

/* Next non-empty, non-comment line of the buffer at *pos (NUL-terminated in place). */
static char *next_line(char **pos)
{
    while (*pos != NULL && **pos != '\0') {
        char *line = *pos;
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
            *pos = nl + 1;
        } else
            *pos = NULL;
        while (*line == ' ' || *line == '\t')
            line++;
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == ' ' || line[l - 1] == '\t' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (l == 0 || line[0] == '#')
            continue;
        return line;
    }
    return NULL;
}

static int fail(char *err, size_t errlen, const char *msg, const char *arg)
{
    snprintf(err, errlen, msg, arg);
    return -1;
}

int vmc_user_resolve(const char *spec, const char *passwd_path, const char *group_path, struct vmc_user *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *spec_copy = strdup(spec), *passwd = NULL, *group = NULL, *home = NULL;
    char *user_arg, *group_arg, *matched_name = NULL;
    int rc = -1;
    if (spec_copy == NULL)
        return fail(err, errlen, "out of memory resolving user %s", spec);
    char *f[7];
    split_fields(spec_copy, f, 2);
    user_arg = f[0];
    group_arg = f[1];
    long uid_arg = 0, gid_arg = 0;
    bool uid_numeric = parse_int(user_arg, &uid_arg);
    bool gid_numeric = parse_int(group_arg, &gid_arg);

    long uid = 0, gid = 0;
    passwd = vmc_read_file(passwd_path, MAX_FILE, NULL);
    if (passwd == NULL && errno != ENOENT && errno != ENOTDIR && errno != EACCES) {
        char msg[300];
        snprintf(msg, sizeof msg, "read %s: %s", passwd_path, strerror(errno));
        fail(err, errlen, "%s", msg);
        goto out;
    }
    bool found = false;
    for (char *pos = passwd, *line; !found && (line = next_line(&pos)) != NULL;) {
        split_fields(line, f, 7);
        long u = field_int(f[2]);
        bool match;
        if (user_arg[0] == '\0')
            match = u == 0; /* the default user, root */
        else if (uid_numeric)
            match = u == uid_arg;
        else
            match = strcmp(f[0], user_arg) == 0;
        if (match) {
            found = true;
            uid = u;
            gid = field_int(f[3]);
            if ((matched_name = strdup(f[0])) == NULL || (home = strdup(f[5])) == NULL) {
                fail(err, errlen, "out of memory resolving user %s", spec);
                goto out;
            }
        }
    }
    if (!found && user_arg[0] != '\0') {
        if (!uid_numeric) {
            fail(err, errlen, "unable to find user %s: no matching entries in passwd file", user_arg);
            goto out;
        }
        uid = uid_arg; /* numeric and not in passwd: gid stays 0 */
    }
    if (uid < 0 || uid > MAX_ID) {
        fail(err, errlen, "%s", "uids and gids must be in range 0-2147483647");
        goto out;
    }

    if (group_arg[0] != '\0' || matched_name != NULL) {
        group = vmc_read_file(group_path, MAX_FILE, NULL);
        if (group == NULL && errno != ENOENT && errno != ENOTDIR && errno != EACCES) {
            char msg[300];
            snprintf(msg, sizeof msg, "read %s: %s", group_path, strerror(errno));
            fail(err, errlen, "%s", msg);
            goto out;
        }
        bool group_found = false;
        size_t cap = 0;
        for (char *pos = group, *line; (line = next_line(&pos)) != NULL;) {
            split_fields(line, f, 4);
            long g = field_int(f[2]);
            if (group_arg[0] != '\0') {
                if (gid_numeric ? g == gid_arg : strcmp(f[0], group_arg) == 0) {
                    gid = g; /* first match wins */
                    group_found = true;
                    break;
                }
                continue;
            }
            /* Implicit form: supplementary groups are those listing the user. */
            bool member = false;
            for (char *m = f[3], *save = NULL, *tok; (tok = strtok_r(m, ",", &save)) != NULL; m = NULL) {
                while (*tok == ' ')
                    tok++;
                if (strcmp(tok, matched_name) == 0) {
                    member = true;
                    break;
                }
            }
            if (!member)
                continue;
            if (out->nsgids == cap) {
                cap = cap ? cap * 2 : 8;
                gid_t *n = realloc(out->sgids, cap * sizeof *n);
                if (n == NULL) {
                    fail(err, errlen, "out of memory resolving user %s", spec);
                    goto out;
                }
                out->sgids = n;
            }
            out->sgids[out->nsgids++] = (gid_t)g;
        }
        if (group_arg[0] != '\0' && !group_found) {
            if (!gid_numeric) {
                fail(err, errlen, "unable to find group %s: no matching entries in group file", group_arg);
                goto out;
            }
            gid = gid_arg;
        }
    }
    if (gid < 0 || gid > MAX_ID) {
        fail(err, errlen, "%s", "uids and gids must be in range 0-2147483647");
        goto out;
    }
    out->uid = (uid_t)uid;
    out->gid = (gid_t)gid;
    if (home == NULL || home[0] == '\0') {
        free(home);
        home = strdup("/");
    }
    if (home == NULL) {
        fail(err, errlen, "out of memory resolving user %s", spec);
        goto out;
    }
    out->home = home;
    home = NULL;
    rc = 0;
out:
    free(spec_copy);
    free(passwd);
    free(group);
    free(home);
    free(matched_name);
    if (rc < 0)
        vmc_user_free(out);
    return rc;
}

void vmc_user_free(struct vmc_user *u)
{
    free(u->sgids);
    free(u->home);
    memset(u, 0, sizeof *u);
}

int vmc_group_resolve(const char *name, const char *group_path, gid_t *out, char *err, size_t errlen)
{
    long n;
    if (parse_int(name, &n)) {
        if (n < 0 || n > 0x7fffffffL)
            return fail(err, errlen, "invalid group %s", name);
        *out = (gid_t)n;
        return 0;
    }
    char *group = vmc_read_file(group_path, MAX_FILE, NULL);
    int rc = fail(err, errlen, "unable to find group %s: no matching entries in group file", name);
    char *f[4];
    for (char *pos = group, *line; (line = next_line(&pos)) != NULL;) {
        split_fields(line, f, 4);
        if (strcmp(f[0], name) == 0) {
            *out = (gid_t)field_int(f[2]);
            rc = 0;
            break;
        }
    }
    free(group);
    return rc;
}
