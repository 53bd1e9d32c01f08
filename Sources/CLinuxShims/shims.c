#define _GNU_SOURCE
#include "CLinuxShims.h"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

_Static_assert(sizeof(CLinuxShims_ucred) == sizeof(struct ucred)
               && offsetof(CLinuxShims_ucred, pid) == offsetof(struct ucred, pid)
               && offsetof(CLinuxShims_ucred, uid) == offsetof(struct ucred, uid)
               && offsetof(CLinuxShims_ucred, gid) == offsetof(struct ucred, gid),
               "CLinuxShims_ucred must match struct ucred");

int CLinuxShims_setDumpable(int value) { return prctl(PR_SET_DUMPABLE, value, 0, 0, 0); }

int CLinuxShims_getDumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }

int CLinuxShims_openPseudoTerminal(char *slavePath, size_t size) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) return -1;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, slavePath, size) != 0) {
        close(master);
        return -1;
    }
    return master;
}
