#!/usr/bin/env bash
# The one test command (README, .ci/run). Works on a fresh Debian 12 machine:
# installs what the tests need, builds, and runs every suite. A suite whose
# component cannot be had fails loudly; nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suites drive for real: Podman (runc, as crun refuses this
# host's hybrid cgroups; netavark, a Recommends that --no-install-recommends
# would leave out, and the network backend the agent is built for), busybox-static for stand-in images, iptables for
# partitions and loss, faketime for clock skew, debootstrap for the systemd
# container, shellcheck and systemd-analyze for the installer, docker-registry
# (a real registry on loopback for pull tests), gcc and libc6-dev (gcc -static
# builds the stand-in for the wesher release binary), libssl-dev (the stand-in
# k3s's TLS helper, static OpenSSL: it serves k3s's token endpoint for real),
# prometheus (a real Prometheus scrapes the agents; promtool checks the
# exposition), iputils-ping (the path MTU probe's don't-fragment pings).
packages=(podman runc netavark aardvark-dns iptables busybox-static shellcheck debootstrap iproute2 systemd faketime curl ca-certificates docker-registry gcc libc6-dev libssl-dev prometheus iputils-ping)
need_apt=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$p")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "test/run.sh: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
# One format, 160 columns (.prettierrc.json): `npm run format` rewrites, this only checks.
npm run --silent format:check
npm run --silent build:all

# Every suite: unit (pure, manual clock), integration (real sockets on loopback),
# podman (real Podman, stand-in images), netns (multi-host), system (systemd
# container, installer). mocha exits non-zero on any failure.
npx mocha --sort 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js' \
  'dist/test/podman/**/*.test.js' 'dist/test/netns/**/*.test.js' 'dist/test/system/**/*.test.js' "$@"
