#!/usr/bin/env python3
"""logind's sleep signal, sent on a private D-Bus daemon for the lock_on_sleep tests.

Usage: logind.py BUS_ADDRESS sleep|wake [--not-logind]

Connects to the bus at BUS_ADDRESS, takes the name org.freedesktop.login1 as logind holds it
(with --not-logind it does not, and sends as any other client of the bus could), and sends
PrepareForSleep(true) for sleep, (false) for wake, from /org/freedesktop/login1 as logind does.
It returns once the bus daemon has taken the signal: a call to the daemon after it is answered
only once the signal was read (jeepney; it shares no code with session-agent's sd-bus).
"""
import sys

from jeepney import DBusAddress, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

address, what = sys.argv[1], sys.argv[2]
connection = open_dbus_connection(bus=address)
if "--not-logind" not in sys.argv[3:]:
    reply = connection.send_and_get_reply(message_bus.RequestName("org.freedesktop.login1"))
    if reply.body[0] != 1:   # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
        sys.exit(f"logind.py: the name org.freedesktop.login1 was not given: {reply.body}")
manager = DBusAddress("/org/freedesktop/login1", interface="org.freedesktop.login1.Manager")
connection.send(new_signal(manager, "PrepareForSleep", "b", (what == "sleep",)))
connection.send_and_get_reply(message_bus.GetId())
connection.close()
