// Package packaging holds what the Debian package is built from (debian/: maintainer scripts, Debian's
// conffiles, copyright; scripts/build-deb.sh builds it) and the tests that judge the package, the man
// page docs/ldirectord.8 and the systemd units of examples/ with the real tools: lintian, dpkg, groff,
// man and systemd-analyze.
package packaging
