#!/usr/bin/env bash
# Installs what session-agent needs on a Debian 12 machine that already has Swift:
# the Debian packages of the hardware test rig (even the ones later features use), the
# Python venv that holds the independent test oracles, and the one that runs the OpenPGP card
# emulator. Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(
  pkg-config
  libsecp256k1-dev libssl-dev openssl
  libfido2-dev fido2-tools
  libpcsclite-dev pcscd vsmartcard-vpcd
  p11-kit libp11-kit-dev softhsm2 opensc
  systemd udev pinentry-curses curl
  libsystemd-dev dbus-daemon
)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt packages: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || { echo "install-deps: error: run as root to install Debian packages" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A venv per requirements file: oracle (independent implementations the differential tests
# compare against), card (the OpenPGP card emulator behind vpcd, Tests/rig/openpgp-card.py;
# apart, because its `smartcard` package and pyscard's would overwrite each other) and fido2
# (the software FIDO2 authenticator, Tests/rig/fido2-authenticator.py).
for name in oracle card fido2; do
  venv="$root/.venv-$name"
  stamp="$venv/.installed-$(sha256sum "$root/scripts/$name-requirements.txt" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "install-deps: python $name venv in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/$name-requirements.txt"
    touch "$stamp"
  fi
done
