// logind's sleep signal through sd-bus, on a thread of its own: the bus connection is touched
// by that thread alone once the watch runs.
#include "CSleepWatch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

typedef struct {
    sd_bus *bus;
    CSleepWatch_callback callback;
    void *context;
    /// The delay inhibitor lock logind gave, or -1: logind waits for it to be closed.
    int inhibitor;
} watch;

/// Asks logind for a delay lock on sleep, unless one is held. The descriptor in the reply is
/// the message's: a copy of it is kept.
static void inhibit(watch *w) {
    if (w->inhibitor >= 0) return;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    int fd;
    if (sd_bus_call_method(w->bus, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "Inhibit", &error, &reply,
                           "ssss", "sleep", "session-agent", "Locks the session-key store first", "delay") >= 0
        && sd_bus_message_read(reply, "h", &fd) >= 0) {
        w->inhibitor = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    }
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
}

static int prepare_for_sleep(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    (void)error;
    watch *w = userdata;
    int sleeping = 0;
    if (sd_bus_message_read(message, "b", &sleeping) < 0) return 0;
    w->callback(w->context, sleeping ? 1 : 0);
    if (sleeping && w->inhibitor >= 0) {
        close(w->inhibitor);
        w->inhibitor = -1;
    } else if (!sleeping) {
        inhibit(w);
    }
    return 0;
}

static void *run(void *argument) {
    watch *w = argument;
    for (;;) {
        int r = sd_bus_process(w->bus, NULL);
        if (r > 0) continue;
        if (r == 0) r = sd_bus_wait(w->bus, UINT64_MAX);
        if (r < 0 && r != -EINTR) break;
    }
    w->callback(w->context, -1);
    if (w->inhibitor >= 0) close(w->inhibitor);
    sd_bus_flush_close_unref(w->bus);
    free(w);
    return NULL;
}

int CSleepWatch_start(CSleepWatch_callback callback, void *context) {
    watch *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    w->callback = callback;
    w->context = context;
    w->inhibitor = -1;
    int r = sd_bus_open_system(&w->bus);
    if (r >= 0) {
        r = sd_bus_match_signal(w->bus, NULL, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                "PrepareForSleep", prepare_for_sleep, w);
    }
    if (r >= 0) inhibit(w);
    int held = w->inhibitor >= 0;
    pthread_t thread;
    if (r >= 0) r = -pthread_create(&thread, NULL, run, w);
    if (r < 0) {
        if (w->inhibitor >= 0) close(w->inhibitor);
        sd_bus_flush_close_unref(w->bus);
        free(w);
        return r;
    }
    pthread_detach(thread);
    return held;
}
