#!/usr/bin/env python3
"""A stand-in for logind's sleep protocol on a private D-Bus daemon, for the lock_on_sleep tests.

Usage: logind.py BUS_ADDRESS EVENTS_FILE

Takes the name org.freedesktop.login1 on the bus at BUS_ADDRESS and answers Manager.Inhibit as
logind does: the caller is given one end of a pipe, and holds the lock until it closes it. Reads
commands from stdin, one a line:
  sleep, wake     PrepareForSleep(true) or (false) from /org/freedesktop/login1, as logind
  foreign-sleep   PrepareForSleep(true) from another connection, which does not own the name
Appends what happens to EVENTS_FILE, one a line: "ready"; "inhibit WHAT WHO WHY MODE" for each
lock given; "released" when its holder closed it; "sent COMMAND" once the bus daemon has taken a
signal (a call to the daemon after it is answered only once the signal was read). jeepney; it
shares no code with session-agent's sd-bus.
"""
import os
import select
import sys

from jeepney import DBusAddress, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

address, events = sys.argv[1], sys.argv[2]
MANAGER = DBusAddress("/org/freedesktop/login1", interface="org.freedesktop.login1.Manager")


def note(line):
    with open(events, "a") as f:
        f.write(line + "\n")


def send_sleep(connection, sleeping):
    connection.send(new_signal(MANAGER, "PrepareForSleep", "b", (sleeping,)))
    connection.send_and_get_reply(message_bus.GetId())


logind = open_dbus_connection(bus=address, enable_fds=True)
reply = logind.send_and_get_reply(message_bus.RequestName("org.freedesktop.login1"))
if reply.body[0] != 1:   # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
    sys.exit(f"logind.py: the name org.freedesktop.login1 was not given: {reply.body}")
held = []   # the read ends of the locks given
note("ready")
stdin = sys.stdin.fileno()
os.set_blocking(stdin, False)
pending = b""
while True:
    try:
        message = logind.receive(timeout=0.02)
    except TimeoutError:
        message = None
    if message is not None and message.header.message_type == MessageType.method_call:
        if message.header.fields.get(3) == "Inhibit":   # 3: the member
            read_end, write_end = os.pipe()
            logind.send(new_method_return(message, "h", (write_end,)))
            os.close(write_end)
            held.append(read_end)
            note("inhibit " + " ".join(message.body))
        else:
            logind.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod"))
    for read_end in [fd for fd in held if select.select([fd], [], [], 0)[0]]:
        if os.read(read_end, 1) == b"":
            os.close(read_end)
            held.remove(read_end)
            note("released")
    try:
        pending += os.read(stdin, 1024) or b"\n<eof>\n"
    except BlockingIOError:
        pass
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        command = line.decode().strip()
        if command == "<eof>":
            sys.exit(0)
        if command in ("sleep", "wake"):
            send_sleep(logind, command == "sleep")
        elif command == "foreign-sleep":
            other = open_dbus_connection(bus=address)
            send_sleep(other, True)
            other.close()
        elif command:
            sys.exit(f"logind.py: unknown command {command!r}")
        note("sent " + command)
