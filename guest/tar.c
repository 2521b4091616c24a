/* Streaming ustar + PAX: see tar.h. */
#include "tar.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define COPY_CHUNK 65536
#define MAX_PAX (1u << 20)

struct ustar {
    char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], chksum[8], type, link[100];
    char magic[6], version[2], uname[32], gname[32], devmajor[8], devminor[8], prefix[155], pad[12];
};
_Static_assert(sizeof(struct ustar) == VMC_TAR_BLOCK, "ustar header is one block");

int vmc_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vmc_read_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            if (got == 0)
                return 1;
            errno = EIO;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

static void octal(char *field, size_t width, uint64_t v)
{
    /* width-1 octal digits, zero-padded, then NUL (callers checked it fits). */
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0; v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

static bool fits(uint64_t v, size_t width) { return v < (1ull << (3 * (width - 1))); }

static int write_block_header(int fd, struct ustar *h)
{
    memcpy(h->magic, "ustar", 6);
    memcpy(h->version, "00", 2);
    memset(h->chksum, ' ', sizeof h->chksum);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof *h; i++)
        sum += ((unsigned char *)h)[i];
    snprintf(h->chksum, sizeof h->chksum, "%06o", sum);
    return vmc_write_all(fd, h, sizeof *h);
}

static int pad(int fd, uint64_t size)
{
    static const char zeros[VMC_TAR_BLOCK];
    size_t rem = (size_t)(size % VMC_TAR_BLOCK);
    return rem ? vmc_write_all(fd, zeros, VMC_TAR_BLOCK - rem) : 0;
}

/* One "len key=value\n" record appended to buf. */
static void pax_record(char **buf, size_t *len, const char *key, const char *value)
{
    size_t body = strlen(key) + strlen(value) + 3, total = body + 1;
    while (total != body + (size_t)snprintf(NULL, 0, "%zu", total))
        total = body + (size_t)snprintf(NULL, 0, "%zu", total);
    char *n = realloc(*buf, *len + total + 1);
    if (n == NULL)
        return;
    *buf = n;
    *len += (size_t)sprintf(n + *len, "%zu %s=%s\n", total, key, value);
}

int vmc_tar_header(int fd, const char *name, const struct stat *st, char type, const char *link)
{
    struct ustar h;
    memset(&h, 0, sizeof h);
    uint64_t size = type == '0' ? (uint64_t)st->st_size : 0;
    char *pax = NULL, num[32];
    size_t paxlen = 0;
    if (strlen(name) >= sizeof h.name)
        pax_record(&pax, &paxlen, "path", name);
    if (link != NULL && strlen(link) >= sizeof h.link)
        pax_record(&pax, &paxlen, "linkpath", link);
    if (!fits(size, sizeof h.size))
        snprintf(num, sizeof num, "%llu", (unsigned long long)size), pax_record(&pax, &paxlen, "size", num);
    if (!fits(st->st_uid, sizeof h.uid))
        snprintf(num, sizeof num, "%u", (unsigned)st->st_uid), pax_record(&pax, &paxlen, "uid", num);
    if (!fits(st->st_gid, sizeof h.gid))
        snprintf(num, sizeof num, "%u", (unsigned)st->st_gid), pax_record(&pax, &paxlen, "gid", num);
    if (paxlen > 0) {
        struct ustar x;
        memset(&x, 0, sizeof x);
        const char *base = strrchr(name, '/');
        snprintf(x.name, sizeof x.name, "PaxHeaders.0/%.80s", base && base[1] ? base + 1 : name);
        octal(x.mode, sizeof x.mode, 0644);
        octal(x.uid, sizeof x.uid, 0);
        octal(x.gid, sizeof x.gid, 0);
        octal(x.size, sizeof x.size, paxlen);
        octal(x.mtime, sizeof x.mtime, 0);
        x.type = 'x';
        int rc = write_block_header(fd, &x) < 0 || vmc_write_all(fd, pax, paxlen) < 0 || pad(fd, paxlen) < 0;
        free(pax);
        if (rc)
            return -1;
    }
    memcpy(h.name, name, strnlen(name, sizeof h.name));
    octal(h.mode, sizeof h.mode, st->st_mode & 07777);
    octal(h.uid, sizeof h.uid, fits(st->st_uid, sizeof h.uid) ? st->st_uid : 0);
    octal(h.gid, sizeof h.gid, fits(st->st_gid, sizeof h.gid) ? st->st_gid : 0);
    octal(h.size, sizeof h.size, fits(size, sizeof h.size) ? size : 0);
    octal(h.mtime, sizeof h.mtime, st->st_mtime > 0 && fits((uint64_t)st->st_mtime, 12) ? (uint64_t)st->st_mtime : 0);
    h.type = type;
    if (link != NULL)
        memcpy(h.link, link, strnlen(link, sizeof h.link));
    if (type == '3' || type == '4') {
        octal(h.devmajor, sizeof h.devmajor, major(st->st_rdev));
        octal(h.devminor, sizeof h.devminor, minor(st->st_rdev));
    }
    return write_block_header(fd, &h);
}

