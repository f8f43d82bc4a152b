#!/bin/sh
# Installs the Debian packages the tests need, when any is missing. Runs as root (or via sudo).
# The packages are listed in scripts/deps/*.txt, one per line ('#' starts a comment), one file per area.
# Server packages (nginx, mariadb, ...) are installed for the tests to start as private, unprivileged
# processes: their system services are not started (policy-rc.d), nothing listens on the host's ports.
set -eu
dir=$(dirname "$0")/deps
need=""
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in $(sed 's/#.*//' "$dir"/*.txt); do
	have "$p" || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "installing:$need"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod +x "$policy"
	trap '$SUDO rm -f "$policy"' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
	-o DPkg::Lock::Timeout=600 $need >/dev/null
