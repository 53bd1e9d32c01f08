// logind's sleep signal through sd-bus, on a thread of its own: the bus connection is touched
// by that thread alone once the match is made.
#include "CSleepWatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>

typedef struct {
    sd_bus *bus;
    CSleepWatch_callback callback;
    void *context;
} watch;

static int prepare_for_sleep(sd_bus_message *message, void *userdata, sd_bus_error *error) {
    (void)error;
    watch *w = userdata;
    int sleeping = 0;
    if (sd_bus_message_read(message, "b", &sleeping) >= 0) w->callback(w->context, sleeping ? 1 : 0);
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
    sd_bus_flush_close_unref(w->bus);
    free(w);
    return NULL;
}

int CSleepWatch_start(CSleepWatch_callback callback, void *context) {
    watch *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    w->callback = callback;
    w->context = context;
    int r = sd_bus_open_system(&w->bus);
    if (r >= 0) {
        r = sd_bus_match_signal(w->bus, NULL, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                "PrepareForSleep", prepare_for_sleep, w);
    }
    pthread_t thread;
    if (r >= 0) r = -pthread_create(&thread, NULL, run, w);
    if (r < 0) {
        sd_bus_flush_close_unref(w->bus);
        free(w);
        return r;
    }
    pthread_detach(thread);
    return 0;
}
