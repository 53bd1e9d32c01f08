#ifndef C_LINUX_SHIMS_H
#define C_LINUX_SHIMS_H

#include <sys/types.h>

/// SO_PEERCRED of a connected AF_UNIX socket (struct ucred needs _GNU_SOURCE, which Swift's
/// Glibc module does not define). Returns 0, or -1 with errno set.
int CLinuxShims_peerCredentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/// prctl(PR_SET_DUMPABLE, value) and prctl(PR_GET_DUMPABLE): sys/prctl.h is not in the Glibc module.
int CLinuxShims_setDumpable(int value);
int CLinuxShims_getDumpable(void);

#endif
