#!/bin/sh
# deps.sh PKG... - install the Debian packages of the list that are not installed yet.
#
# Asks dpkg for each package, so a machine that has everything does no network work and needs
# no root. Missing packages are installed with apt-get (through sudo when not root); apt-get
# waits for a dpkg lock held by another installer. When an install fails (a stale package
# index on a fresh machine), the index is refreshed and the install retried.
set -u
missing=
for p in "$@"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
    case $st in *" installed") ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "make: missing packages:$missing (install them; this machine has no apt-get)" >&2
    exit 1
fi
echo "make: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
apt() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 "$@"; }
for i in 1 2 3; do
    # shellcheck disable=SC2086
    apt install -y -q --no-install-recommends $missing && exit 0
    apt update -q || true
    sleep 2
done
echo "make: could not install:$missing" >&2
exit 1
