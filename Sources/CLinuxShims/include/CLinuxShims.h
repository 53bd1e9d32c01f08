#ifndef C_LINUX_SHIMS_H
#define C_LINUX_SHIMS_H

#include <sys/types.h>

/// struct ucred, what SO_PEERCRED returns: Swift's Glibc module lacks it (it needs _GNU_SOURCE).
/// shims.c checks at compile time that the two layouts agree.
typedef struct {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} CLinuxShims_ucred;

/// SO_PEERPIDFD (Linux 6.5): a pidfd for the process that connected. Debian 12's kernel headers
/// predate it; the value is the same on every architecture.
static const int CLinuxShims_SO_PEERPIDFD = 77;

/// prctl(PR_SET_DUMPABLE, value) and prctl(PR_GET_DUMPABLE): sys/prctl.h is not in the Glibc module.
int CLinuxShims_setDumpable(int value);
int CLinuxShims_getDumpable(void);

/// A new pseudo-terminal (posix_openpt, grantpt, unlockpt, ptsname_r: _XOPEN_SOURCE only):
/// returns the master fd and writes the slave's path, or -1 with errno set. For the tests that
/// play a person at a terminal.
int CLinuxShims_openPseudoTerminal(char *slavePath, size_t size);

/// posix_spawn of `path` with `argv` and `envp` (NULL-terminated), its stdin and stdout the
/// given descriptors and its stderr /dev/null, no other descriptor, an empty signal mask and
/// INT, TERM, HUP, QUIT and PIPE at their defaults: the calling thread's mask (libdispatch's
/// threads block those signals) and ignored dispositions survive exec, and a dialog must die
/// when told to. Returns 0 and writes the child's pid, or an errno value.
int CLinuxShims_spawn(const char *path, char *const argv[], char *const envp[], int stdinFD, int stdoutFD, pid_t *pid);

/// pipe2(fds, O_CLOEXEC) (_GNU_SOURCE only): both ends close on exec from their first instant,
/// so a process another thread spawns meanwhile cannot inherit them. 0, or -1 with errno set.
int CLinuxShims_pipeClosedOnExec(int fds[2]);

#endif