int vmc_tar_data(int fd, int src, uint64_t size)
{
    static char buf[COPY_CHUNK];
    uint64_t left = size;
    while (left > 0) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        ssize_t n = read(src, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) { /* shrank: zeros keep the archive well-formed */
            memset(buf, 0, want);
            n = (ssize_t)want;
        }
        if (vmc_write_all(fd, buf, (size_t)n) < 0)
            return -1;
        left -= (uint64_t)n;
    }
    return pad(fd, size);
}

int vmc_tar_end(int fd)
{
    static const char zeros[2 * VMC_TAR_BLOCK];
    return vmc_write_all(fd, zeros, sizeof zeros);
}

/* Reader. */

static int64_t number(const char *field, size_t width)
{
    const unsigned char *f = (const unsigned char *)field;
    if (f[0] & 0x80) { /* base-256 (GNU) */
        int64_t v = f[0] & 0x3f;
        for (size_t i = 1; i < width; i++)
            v = (v << 8) | f[i];
        return (f[0] & 0x40) ? -v : v;
    }
    int64_t v = 0;
    size_t i = 0;
    while (i < width && (field[i] == ' ' || field[i] == '\0'))
        i++;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++)
        v = v * 8 + (field[i] - '0');
    return v;
}

static char *field_str(const char *field, size_t width)
{
    return strndup(field, strnlen(field, width));
}

static bool zero_block(const struct ustar *h)
{
    const unsigned char *p = (const unsigned char *)h;
    for (size_t i = 0; i < sizeof *h; i++)
        if (p[i])
            return false;
    return true;
}

static bool checksum_ok(const struct ustar *h)
{
    struct ustar c = *h;
    memset(c.chksum, ' ', sizeof c.chksum);
    unsigned long sum = 0;
    long ssum = 0;
    for (size_t i = 0; i < sizeof c; i++) {
        sum += ((unsigned char *)&c)[i];
        ssum += ((signed char *)&c)[i];
    }
    int64_t want = number(h->chksum, sizeof h->chksum);
    return (int64_t)sum == want || ssum == want;
}

static int skip_raw(int fd, uint64_t left);
static uint64_t padding(uint64_t size);

static char *read_body(int fd, uint64_t size)
{
    if (size > MAX_PAX)
        return NULL;
    char *b = malloc((size_t)size + 1);
    if (b == NULL || vmc_read_exact(fd, b, (size_t)size) != 0 || skip_raw(fd, padding(size)) < 0) {
        free(b);
        return NULL;
    }
    b[size] = '\0';
    return b;
}

struct pending { char *path, *link; int64_t size, uid, gid, mtime; };

static void parse_pax(char *body, size_t len, struct pending *p)
{
    size_t off = 0;
    while (off < len) {
        char *rec = body + off, *end;
        unsigned long n = strtoul(rec, &end, 10);
        if (n == 0 || *end != ' ' || off + n > len || rec[n - 1] != '\n')
            return;
        rec[n - 1] = '\0';
        char *key = end + 1, *eq = strchr(key, '=');
        off += n;
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *val = eq + 1;
        if (strcmp(key, "path") == 0)
            free(p->path), p->path = strdup(val);
        else if (strcmp(key, "linkpath") == 0)
            free(p->link), p->link = strdup(val);
        else if (strcmp(key, "size") == 0)
            p->size = strtoll(val, NULL, 10);
        else if (strcmp(key, "uid") == 0)
            p->uid = strtoll(val, NULL, 10);
        else if (strcmp(key, "gid") == 0)
            p->gid = strtoll(val, NULL, 10);
        else if (strcmp(key, "mtime") == 0)
            p->mtime = strtoll(val, NULL, 10);
    }
}

