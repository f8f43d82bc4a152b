#!/bin/sh
# Builds the Debian package ldirectord_<version>_<arch>.deb with dpkg-deb alone (no debhelper, no root:
# dpkg-deb --root-owner-group). Run from anywhere; `make deb` runs it.
#
#   OUT        directory of the .deb (default: bin/ of the source tree)
#   VERSION    the version (default: scripts/version.sh, from git describe); the package's is 2:VERSION
#   DEB_ARCH   Debian architecture (default: dpkg --print-architecture); GOARCH follows from it
#   GO         the go command (default: go)
#
# The package is named ldirectord, as Debian's Perl one, with epoch 2 (Debian's is 1:4.12.0-2): apt sees
# an upgrade, so "apt install ./ldirectord_*.deb" replaces the Perl ldirectord and keeps its conffiles,
# and a later Debian upload of the Perl package is never taken for an upgrade of this one.
# It prints the path of the .deb.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$src/bin}
GO=${GO:-go}
VERSION=${VERSION:-$("$src/scripts/version.sh")}
DEB_ARCH=${DEB_ARCH:-$(dpkg --print-architecture)}
case $DEB_ARCH in
amd64 | arm64 | riscv64 | s390x | loong64) goarch=$DEB_ARCH ;;
i386) goarch=386 ;;
armhf | armel) goarch=arm ;;
ppc64el) goarch=ppc64le ;;
mips64el) goarch=mips64le ;;
*) echo "build-deb.sh: no Go port for Debian architecture $DEB_ARCH" >&2; exit 1 ;;
esac
goarm=""
case $DEB_ARCH in armhf) goarm=7 ;; armel) goarm=5 ;; esac

# File times are the last commit's (or SOURCE_DATE_EPOCH's), so the same tree builds the same package.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

work=$(mktemp -d "${TMPDIR:-/tmp}/build-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/ldirectord
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/lib/systemd/system" "$root/etc/logrotate.d" \
	"$root/etc/ha.d/resource.d" "$root/etc/init.d" "$root/etc/default" "$root/usr/share/man/man8" "$doc/examples" "$root/usr/share/lintian/overrides"

# The program: static (no C library), stripped, reproducible.
(cd "$src" && CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm "$GO" build -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid= -X main.buildVersion=$VERSION" -o "$root/usr/sbin/ldirectord" ./cmd/ldirectord)

install -m 644 "$src/examples/ldirectord.service" "$root/lib/systemd/system/ldirectord.service"
install -m 644 "$src/examples/logrotate.conf" "$root/etc/logrotate.d/ldirectord"
# Byte for byte Debian's dummy config, so that upgrading from the Perl package never asks about it.
install -m 644 "$src/packaging/debian/ldirectord.cf" "$root/etc/ha.d/ldirectord.cf"
# Debian's init script and its defaults file, byte for byte (they run /usr/sbin/ldirectord as well):
# for sysvinit systems, and so that an upgrade from the Perl package keeps them unchanged.
install -m 755 "$src/packaging/debian/init.d" "$root/etc/init.d/ldirectord"
install -m 644 "$src/packaging/debian/default" "$root/etc/default/ldirectord"
# heartbeat's haresources calls resources through /etc/ha.d/resource.d, as Debian's package provides.
ln -s /usr/sbin/ldirectord "$root/etc/ha.d/resource.d/ldirectord"
gzip -9n <"$src/docs/ldirectord.8" >"$root/usr/share/man/man8/ldirectord.8.gz"
install -m 644 "$src/packaging/debian/copyright" "$doc/copyright"
install -m 644 "$src/packaging/debian/lintian-overrides" "$root/usr/share/lintian/overrides/ldirectord"
install -m 644 "$src/README.md" "$doc/README.md"
gzip -9n <"$src/docs/compat.md" >"$doc/compat.md.gz"
# The commented HTTP example is examples/ldirectord.cf.gz, the name the dummy config points to.
gzip -9n <"$src/examples/http.cf" >"$doc/examples/ldirectord.cf.gz"
for f in "$src"/examples/*.cf; do
	case $(basename "$f") in http.cf | large.cf) continue ;; esac
	install -m 644 "$f" "$doc/examples/"
done
install -m 644 "$src/examples/ldirectord-forking.service" "$doc/examples/"

# A native package's changelog: one entry for this build.
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
maint="ldirectord-go developers <ldirectord-go@users.noreply.github.com>"
{
	echo "ldirectord (2:$VERSION) unstable; urgency=medium"
	echo
	echo "  * Built from git $(git -C "$src" describe --tags --always --dirty 2>/dev/null || echo "$VERSION")."
	echo
	echo " -- $maint  $date"
} | gzip -9n >"$doc/changelog.gz"

for s in preinst postinst prerm postrm; do
	install -m 755 "$src/packaging/debian/$s" "$root/DEBIAN/$s"
done
printf '%s\n' /etc/default/ldirectord /etc/ha.d/ldirectord.cf /etc/init.d/ldirectord /etc/logrotate.d/ldirectord \
	>"$root/DEBIAN/conffiles"
size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: ldirectord
Version: 2:$VERSION
Architecture: $DEB_ARCH
Maintainer: $maint
Installed-Size: $size
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: kmod
Recommends: logrotate, ipvsadm
Suggests: default-mta | mail-transport-agent, resource-agents
Section: admin
Priority: optional
Homepage: https://github.com/ldirectord-go/ldirectord
Description: Monitors virtual services provided by LVS (Go implementation)
 ldirectord is a stand-alone daemon to monitor real servers behind
 virtual services provided by The Linux Virtual Server (LVS), and to
 program the kernel IPVS table as their health changes.
 .
 This is a reimplementation in Go of the Perl ldirectord, and a drop-in
 replacement for it: the same ldirectord.cf, command line, exit codes and
 log lines, with concurrent checks, reloads that only touch what changed
 and "ldirectord -t" to check a configuration. It replaces Debian's Perl
 package of the same name.
 .
 It can serve Prometheus metrics (metrics= in ldirectord.cf); nothing else
 needs to be installed for them.
CONTROL
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles" "$root/DEBIAN/control"
find "$root" -depth -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$OUT"
deb=$OUT/ldirectord_${VERSION}_$DEB_ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
