#!/bin/sh
# make_chroot.sh DIR SUITE [EXTRA_SUITE]: a Debian chroot with Debian's own Krita, PyQt,
# Xvfb and xauth, for tests/hosts/krita.sh (run as root; needs debootstrap).
#   make_chroot.sh /var/tmp/x/chroot-5.3 sid                 Krita 5.3.x (Qt 5, PyQt5)
#   make_chroot.sh /var/tmp/x/chroot-6.0 sid experimental    Krita 6.x   (Qt 6, PyQt6)
# With EXTRA_SUITE only krita and krita-data come from it; everything else from SUITE.
# A finished chroot gets DIR/.refine-matte-ready (its Krita version) and is reused as is.
# env: MIRROR (default: the first non-security mirror the machine's apt uses).
set -eu
DIR=${1:?usage: make_chroot.sh DIR SUITE [EXTRA_SUITE]}
SUITE=${2:?usage: make_chroot.sh DIR SUITE [EXTRA_SUITE]}
EXTRA=${3:-}
T0=$(date +%s)
say() { echo "[make_chroot $(( $(date +%s) - T0 ))s] $*"; }

if [ -f "$DIR/.refine-matte-ready" ]; then
  say "reusing $DIR ($(cat "$DIR/.refine-matte-ready"))"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "make_chroot.sh: needs root (debootstrap, chroot, mount)" >&2; exit 3; }
command -v debootstrap >/dev/null || { echo "make_chroot.sh: debootstrap is not installed" >&2; exit 3; }
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "${MIRROR:-}" ] || { echo "make_chroot.sh: no Debian mirror in the machine's apt sources; set MIRROR" >&2; exit 3; }

unmount() { for m in dev sys proc; do mountpoint -q "$DIR/$m" && umount -R "$DIR/$m"; done; true; }
trap unmount EXIT

if [ ! -e "$DIR/etc/debian_version" ]; then
  say "debootstrap --variant=minbase $SUITE $DIR $MIRROR"
  mkdir -p "$(dirname "$DIR")"
  debootstrap --variant=minbase "$SUITE" "$DIR" "$MIRROR" > "$DIR.debootstrap.log" 2>&1 \
    || { tail -n 20 "$DIR.debootstrap.log" >&2; exit 3; }
fi
# A frozen mirror snapshot has "expired" Release files; no docs/man/locales keeps it small.
cat > "$DIR/etc/apt/apt.conf.d/90refine-matte" <<'CONF'
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "5";
CONF
cat > "$DIR/etc/dpkg/dpkg.cfg.d/90refine-matte-slim" <<'CONF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
CONF
printf '#!/bin/sh\nexit 101\n' > "$DIR/usr/sbin/policy-rc.d"; chmod +x "$DIR/usr/sbin/policy-rc.d"
cp /etc/hosts "$DIR/etc/hosts"; cp -L /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
echo "deb $MIRROR $SUITE main" > "$DIR/etc/apt/sources.list"
[ -z "$EXTRA" ] || echo "deb $MIRROR $EXTRA main" > "$DIR/etc/apt/sources.list.d/$EXTRA.list"

mountpoint -q "$DIR/proc" || mount -t proc proc "$DIR/proc"
mountpoint -q "$DIR/sys" || mount --rbind /sys "$DIR/sys"
mountpoint -q "$DIR/dev" || mount --rbind /dev "$DIR/dev"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
say "apt-get update"
chroot "$DIR" apt-get update -q > "$DIR.apt.log" 2>&1 || { tail -n 20 "$DIR.apt.log" >&2; exit 3; }
if [ -n "$EXTRA" ]; then K="krita/$EXTRA"; KD="krita-data/$EXTRA"; else K=krita; KD=krita-data; fi
# Krita Recommends the PyQt it was built against (python3-pyqt5 or python3-pyqt6).
PYQT=$(chroot "$DIR" apt-cache show "$K" | sed -n 's/^Recommends: *//p' | head -n1 | tr ',' '\n' \
       | grep -o 'python3-pyqt[0-9]*' | head -n1 || true)
PYQT=${PYQT:-python3-pyqt5}
# Qt 6 draws Krita's SVG icons only with its SVG plugins (Qt 5's come with libqt5svg5).
SVG=; [ "$PYQT" = python3-pyqt6 ] && SVG=qt6-svg-plugins
say "apt-get install $K $KD $PYQT $SVG xvfb xauth"
chroot "$DIR" apt-get install -y -q "$K" "$KD" "$PYQT" $SVG xvfb xauth >> "$DIR.apt.log" 2>&1 \
  || { tail -n 20 "$DIR.apt.log" >&2; exit 3; }
chroot "$DIR" apt-get clean
VER=$(chroot "$DIR" dpkg-query -W -f '${Version}' krita)
echo "krita $VER, $PYQT" > "$DIR/.refine-matte-ready"
say "ready: krita $VER, $PYQT, $(du -sxh "$DIR" 2>/dev/null | cut -f1)"
