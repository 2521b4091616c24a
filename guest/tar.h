/* A small streaming tar (POSIX ustar + PAX) writer and reader for the archive
 * worker (archive.c): the guest relies on nothing in the image, so the agent
 * itself makes and reads docker cp / export streams. Written here rather than
 * linked (libarchive's static build pulls in zlib, lzma, bz2, acl, xml2 and
 * would triple the initramfs; only uncompressed tar is needed, read in one
 * forward pass from a pipe).
 *
 * Writer: ustar headers; a PAX 'x' header before any entry whose path or link
 * target exceeds the ustar fields, whose size is 8 GiB or more, or whose uid/gid
 * does not fit (what Go's archive/tar, Docker's, reads).
 * Reader: ustar (prefix+name), PAX 'x' (path, linkpath, size, uid, gid, mtime),
 * PAX 'g' and unknown records skipped, GNU 'L'/'K' long names, base-256 numbers. */
#ifndef VMC_TAR_H
#define VMC_TAR_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define VMC_TAR_BLOCK 512

/* Write every byte (blocking fd); -1 with errno. */
int vmc_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes; 0, 1 at EOF before any byte, -1 with errno (EIO: EOF mid-way). */
int vmc_read_exact(int fd, void *buf, size_t len);

/* One header (and its PAX header when needed) for name (no leading "/"; a
 * directory's name gets a trailing "/"), with type, mode, owner, size and mtime
 * from st. type: '0' file, '1' hard link, '2' symlink, '3' char, '4' block,
 * '5' directory, '6' FIFO. link: the link target ('1', '2') or NULL. -1 with errno. */
int vmc_tar_header(int fd, const char *name, const struct stat *st, char type, const char *link);
/* Copy size bytes of src into the archive, then the padding; a file that
 * shrank meanwhile is padded with zeros (the header is already out). -1 with errno. */
int vmc_tar_data(int fd, int src, uint64_t size);
/* The two zero blocks that end an archive. */
int vmc_tar_end(int fd);

struct vmc_tar_entry {
    char *name; /* as in the archive (malloc'd) */
    char *link; /* link target or NULL (malloc'd) */
    char type;  /* ustar typeflag; '\0' and '7' read as '0' */
    mode_t mode; /* permission bits and set-id/sticky */
    uid_t uid;
    gid_t gid;
    uint64_t size;
    int64_t mtime;
    unsigned devmajor, devminor;
};

/* The next entry's header from fd; 1: an entry, 0: end of archive, -1: a
 * corrupt or truncated archive (message in err). The entry's data follows:
 * vmc_tar_skip or vmc_tar_copy it. */
int vmc_tar_next(int fd, struct vmc_tar_entry *e, char *err, size_t errlen);
void vmc_tar_entry_free(struct vmc_tar_entry *e);
/* Skip, or write to dst, the entry's size bytes and padding. -1 with errno. */
int vmc_tar_skip(int fd, uint64_t size);
int vmc_tar_copy(int fd, int dst, uint64_t size);

#endif
