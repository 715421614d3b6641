#!/usr/bin/env bash
# Make a Debian bookworm base image locally (no registry needed) and load it into
# the container engine:  debootstrap --variant=minbase, then `docker import`.
#
#   lab/make-base-image.sh [TAG]        (default TAG: local/debian:bookworm; root)
#
# The mirror is the one apt on this machine uses (first deb.debian.org-style URI
# in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list), or $DEBIAN_MIRROR.
# The image is the same minimal bookworm userland as the public debian:bookworm-slim,
# so `docker build --build-arg BASE_IMAGE=local/debian:bookworm .` builds the image
# users would get from the default base.  Nothing is done if TAG already exists
# (FORCE=1 rebuilds).
set -euo pipefail
TAG=${1:-local/debian:bookworm}
DOCKER=${DOCKER:-docker}

if [ "${FORCE:-0}" != 1 ] && "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
    echo "make-base-image: $TAG already exists"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "make-base-image: debootstrap needs root" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { echo "make-base-image: debootstrap not installed" >&2; exit 1; }

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    # deb822 sources first ("URIs: ..."), then one-line sources ("deb URI suite ...");
    # the first URI whose suite list names bookworm (not the security archive).
    mirror=$(awk '
        /^URIs:/   { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm" && uri != "") { print uri; exit } }
        /^deb /    { u = ($2 ~ /^\[/) ? $3 : $2; s = ($2 ~ /^\[/) ? $4 : $3; if (s == "bookworm") { print u; exit } }
    ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /tmp/speakerd-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "make-base-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# Slim like the official debian:bookworm-slim: dpkg leaves out documentation, man
# pages and translations (now and in every image built on this base), apt keeps
# no caches or package lists in a layer.
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/groff/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar --numeric-owner -C "$rootfs" -c . | "$DOCKER" import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$TAG" >/dev/null
echo "make-base-image: $TAG ($("$DOCKER" image inspect -f '{{.Size}}' "$TAG") bytes)"
