"""A FIDO2 authenticator on a Unix socket, for the tests (rig doc, appendix B).

soft-fido2 holds the CTAPHID framing and the CTAP2 authenticator; it is built to sit behind
/dev/uhid with a Qt tray that asks the person for a tap. Neither exists here, so this serves its
64-byte HID reports on a Unix socket, which the agent reaches through libfido2's I/O hooks
(device path `unix:PATH`), and stands in for the person:

- The tap is asked for when a credential is made or an assertion signed, as a hardware key asks.
  soft-fido2 asks when the client reads the authenticator's info instead (as libfido2 opens the
  device) and remembers the answer for the connection. An assertion asked for without user
  presence (`up` false: does it hold this credential?) asks for no tap, as a hardware key.
- Each request for user presence (the tap) prints a line `tap` on stdout and is answered from
  the file `$FIDO_HOME/tap`: absent or `yes` is a tap, `no` a refusal, `wait` no answer at all
  (the authenticator gives up after 15 s).
- Its keepalives (sent while it waits for the tap) get the initialisation bit of their command
  byte, 0xBB, which soft-fido2 0.4.56 leaves out: libfido2 took its 0x3B for a stray packet and
  gave up on the device as a FIDO2 one.
- The authenticator's platform-key requests (the tray's to answer) are answered with
  `$FIDO_HOME/platform.key`, which holds its state: credentials made before a restart still
  sign after it.
- With `$FIDO_PIN` it has that PIN. soft-fido2 checks a PIN by opening a `.passkey` file sealed
  under its hash, made here once; a credential made with the PIN is that file's, and signs only
  with the PIN again. The authenticator data claims user verification (UV) only for a request
  made with the PIN's token: soft-fido2 claims it always. With the file `$FIDO_HOME/uv` saying
  `never`, it never claims it, as an authenticator that does not verify the person would not.

Usage: FIDO_HOME=DIR python fido2-authenticator.py SOCKET. Prints `ready` once it listens.
"""
import os
import queue
import socket
import sys
import threading
import types

import cbor2

import soft_fido2.ctap.pending as pending
from soft_fido2.authenticator.fido2 import Fido2Authenticator
from soft_fido2.ctap.api import AuthenticatorAPI
from soft_fido2.ctap.cborcmd import CBORCommand
from soft_fido2.key_pair import KeyPair, KeyUtils
from soft_fido2.platform.message_queues import MessageQueue, PlatformKeyResponse, QueueMessageType
from soft_fido2.platform.passkey_device import CTAPHIDevice

REPORT = 64
home = os.environ["FIDO_HOME"]
if not os.path.exists(os.path.join(home, "platform.key")):
    KeyUtils.create_platform_key()

# Whether the request being answered carries the PIN's token (pinUvAuthParam), per thread.
request_state = threading.local()
authenticator_data = Fido2Authenticator.build_authenticator_data


def honest_authenticator_data(self, pk, fmt, key_pair, uv, up=True, be=False, bs=False):
    try:
        with open(os.path.join(home, "uv")) as f:
            never = f.read().strip() == "never"
    except FileNotFoundError:
        never = False
    return authenticator_data(self, pk, fmt, key_pair, getattr(request_state, "verified", False) and not never, up, be, bs)


Fido2Authenticator.build_authenticator_data = honest_authenticator_data


class KeepalivePacket(pending.CTAPHIDInitPkt):
    def __init__(self, cid, cmd, bcnt, data):
        super().__init__(cid=cid, cmd=cmd | 0x80, bcnt=bcnt, data=data)


pending.CTAPHIDInitPkt = KeepalivePacket


ask_for_presence = CBORCommand.gather_user_presence


def presence_when_signing(self, context="default"):
    return context == "getinfo" or ask_for_presence(self, context)


def after_a_tap(operation, context, pin_auth_key):
    def run(self, request):
        try:
            fields = cbor2.loads(request)
        except Exception:
            fields = {}
        request_state.verified = bool(fields.get(pin_auth_key))
        options = fields.get(0x05 if context == "getassertion" else 0x07) or {}
        if context == "getassertion" and options.get("up") is False:
            AuthenticatorAPI.cache_up(self.cid, "present")
            return operation(self, request)
        if not ask_for_presence(self, context):
            return self._set_rsp_fields(list(self.CBORStatusCode.CTAP2_ERR_OPERATION_DENIED.to_bytes(1, "big")))
        return operation(self, request)
    return run


CBORCommand.gather_user_presence = presence_when_signing
CBORCommand._make_cred = after_a_tap(CBORCommand._make_cred, "makecred", 0x08)
CBORCommand._get_assertion = after_a_tap(CBORCommand._get_assertion, "getassertion", 0x06)


def tap_answer():
    try:
        with open(os.path.join(home, "tap")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return "yes"


def person():
    """Answers the tray's requests for a tap; its other notices need no answer."""
    while True:
        message = MessageQueue.notify_sysapp.get()
        if message not in (QueueMessageType.USER_REQUEST, QueueMessageType.USER_REQUEST_FPRINT):
            continue
        print("tap", flush=True)
        answer = tap_answer()
        if answer == "yes":
            MessageQueue.notify_auth.put(QueueMessageType.USER_RESPONSE_ACCEPT)
        elif answer == "no":
            MessageQueue.notify_auth.put(QueueMessageType.USER_RESPONSE_REJECT)


def platform_keys():
    with open(os.path.join(home, "platform.key"), "rb") as f:
        key = KeyPair.load_key_pair(f.read())
    while True:
        request = MessageQueue.platform_key_requests.get()
        MessageQueue.platform_key_responses.put(PlatformKeyResponse(request.request_id, key_pair=key))


class SocketDevice(CTAPHIDevice):
    """One libfido2 connection: reports in as 65 bytes (report id 0 first), out as 64."""

    def __init__(self, connection):
        super().__init__(devpath="unused")
        self.connection = connection
        # soft-fido2's outgoing queue is one for the class: a connection's own, so reports
        # meant for one host never go to another.
        self.pending = queue.Queue(maxsize=100)
        CBORCommand.set_pending(self.pending)

    def serve(self):
        def send():
            # Drained to the end even once the host has gone: the queue is bounded, and the
            # keepalives of a tap still awaited would block on it for good.
            while (report := self.pending.get()) is not None:
                try:
                    self.connection.sendall(bytes(report).ljust(REPORT, b"\0")[:REPORT])
                except OSError:
                    pass
        threading.Thread(target=send, daemon=True).start()
        received = b""
        try:
            while chunk := self.connection.recv(4096):
                received += chunk
                while len(received) >= REPORT + 1:
                    report, received = received[:REPORT + 1], received[REPORT + 1:]
                    self.process_output(types.SimpleNamespace(data=report, ev_len=REPORT))
        finally:
            self.pending.put(None)


for target in (person, platform_keys):
    threading.Thread(target=target, daemon=True).start()
if os.environ.get("FIDO_PIN") and not os.path.exists(os.path.join(home, "pin.passkey")):
    made = KeyUtils.generate_passkey()
    KeyUtils._save_passkey(made["key"], made["x5c"], [], KeyUtils.get_pin_hash(os.environ["FIDO_PIN"]), os.path.join(home, "pin.passkey"))

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(8)
print("ready", flush=True)
while True:
    connection, _ = server.accept()
    # One at a time, as a USB key serves one host: the next waits in the listen queue.
    try:
        SocketDevice(connection).serve()
    except OSError:
        pass
    finally:
        connection.close()
