#ifndef C_SLEEP_WATCH_H
#define C_SLEEP_WATCH_H

/// What logind said: 1 the machine is about to sleep, 0 it woke, -1 the bus is gone (no more
/// calls follow).
typedef void (*CSleepWatch_callback)(void *context, int event);

/// Listens on the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the system's) for logind's
/// PrepareForSleep signal, from the owner of org.freedesktop.login1 only, and calls `callback`
/// from a thread of its own for each, for as long as the process runs. It holds a logind delay
/// inhibitor lock for sleep, so that logind waits for `callback` to return before the machine
/// sleeps; it lets it go then, and takes a new one when the machine wakes. Returns 1 when it
/// holds the lock, 0 when logind would not give one, or a negative errno when the bus cannot
/// be reached or the match not made (nothing is left running then).
int CSleepWatch_start(CSleepWatch_callback callback, void *context);

#endif
