"""An OpenPGP card (smartcard-app-openpgp) in vsmartcard's virtual reader: connects to vpcd on
127.0.0.1:PORT and answers its APDUs until vpcd hangs up or the process is stopped.

    openpgp-card.py PORT STATE_FILE SERIAL

SERIAL is the card's serial number, 8 hex digits (its manufacturer is 0xff00, the range the
OpenPGP card specification keeps for test cards).
The card's state (keys, PINs, retry counters) lives in STATE_FILE (ZODB), so a card stopped
and started again is the same card: that is how the tests pull a card out and put it back.
secp256k1 is added to the curves the applet knows (OpenPGP cards such as the YubiKey 5 have it).
"""
import socket
import struct
import sys
import time

import ZODB
import ZODB.FileStorage
from cryptography.hazmat.primitives.asymmetric.ec import SECP256K1
from smartcard import MASTER_FILE_IDENTIFIER, Card
from smartcard.app.openpgp import OpenPGP
from smartcard.app.openpgp import tag
from smartcard.utils import transaction_manager

tag.AlgorithmAttributesBase.ECDSA._OID_TO_CURVE_DICT[bytes.fromhex("2b8104000a")] = SECP256K1

# The applet makes keys ahead on a thread of its own and fails a GENERATE that comes before the
# key is made (status 6F00), which a loaded machine shows; a real card answers once it has made
# the key.
_generate = OpenPGP.generateAsymmetricKeyPair


def generate_once_made(self, channel, p1, p2, command_data):
    if p1 == 0x80:
        deadline = time.monotonic() + 30
        while None in self._v_s_keygen_key_list and time.monotonic() < deadline:
            time.sleep(0.01)
    return _generate(self, channel, p1, p2, command_data)


OpenPGP.generateAsymmetricKeyPair = generate_once_made


def open_card(path, serial):
    connection = ZODB.DB(ZODB.FileStorage.FileStorage(path)).open(transaction_manager=transaction_manager)
    root = connection.root
    if not hasattr(root, "card"):
        with transaction_manager:
            card = root.card = Card(name=b"py-openpgp")
            application = OpenPGP(identifier=b"\x12\x34", manufacturer=b"\xff\x00", serial=bytes.fromhex(serial))
            application.activateSelf()
            card.createFile(card.traverse((MASTER_FILE_IDENTIFIER,)), application)
    return root.card


def receive(connection, count):
    data = b""
    while len(data) < count:
        # Without it, a 40 ms delayed ACK stalls every exchange.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def main():
    port, path, serial = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    card = open_card(path, serial)
    connection = socket.create_connection(("127.0.0.1", port))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(message):
        connection.sendall(struct.pack("!H", len(message)) + message)

    print("ready", flush=True)
    while True:
        try:
            (length,) = struct.unpack("!H", receive(connection, 2))
            message = receive(connection, length) if length else b""
        except (EOFError, ConnectionError):
            return
        if length == 1:
            if message[0] == 4:
                send(bytes(card.getATR()))
            else:  # power off, power on, reset
                with transaction_manager:
                    card.clearVolatile()
        else:
            send(bytes(card.runAPDU(bytearray(message))))


if __name__ == "__main__":
    main()
