#ifndef C_SLEEP_WATCH_H
#define C_SLEEP_WATCH_H

/// What logind said: 1 the machine is about to sleep, 0 it woke, -1 the bus is gone (no more
/// calls follow).
typedef void (*CSleepWatch_callback)(void *context, int event);

/// Listens on the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the system's) for logind's
/// PrepareForSleep signal, from the owner of org.freedesktop.login1 only, and calls `callback`
/// from a thread of its own for each, for as long as the process runs. Returns 0, or a negative
/// errno when the bus cannot be reached or the match not made (nothing is left running then).
int CSleepWatch_start(CSleepWatch_callback callback, void *context);

#endif
