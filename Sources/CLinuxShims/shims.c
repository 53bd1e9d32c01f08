#define _GNU_SOURCE
#include "CLinuxShims.h"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int CLinuxShims_peerCredentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

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
