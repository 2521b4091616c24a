/* TOP: every process of the guest from /proc (the agent's view: PIDs of the
 * guest's initial PID namespace), as PROCESSES (guest/PROTOCOL.md). */
#include "top.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define PF_KTHREAD 0x00200000u

static int cmp_pid(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The effective uid from /proc/PID/status ("Uid: real effective saved fs"), as ps shows. */
static long status_uid(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    char *text = vmc_read_file(path, 65536, NULL);
    if (text == NULL)
        return -1;
    long real = -1, eff = -1;
    char *line = strstr(text, "\nUid:");
    if (line != NULL && sscanf(line + 5, "%ld %ld", &real, &eff) < 2)
        eff = real;
    free(text);
    return eff;
}

static json_object *cmdline_array(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    size_t len = 0;
    char *text = vmc_read_file(path, 1u << 20, &len);
    json_object *arr = json_object_new_array();
    for (size_t i = 0; text != NULL && i < len;) {
        size_t n = strnlen(text + i, len - i);
        json_object_array_add(arr, json_object_new_string_len(text + i, (int)n));
        i += n + 1;
    }
    free(text);
    return arr;
}

/* One process, or NULL for a kernel thread or one that has gone. */
static json_object *process(int pid, long page_kib)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *stat = vmc_read_file(path, 65536, NULL);
    if (stat == NULL)
        return NULL;
    /* pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime priority nice threads
     * itrealvalue starttime vsize rss: comm may hold anything, up to the last ')'. */
    char *open = strchr(stat, '('), *close = strrchr(stat, ')');
    json_object *o = NULL;
    char state;
    int ppid, tty;
    unsigned flags;
    unsigned long long utime, stime, start;
    long rss;
    if (open == NULL || close == NULL || close < open ||
        sscanf(close + 1, " %c %d %*d %*d %d %*d %u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %*u %ld",
               &state, &ppid, &tty, &flags, &utime, &stime, &start, &rss) != 8)
        goto out;
    if ((flags & PF_KTHREAD) || pid == 2 || ppid == 2)
        goto out;
    *close = '\0';
    o = json_object_new_object();
    json_object_object_add(o, "pid", json_object_new_int(pid));
    json_object_object_add(o, "ppid", json_object_new_int(ppid));
    json_object_object_add(o, "uid", json_object_new_int64(status_uid(pid)));
    json_object_object_add(o, "tty", json_object_new_int64((unsigned)tty));
    json_object_object_add(o, "start_ticks", json_object_new_int64((int64_t)start));
    json_object_object_add(o, "cpu_ticks", json_object_new_int64((int64_t)(utime + stime)));
    json_object_object_add(o, "rss_kib", json_object_new_int64(rss * page_kib));
    char st[2] = {state, '\0'};
    json_object_object_add(o, "state", json_object_new_string(st));
    json_object_object_add(o, "comm", json_object_new_string(open + 1));
    json_object_object_add(o, "cmdline", cmdline_array(pid));
out:
    free(stat);
    return o;
}

static int64_t uptime_ms(void)
{
    char buf[64];
    double up = 0;
    if (vmc_read_attr("/proc/uptime", buf, sizeof buf) == 0)
        up = strtod(buf, NULL);
    return (int64_t)(up * 1000);
}

json_object *vmc_top(void)
{
    size_t n = 0, cap = 256;
    int *pids = malloc(cap * sizeof *pids);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (pids != NULL && d != NULL && (de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        int pid = atoi(de->d_name);
        if (pid <= 1) /* the agent itself */
            continue;
        if (n == cap) {
            int *np = realloc(pids, (cap *= 2) * sizeof *pids);
            if (np == NULL)
                break;
            pids = np;
        }
        pids[n++] = pid;
    }
    if (d != NULL)
        closedir(d);
    if (pids != NULL)
        qsort(pids, n, sizeof *pids, cmp_pid);
    long page_kib = sysconf(_SC_PAGESIZE) / 1024;
    json_object *out = json_object_new_object();
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *p = process(pids[i], page_kib);
        if (p != NULL)
            json_object_array_add(arr, p);
    }
    free(pids);
    json_object_object_add(out, "clk_tck", json_object_new_int64(sysconf(_SC_CLK_TCK)));
    json_object_object_add(out, "uptime_ms", json_object_new_int64(uptime_ms()));
    json_object_object_add(out, "processes", arr);
    return out;
}
