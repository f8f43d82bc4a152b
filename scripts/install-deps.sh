#!/bin/sh
# Installs the Debian packages the tests need, when any is missing. Runs as root (or via sudo).
set -eu
need=""
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in user-mode-linux kmod ipvsadm iproute2 ldirectord logrotate curl gcc libc6-dev slapd; do
	have "$p" || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "installing:$need"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
