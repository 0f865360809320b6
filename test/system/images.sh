#!/usr/bin/env bash
# Builds, and caches, the Debian 12 systemd images the installer tests boot.
#
#   images.sh base    -> localhost/hepto-test/debian-systemd:<RECIPE>
#                        a debootstrapped minbase rootfs with systemd, nothing else
#                        (the installer must install Podman and Node itself here)
#   images.sh baked   -> localhost/hepto-test/debian-systemd-podman:<RECIPE>
#                        the same plus podman, crun and nodejs from Debian, so most
#                        tests skip the apt downloads
#
# Both are kept in Podman's store and as tarballs under $HEPTO_TEST_CACHE
# (default /var/cache/hepto-test), so a wiped store reloads in seconds and only
# the very first run debootstraps (minutes). Prints the image reference.
#
# The nested Podman configuration (crun, cgroups disabled, explicit ulimits,
# vfs storage) is test-environment setup, written into the base rootfs here,
# never by install.sh: see ../../shared/reference/environment.md.
set -euo pipefail

# The images are named after this script's own hash: any change to the recipe
# below builds new ones, and the old ones are removed.
RECIPE=r$(sha256sum "$0" | cut -c 1-12)
CACHE=${HEPTO_TEST_CACHE:-/var/cache/hepto-test}
BASE=localhost/hepto-test/debian-systemd:$RECIPE
BAKED=localhost/hepto-test/debian-systemd-podman:$RECIPE

log() { printf 'images.sh: %s\n' "$*" >&2; }

mirror() {
  # The mirror apt uses on this machine (deb822 or one-line format).
  local m=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 ~ /bookworm/ { print $2; exit }' /etc/apt/sources.list)
  fi
  printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

have_image() { podman image exists "$1"; }

nested_podman_conf() {
  local root=$1
  mkdir -p "$root/etc/containers"
  cat >"$root/etc/containers/containers.conf" <<'EOF'
# Test environment only (environment.md): nested Podman runs with crun and no
# cgroups inside the privileged systemd container; the sandbox refuses
# Podman's default rlimits.
[containers]
cgroups = "disabled"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "crun"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  cat >"$root/etc/containers/storage.conf" <<'EOF'
# Test environment only: overlay cannot stack on the outer overlay.
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
}

build_base() {
  local tarball="$CACHE/debian-systemd-$RECIPE.tar"
  if [ ! -s "$tarball" ]; then
    local dir="$CACHE/rootfs-$RECIPE.tmp"
    rm -rf "$dir"
    mkdir -p "$dir"
    log "debootstrap bookworm from $(mirror) (first run only, a few minutes)"
    debootstrap --variant=minbase \
      --include=systemd,systemd-sysv,dbus,ca-certificates,curl,iproute2 \
      bookworm "$dir" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
    nested_podman_conf "$dir"
    # The container shares the host network; keep its name fixed and boring.
    echo hepto-test >"$dir/etc/hostname"
    # Units that only make sense on real hardware or a console.
    for u in getty@tty1.service console-getty.service systemd-remount-fs.service; do
      ln -sf /dev/null "$dir/etc/systemd/system/$u"
    done
    rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"* 
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  log "importing $tarball as $BASE"
  podman import --change 'CMD ["/sbin/init"]' "$tarball" "$BASE" >/dev/null
}

build_baked() {
  local tarball="$CACHE/debian-systemd-podman-$RECIPE.tar"
  if [ -s "$tarball" ]; then
    log "loading $tarball"
    podman load -i "$tarball" >/dev/null
    have_image "$BAKED" && return 0
  fi
  ensure base
  local name="hepto-test-bake-$$"
  log "installing podman, crun and nodejs into $BAKED"
  podman rm -f "$name" >/dev/null 2>&1 || true
  trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
  podman run --name "$name" --network host --runtime runc \
    --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$BASE" /bin/sh -c '
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq podman crun nodejs >/dev/null &&
      apt-get clean && rm -rf /var/lib/apt/lists/*' >&2
  podman commit -q --change 'CMD ["/sbin/init"]' "$name" "$BAKED" >/dev/null
  podman rm -f "$name" >/dev/null
  trap - EXIT
  podman save -o "$tarball.tmp" "$BAKED" >/dev/null
  mv "$tarball.tmp" "$tarball"
}

# Drops images and tarballs of earlier recipes.
prune_old() {
  local ref f
  for ref in $(podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/hepto-test/' | grep -v ":$RECIPE\$" || true); do
    podman rmi "$ref" >/dev/null 2>&1 || true
  done
  for f in "$CACHE"/debian-systemd*.tar; do
    case $f in *"-$RECIPE.tar") ;; *) rm -f "$f" ;; esac
  done
}

ensure() {
  case $1 in
    base) have_image "$BASE" || build_base; echo "$BASE" ;;
    baked) have_image "$BAKED" || build_baked; echo "$BAKED" ;;
    *) log "usage: images.sh base|baked"; exit 2 ;;
  esac
}

mkdir -p "$CACHE"
# One builder at a time; a second caller waits and then finds the cache.
exec 9>"$CACHE/.lock"
flock 9
prune_old
ensure "${1:-}" | tail -n 1
