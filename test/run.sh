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
npx tsc -p tsconfig.json

# Every suite: unit (pure, manual clock), integration (real sockets on loopback),
# podman (real Podman, stand-in images), netns (multi-host), system (systemd
# container, installer). Two lanes run at once, so that the whole command fits
# in about 15 minutes on 2 cores: the system suite (systemd containers in
# Podman's default store, mostly waiting on them) and the unit suite beside
# the rest. The lanes share no namespace, Podman store, port or file: the
# podman and netns suites share the test Podman store, so they stay in one
# lane. The second lane's output follows the first's. Exits non-zero when
# either lane had a failure.
lane_log=$(mktemp "${TMPDIR:-/tmp}/hepto-test-lane.XXXXXX")
trap 'kill "$lane_pid" 2>/dev/null || true; rm -f "$lane_log"' EXIT
npx mocha --sort 'dist/test/system/**/*.test.js' 'dist/test/unit/**/*.test.js' "$@" >"$lane_log" 2>&1 &
lane_pid=$!
rc=0
npx mocha --sort 'dist/test/integration/**/*.test.js' 'dist/test/podman/**/*.test.js' 'dist/test/netns/**/*.test.js' "$@" || rc=$?
lane_rc=0
wait "$lane_pid" || lane_rc=$?
echo
echo "=== system and unit suites (ran beside the ones above) ==="
cat "$lane_log"
[ "$rc" -eq 0 ] && [ "$lane_rc" -eq 0 ]
