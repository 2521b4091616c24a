/* Docker's ContainerPathStat (Engine API v1.45, the X-Docker-Container-Path-Stat
 * header of docker cp) of a path inside a container's root: Go's os.FileMode
 * bits, filepath.Base and time.Time's JSON, as the daemon's Go code writes them. */
#ifndef VMC_PATHSTAT_H
#define VMC_PATHSTAT_H

#include <json-c/json.h>
#include <sys/stat.h>

/* {"name", "size", "mode", "mtime", "linkTarget"} of abs (a clean absolute path,
 * resolved in root with RESOLVE_IN_ROOT, the last element not followed); a
 * symlink's linkTarget is its full resolution inside the root (a dangling one's
 * text). Fills st, sets *fd_out to an O_PATH fd of abs. A missing path ends the
 * worker with ARCHIVE_INFO status 404 (vmc_archive_fail), other errors 500. */
json_object *vmc_path_stat(int root, const char *abs, struct stat *st, int *fd_out);
/* filepath.Base of a Docker absolute path (malloc'd; "/" for the root). */
char *vmc_go_base(const char *abs);

#endif
