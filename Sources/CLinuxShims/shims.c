#define _GNU_SOURCE
#include "CLinuxShims.h"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
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

int CLinuxShims_spawn(const char *path, char *const argv[], char *const envp[], int stdinFD, int stdoutFD, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    result = posix_spawnattr_init(&attributes);
    if (result != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return result;
    }
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGQUIT);
    sigaddset(&defaults, SIGPIPE);
    sigemptyset(&none);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, stdinFD, 0);
    if (result == 0) result = posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1);
    if (result == 0) result = posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    // Not every descriptor of the agent's is close-on-exec (NIO's sockets and epolls are not,
    // nor is what a PKCS#11 module may open): the child gets its three and nothing else.
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &defaults);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &none);
    if (result == 0) result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (result == 0) result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return result;
}

int CLinuxShims_pipeClosedOnExec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
