/* Session 0's output kept until the host acknowledges it (PROTOCOL.md,
 * "Acknowledged output").
 *
 * A byte that reached the host's socket is not yet in the container's log: the
 * host may die with it in its receive buffer or its memory (a daemon killed with
 * SIGKILL or OOM). So every STDOUT/STDERR byte of the main process is kept here
 * until an ACK says the host stored it, and a restarted host's RESUME gets it
 * again. Records sit in one buffer, in the order sent; an ACK removes every
 * record it covers wherever it is (a partial line on stdout, which the host does
 * not store before its newline, must not pin the stderr records behind it).
 *
 * Output never waits for an ACK: ACKs travel on the port behind STDIN, which the
 * agent stops reading while a process does not take its stdin, and that process
 * may itself be blocked writing output — waiting for ACKs there would deadlock
 * (cat with 3 MiB in and out did). Above VMC_REPLAY_BOUND kept bytes the oldest
 * records are dropped instead: what a dead host can have lost is what sat in its
 * socket buffer (~200 KiB for a unix socket) and its one 64 KiB read, far less. */
#include "replay.h"

#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "protocol.h"
#include "util.h"

struct record {
    uint64_t start; /* offset of data[0] in its stream */
    uint32_t len;
    uint8_t type; /* VMC_MSG_STDOUT or VMC_MSG_STDERR */
};

static struct vmc_channel *chan;
static uint8_t *kept; /* struct record, then len bytes, repeated */
static size_t kept_len, kept_cap, kept_data;
static uint64_t sent[2]; /* bytes sent so far: stdout, stderr */
static char *exit_json; /* EXIT's payload once sent */

void vmc_replay_init(struct vmc_channel *ch) { chan = ch; }

static int stream_of(uint8_t type) { return type == VMC_MSG_STDERR; }

/* Drop the oldest records until len more bytes fit in VMC_REPLAY_BOUND. */
static void make_room(size_t len)
{
    size_t at = 0;
    while (at < kept_len && kept_data + len > VMC_REPLAY_BOUND) {
        struct record r;
        memcpy(&r, kept + at, sizeof r);
        kept_data -= r.len;
        at += sizeof r + r.len;
    }
    memmove(kept, kept + at, kept_len - at);
    kept_len -= at;
}

void vmc_replay_send(uint8_t type, const void *data, size_t len)
{
    int s = stream_of(type);
    make_room(len);
    size_t need = kept_len + sizeof(struct record) + len;
    if (need > kept_cap) {
        size_t cap = kept_cap ? kept_cap : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(kept, cap);
        if (nb == NULL) {
            /* Not kept: sent anyway, lost only if the host dies before storing it. */
            vmc_error("out of memory keeping %zu bytes of output for the host", len);
            sent[s] += len;
            vmc_channel_send(chan, type, VMC_MAIN_SESSION, data, len);
            return;
        }
        kept = nb;
        kept_cap = cap;
    }
    struct record r = {.start = sent[s], .len = (uint32_t)len, .type = type};
    memcpy(kept + kept_len, &r, sizeof r);
    memcpy(kept + kept_len + sizeof r, data, len);
    kept_len = need;
    kept_data += len;
    sent[s] += len;
    vmc_channel_send(chan, type, VMC_MAIN_SESSION, data, len);
}

void vmc_replay_send_exit(const char *json)
{
    free(exit_json);
    exit_json = strdup(json);
    vmc_channel_send(chan, VMC_MSG_EXIT, VMC_MAIN_SESSION, json, strlen(json));
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Drop the records the counts cover entirely; the rest keep their order. */
static void drop_stored(const uint64_t stored[2])
{
    size_t in = 0, out = 0;
    while (in < kept_len) {
        struct record r;
        memcpy(&r, kept + in, sizeof r);
        size_t whole = sizeof r + r.len;
        if (r.start + r.len <= stored[stream_of(r.type)]) {
            kept_data -= r.len;
        } else {
            if (out != in)
                memmove(kept + out, kept + in, whole);
            out += whole;
        }
        in += whole;
    }
    kept_len = out;
}

/* ACK's and RESUME's counts into stored, and the records they cover dropped;
 * false (logged) for a payload shorter than the counts. */
static bool take_counts(const char *what, const uint8_t *payload, size_t len, uint64_t stored[2])
{
    if (len < 16) {
        vmc_error("host sent a %s of %zu bytes (16 or more expected)", what, len);
        return false;
    }
    stored[0] = be64(payload);
    stored[1] = be64(payload + 8);
    drop_stored(stored);
    return true;
}

void vmc_replay_on_ack(const uint8_t *payload, size_t len)
{
    uint64_t stored[2];
    take_counts("ACK", payload, len, stored);
}

void vmc_replay_on_resume(const uint8_t *payload, size_t len)
{
    uint64_t stored[2];
    if (!take_counts("RESUME", payload, len, stored))
        return;
    vmc_info("host resumed at stdout %llu, stderr %llu: resending %zu bytes", (unsigned long long)stored[0],
             (unsigned long long)stored[1], kept_data);
    vmc_channel_send(chan, VMC_MSG_RESUMED, VMC_MAIN_SESSION, payload + 16, len - 16);
    for (size_t at = 0; at < kept_len;) {
        struct record r;
        memcpy(&r, kept + at, sizeof r);
        const uint8_t *data = kept + at + sizeof r;
        uint64_t have = stored[stream_of(r.type)];
        uint64_t skip = have > r.start ? have - r.start : 0; /* < r.len: drop_stored left it */
        vmc_channel_send(chan, r.type, VMC_MAIN_SESSION, data + skip, r.len - skip);
        at += sizeof r + r.len;
    }
    if (exit_json != NULL)
        vmc_channel_send(chan, VMC_MSG_EXIT, VMC_MAIN_SESSION, exit_json, strlen(exit_json));
}
