#!/bin/sh
# Prints this tree's version as a Debian version (without epoch), from `git describe --tags --dirty`,
# or from a describe string given as $1 with the commit count as $2 (tests):
#   v1.2.3 or 1.2.3           -> 1.2.3
#   v1.2.3-4-gabc1234         -> 1.2.3+git4.gabc1234   (4 commits after the tag)
#   gabc1234 (no tag yet)     -> 0.0+gitN.gabc1234     (N: the number of commits, so versions increase)
#   v1.2-rc1                  -> 1.2~rc1               (sorts before 1.2)
#   ...-dirty                 -> ...+dirty             (uncommitted changes)
# Outside a git work tree (a source tarball) it prints $LDIRECTORD_VERSION, or fails.
set -eu
if [ $# -ge 1 ]; then
	d=$1
	n=${2:-0}
elif git rev-parse --git-dir >/dev/null 2>&1; then
	# Without a tag, describe --always gives the bare hash; prefix it with g so that an all-digit
	# hash cannot pass for a tag.
	d=$(git describe --tags --dirty 2>/dev/null) || d=g$(git describe --always --dirty)
	n=$(git rev-list --count HEAD)
elif [ -n "${LDIRECTORD_VERSION:-}" ]; then
	echo "$LDIRECTORD_VERSION"
	exit 0
else
	echo "version.sh: not a git work tree and LDIRECTORD_VERSION is not set" >&2
	exit 1
fi
dirty=""
case $d in *-dirty) dirty="+dirty"; d=${d%-dirty} ;; esac
if echo "$d" | grep -Eq '^v?[0-9][0-9A-Za-z.+~-]*$'; then
	d=${d#v}
	after=""
	if echo "$d" | grep -Eq -- '-[0-9]+-g[0-9a-f]+$'; then
		after=${d##*-g}
		d=${d%-g*}
		after="+git${d##*-}.g$after"
		d=${d%-*}
	fi
	# A pre-release tag (v1.2-rc1) sorts before the release: 1.2~rc1.
	v=$(echo "$d" | tr '-' '~')$after
elif echo "$d" | grep -Eq '^g[0-9a-f]+$'; then
	v="0.0+git$n.$d"
else
	echo "version.sh: cannot make a Debian version of git describe output \"$d\"" >&2
	exit 1
fi
echo "$v$dirty"