int vmc_tar_next(int fd, struct vmc_tar_entry *e, char *err, size_t errlen)
{
    struct pending p = {.size = -1, .uid = -1, .gid = -1, .mtime = -1};
    struct ustar h;
    memset(e, 0, sizeof *e);
    for (;;) {
        int r = vmc_read_exact(fd, &h, sizeof h);
        if (r == 1 || (r == 0 && zero_block(&h))) {
            free(p.path);
            free(p.link);
            return 0; /* end of archive (a missing second zero block is fine, as with Go) */
        }
        if (r < 0) {
            snprintf(err, errlen, "unexpected EOF");
            goto fail;
        }
        if (!checksum_ok(&h)) {
            snprintf(err, errlen, "archive/tar: invalid tar header");
            goto fail;
        }
        int64_t size = number(h.size, sizeof h.size);
        if (size < 0) {
            snprintf(err, errlen, "archive/tar: invalid tar header");
            goto fail;
        }
        if (h.type == 'x' || h.type == 'g' || h.type == 'L' || h.type == 'K') {
            char *body = read_body(fd, (uint64_t)size);
            if (body == NULL) {
                snprintf(err, errlen, "archive/tar: invalid or truncated extended header");
                goto fail;
            }
            if (h.type == 'x')
                parse_pax(body, (size_t)size, &p);
            else if (h.type == 'L')
                free(p.path), p.path = strdup(body);
            else if (h.type == 'K')
                free(p.link), p.link = strdup(body);
            free(body);
            continue;
        }
        if (p.path != NULL)
            e->name = p.path;
        else if (h.prefix[0] != '\0' && memcmp(h.magic, "ustar", 5) == 0) {
            char *pre = field_str(h.prefix, sizeof h.prefix), *nm = field_str(h.name, sizeof h.name);
            if (pre != NULL && nm != NULL && asprintf(&e->name, "%s/%s", pre, nm) < 0)
                e->name = NULL;
            free(pre);
            free(nm);
        } else
            e->name = field_str(h.name, sizeof h.name);
        e->link = p.link != NULL ? p.link : (h.link[0] ? field_str(h.link, sizeof h.link) : NULL);
        e->type = h.type == '\0' || h.type == '7' ? '0' : h.type;
        e->mode = (mode_t)(number(h.mode, sizeof h.mode) & 07777);
        e->uid = (uid_t)(p.uid >= 0 ? p.uid : number(h.uid, sizeof h.uid));
        e->gid = (gid_t)(p.gid >= 0 ? p.gid : number(h.gid, sizeof h.gid));
        e->size = (uint64_t)(p.size >= 0 ? p.size : size);
        e->mtime = p.mtime >= 0 ? p.mtime : number(h.mtime, sizeof h.mtime);
        e->devmajor = (unsigned)number(h.devmajor, sizeof h.devmajor);
        e->devminor = (unsigned)number(h.devminor, sizeof h.devminor);
        if (e->name == NULL) {
            snprintf(err, errlen, "out of memory");
            vmc_tar_entry_free(e);
            return -1;
        }
        return 1;
    }
fail:
    free(p.path);
    free(p.link);
    return -1;
}

void vmc_tar_entry_free(struct vmc_tar_entry *e)
{
    free(e->name);
    free(e->link);
    e->name = e->link = NULL;
}

static int skip_raw(int fd, uint64_t left)
{
    static char buf[COPY_CHUNK];
    while (left > 0) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        if (vmc_read_exact(fd, buf, want) != 0) {
            errno = EIO;
            return -1;
        }
        left -= want;
    }
    return 0;
}

static uint64_t padding(uint64_t size) { return (VMC_TAR_BLOCK - size % VMC_TAR_BLOCK) % VMC_TAR_BLOCK; }

int vmc_tar_skip(int fd, uint64_t size) { return skip_raw(fd, size + padding(size)); }

int vmc_tar_copy(int fd, int dst, uint64_t size)
{
    static char buf[COPY_CHUNK];
    uint64_t left = size;
    while (left > 0) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        if (vmc_read_exact(fd, buf, want) != 0) {
            errno = EIO;
            return -1;
        }
        if (vmc_write_all(dst, buf, want) < 0)
            return -1;
        left -= want;
    }
    return skip_raw(fd, padding(size));
}
