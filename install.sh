#!/bin/sh
# hepto installer: from a fresh machine to a running hepto-agent service.
#
#   First machine (starts a new cluster, prints the line for the next one):
#     curl -sfL <url>/install.sh | HEPTO_AGENT_URL=<url>/hepto-agent-<v>.tar.gz sh -
#   Next machines: the printed line, an invitation for one machine (make more
#   with `hepto-agent invite --uses N` on the first one), in a root shell
#   (sudo -i first), e.g.
#     curl -sfL <url>/install.sh | HEPTO_AGENT_URL=... HEPTO_AGENT_SHA256=... \
#       HEPTO_INVITE=hepto1.... sh -
#   The new machine's agent enrols through the invitation's anchors: it gets
#   the keys, admin_pub and the master from them, and is admitted.
#   Joining with the keys instead still works: HEPTO_ANCHORS, HEPTO_OVERLAY_KEY,
#   HEPTO_AGENT_KEY (HEPTO_CLUSTER_KEY on the master), HEPTO_MASTER,
#   HEPTO_ADMIN_PUB; such a machine is refused until the admin admits it, and
#   its installer prints, last, the `hepto-agent admit NODE --identity ...`
#   line to run on the machine with the admin key.
#   From a checkout: sudo ./install.sh (builds the release tarball first if needed)
#
# Environment (all optional unless said):
#   HEPTO_NODE, HEPTO_MASTER, HEPTO_ANCHORS (comma-separated), HEPTO_OVERLAY_KEY,
#   HEPTO_CLUSTER_KEY, HEPTO_AGENT_KEY, HEPTO_IFACE, HEPTO_IP, HEPTO_GW
#   (comma-separated), HEPTO_NETWORK_MODE, HEPTO_GOSSIP_PORT, HEPTO_ADVERTISE,
#   HEPTO_STORAGE_BASE, HEPTO_MTU, HEPTO_WESHER_DOWNLOAD, HEPTO_WESHER_SHA256,
#   HEPTO_ADMIN_PUB, HEPTO_INVITE
#                             -> /etc/hepto/hepto.json (unset ones keep their
#                                current value on a re-run; HEPTO_INVITE only
#                                until the agent has enrolled with it)
#   HEPTO_AGENT_URL           https URL or local path of the release tarball (a
#                             plain http one only with HEPTO_AGENT_SHA256)
#   HEPTO_AGENT_SHA256        its sha256 (the join line carries it); else
#                             <HEPTO_AGENT_URL>.sha256 is used (never over http)
#   HEPTO_INSTALL_URL         where install.sh is served (for the join line)
#   HEPTO_SKIP_START=1        install and enable, but do not (re)start the service
#   HEPTO_DRY_RUN=1           print what would be done, change nothing
#
# The public half of that (HEPTO_INSTALL_URL, HEPTO_AGENT_URL, HEPTO_AGENT_SHA256,
# HEPTO_WESHER_*) goes to /etc/hepto/join.env, where `hepto-agent invite` reads it.
#
# Everything below runs from main(), called on the last line, so a truncated
# download runs nothing.
#
# No key and no invitation ever reaches a command line, where every user of the
# machine can read it (ps, /proc/<pid>/cmdline): they travel only in shell
# variables, the environment, pipes from builtins (printf) and 0600 files, and
# only builtins and shell functions get them as arguments.

HEPTO_LIB=/usr/local/lib/hepto-agent
HEPTO_BIN=/usr/local/bin/hepto-agent
HEPTO_UNINSTALL=/usr/local/bin/hepto-uninstall.sh
HEPTO_ETC=/etc/hepto
HEPTO_CONF=/etc/hepto/hepto.json
HEPTO_JOIN_ENV_FILE=/etc/hepto/join.env
HEPTO_UNIT=/etc/systemd/system/hepto-agent.service
HEPTO_SERVICE=hepto-agent
# Node flags of every agent run (agent/node-flags.ts holds the same, and a unit
# test the two equal): they keep the agent's memory down (docs/bench/README.md,
# Memory). A node that refuses them runs the agent without them.
AGENT_NODE_FLAGS="--max-semi-space-size=1 --no-opt --no-sparkplug"
KNOWN_VARS="HEPTO_NODE HEPTO_MASTER HEPTO_ANCHORS HEPTO_OVERLAY_KEY HEPTO_CLUSTER_KEY HEPTO_AGENT_KEY
HEPTO_INVITE HEPTO_IFACE HEPTO_IP HEPTO_GW HEPTO_NETWORK_MODE HEPTO_GOSSIP_PORT HEPTO_ADVERTISE
HEPTO_STORAGE_BASE HEPTO_MTU HEPTO_WESHER_DOWNLOAD HEPTO_WESHER_SHA256 HEPTO_ADMIN_PUB HEPTO_AGENT_URL
HEPTO_AGENT_SHA256 HEPTO_INSTALL_URL HEPTO_SKIP_START HEPTO_DRY_RUN HEPTO_CONFIG HEPTO_DEBUG"
START_TIMEOUT=60

# --- output -------------------------------------------------------------------
info() { printf '[INFO]  %s\n' "$*" >&2; }
warn() { printf '[WARN]  %s\n' "$*" >&2; }
fatal() {
  printf '[ERROR] %s\n' "$*" >&2
  exit 1
}
dry() { [ "${HEPTO_DRY_RUN:-0}" = 1 ]; }
# Runs a command, or says it would.
act() {
  if dry; then
    info "would run: $*"
  else
    "$@"
  fi
}

# Quotes a value for the printed command line, only when it needs it.
shq() {
  case $1 in
    '' | *[!A-Za-z0-9._:/,@=+%-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
  esac
}

cleanup() {
  if [ -n "${TMP_DIR:-}" ] && [ -d "$TMP_DIR" ]; then rm -rf "$TMP_DIR"; fi
  if [ -n "${STAGED_LIB:-}" ] && [ -d "$STAGED_LIB" ]; then rm -rf "$STAGED_LIB"; fi
}

# --- checks before anything is changed --------------------------------------------
check_root() {
  [ "$(id -u)" -eq 0 ] || fatal "the installer needs root: run it again from a root shell (sudo -i), with the same HEPTO_* variables (not as 'sudo HEPTO_...=...': sudo's command line, keys and all, is readable by every user)"
}

check_systemd() {
  if ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
    fatal "hepto-agent runs as a systemd service, and systemd is not running here (no /run/systemd/system)"
  fi
}

warn_unknown_vars() {
  for wu_name in $(env | sed -n 's/^\(HEPTO_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
    case " $(echo "$KNOWN_VARS" | tr '\n' ' ') " in
      *" $wu_name "*) ;;
      *) warn "unknown variable $wu_name is ignored (typo? known: $(echo "$KNOWN_VARS" | tr '\n' ' ' | sed 's/ HEPTO_CONFIG HEPTO_DEBUG//'))" ;;
    esac
  done
}

check_flags() {
  for cf_name in HEPTO_SKIP_START HEPTO_DRY_RUN; do
    cf_value=$(eval "printf '%s' \"\${$cf_name:-0}\"")
    case $cf_value in
      0 | 1) ;;
      *) fatal "$cf_name must be 1 or 0, not \"$cf_value\"" ;;
    esac
  done
}

# Decides between a new cluster, a join (with an invitation or with the keys)
# and a re-run, before anything is downloaded. Sets NEW_CLUSTER and INVITED.
check_cluster_inputs() {
  # The config holds the cluster's keys (a member) or an invitation not used yet.
  have_conf_keys=0
  have_conf_invite=0
  if [ -f "$HEPTO_CONF" ]; then
    if grep -Eq '"overlay_key"[[:space:]]*:[[:space:]]*"[^"]' "$HEPTO_CONF"; then have_conf_keys=1; fi
    if grep -Eq '"invite"[[:space:]]*:[[:space:]]*"[^"]' "$HEPTO_CONF"; then have_conf_invite=1; fi
  fi
  NEW_CLUSTER=0
  INVITED=0
  if [ -n "${HEPTO_INVITE:-}" ]; then
    if [ "$have_conf_keys" = 1 ]; then
      # Already enrolled (or joined with the keys): a re-run of the same line changes nothing.
      info "this machine is already a member (its config holds the cluster's keys): HEPTO_INVITE is not used, and the invitation is not spent"
      unset HEPTO_INVITE
    else
      ci_extra=
      for ci_name in HEPTO_ANCHORS HEPTO_MASTER HEPTO_OVERLAY_KEY HEPTO_CLUSTER_KEY HEPTO_AGENT_KEY HEPTO_ADMIN_PUB; do
        eval "ci_value=\${$ci_name:-}"
        if [ -n "$ci_value" ]; then ci_extra="$ci_extra $ci_name"; fi
      done
      ci_value=
      if [ -n "$ci_extra" ]; then
        fatal "HEPTO_INVITE brings the anchors, the keys, admin_pub and the master from the cluster: leave${ci_extra} unset (or join with the keys, without HEPTO_INVITE); nothing was installed"
      fi
      # Its shape only (the agent checks the rest); never shown, it is a secret.
      case $HEPTO_INVITE in
        *[!A-Za-z0-9._-]* | *.*.*.*.*) fatal "HEPTO_INVITE is not an invitation: it holds characters or parts an invitation has not (hepto1. and three parts of letters, digits, - and _); copy it whole from the line hepto-agent invite printed; nothing was installed" ;;
        hepto1.?*.?*.?*) ;;
        *) fatal "HEPTO_INVITE is not an invitation (hepto1. and three parts of letters, digits, - and _): copy it whole from the line hepto-agent invite printed; nothing was installed" ;;
      esac
      INVITED=1
      return 0
    fi
  fi
  if [ "$have_conf_keys" = 1 ]; then return 0; fi
  if [ "$have_conf_invite" = 1 ] && [ -z "${HEPTO_OVERLAY_KEY:-}" ]; then
    # Installed with an invitation its agent has not used yet: a re-run keeps it.
    INVITED=1
    return 0
  fi
  ci_k3s=${HEPTO_AGENT_KEY:-}${HEPTO_CLUSTER_KEY:-}
  if [ -n "${HEPTO_OVERLAY_KEY:-}" ] && [ -z "$ci_k3s" ]; then
    fatal "HEPTO_OVERLAY_KEY is set but HEPTO_AGENT_KEY is not: pass both keys (HEPTO_CLUSTER_KEY instead on the master), join with an invitation instead (HEPTO_INVITE, from hepto-agent invite), or pass no key to start a new cluster"
  fi
  if [ -z "${HEPTO_OVERLAY_KEY:-}" ] && [ -n "$ci_k3s" ]; then
    fatal "HEPTO_AGENT_KEY or HEPTO_CLUSTER_KEY is set but HEPTO_OVERLAY_KEY is not: pass the overlay key too, join with an invitation instead (HEPTO_INVITE, from hepto-agent invite), or pass no key to start a new cluster"
  fi
  ci_k3s=
  if [ -z "${HEPTO_OVERLAY_KEY:-}" ]; then
    if [ -n "${HEPTO_ANCHORS:-}" ]; then
      fatal "joining through HEPTO_ANCHORS needs an invitation (HEPTO_INVITE: run hepto-agent invite on the machine with the admin key, and run the line it prints) or the keys (HEPTO_OVERLAY_KEY and HEPTO_AGENT_KEY); or leave HEPTO_ANCHORS empty to start a new cluster"
    fi
    NEW_CLUSTER=1
  fi
}

# A plain http tarball needs a pin given apart from it: its .sha256, from the
# same server over http, proves nothing.
check_agent_source() {
  case ${HEPTO_AGENT_URL:-} in
    http://*)
      [ -n "${HEPTO_AGENT_SHA256:-}" ] \
        || fatal "HEPTO_AGENT_URL is plain http ($HEPTO_AGENT_URL), so its .sha256 from the same server proves nothing: set HEPTO_AGENT_SHA256 to the tarball's sha256 (the join line the first machine printed carries it), or use an https URL; nothing was installed"
      ;;
  esac
}

# --- the agent tarball ------------------------------------------------------------
# Sets HEPTO_AGENT_URL, when run from a checkout (sudo ./install.sh), to the
# tarball `npm run package` wrote there (building it if npm can).
default_agent_url() {
  case $0 in
    */install.sh | install.sh) ;;
    *) return 0 ;;
  esac
  da_root=$(cd "$(dirname "$0")" && pwd)
  [ -f "$da_root/package.json" ] && grep -q '"name": *"hepto-agent"' "$da_root/package.json" || return 0
  da_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$da_root/package.json" | head -n 1)
  da_tarball=$da_root/dist/release/hepto-agent-$da_version.tar.gz
  if [ ! -f "$da_tarball" ]; then
    if dry; then
      info "would build the release tarball from this checkout (npm ci, npm run package)"
    else
      ensure_npm
      if [ ! -x "$da_root/node_modules/.bin/tsc" ]; then
        info "installing build dependencies in $da_root (npm ci)"
        (cd "$da_root" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || fatal "npm ci failed in $da_root: run it yourself to see why"
      fi
      info "building the release tarball from this checkout (npm run package)"
      (cd "$da_root" && npm run --silent package >/dev/null) || fatal "npm run package failed in $da_root: run it yourself to see why"
    fi
  fi
  HEPTO_AGENT_URL=$da_tarball
}

# Building from a checkout needs npm (Debian and Fedora ship it apart from nodejs).
ensure_npm() {
  command -v npm >/dev/null 2>&1 && return 0
  detect_distro
  info "installing nodejs and npm with $PKG ($DISTRO) to build the agent from this checkout"
  case $PKG in
    apt)
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } </dev/null >"$TMP_DIR/pkg.log" 2>&1 \
        || fatal "apt-get install nodejs npm failed: $(tail -n 1 "$TMP_DIR/pkg.log")"
      ;;
    dnf | yum)
      "$PKG" -y install nodejs npm </dev/null >"$TMP_DIR/pkg.log" 2>&1 || fatal "$PKG install nodejs npm failed: $(tail -n 1 "$TMP_DIR/pkg.log")"
      ;;
    *) fatal "npm is needed to build the agent from this checkout on $DISTRO: install Node 18+ with npm, or set HEPTO_AGENT_URL to a release tarball" ;;
  esac
}

fetch() { # $1 = URL or path, $2 = destination
  case $1 in
    https://*)
      # Never redirected to plain http: an unpinned tarball is checked against its .sha256 from there.
      curl -fsSL --proto-redir =https --connect-timeout 10 --retry 2 -o "$2" "$1" 2>"$TMP_DIR/curl.err" || return 1
      ;;
    http://*)
      # Only with HEPTO_AGENT_SHA256 (check_agent_source).
      curl -fsSL --connect-timeout 10 --retry 2 -o "$2" "$1" 2>"$TMP_DIR/curl.err" || return 1
      ;;
    *)
      [ -f "$1" ] || { echo "no such file" >"$TMP_DIR/curl.err"; return 1; }
      cp "$1" "$2" 2>"$TMP_DIR/curl.err" || return 1
      ;;
  esac
}

fetch_agent() {
  [ -n "${HEPTO_AGENT_URL:-}" ] || default_agent_url
  [ -n "${HEPTO_AGENT_URL:-}" ] \
    || fatal "HEPTO_AGENT_URL is not set: give the URL (or local path) of the hepto-agent release tarball"
  AGENT_TARBALL=$TMP_DIR/agent.tar.gz
  info "downloading the agent from $HEPTO_AGENT_URL"
  fetch "$HEPTO_AGENT_URL" "$AGENT_TARBALL" \
    || fatal "cannot download $HEPTO_AGENT_URL: $(tail -n 1 "$TMP_DIR/curl.err") (check HEPTO_AGENT_URL); nothing was installed"

  if [ -n "${HEPTO_AGENT_SHA256:-}" ]; then
    fa_expected=$HEPTO_AGENT_SHA256
  else
    fetch "$HEPTO_AGENT_URL.sha256" "$TMP_DIR/agent.sha256" \
      || fatal "cannot get the checksum $HEPTO_AGENT_URL.sha256: $(tail -n 1 "$TMP_DIR/curl.err") (set HEPTO_AGENT_SHA256); nothing was installed"
    fa_expected=$(cut -d ' ' -f 1 "$TMP_DIR/agent.sha256" | head -n 1)
  fi
  fa_expected=$(printf '%s' "$fa_expected" | tr 'A-F' 'a-f')
  case $fa_expected in
    *[!0-9a-f]*) fatal "the expected sha256 \"$fa_expected\" is not 64 hex digits (check HEPTO_AGENT_SHA256); nothing was installed" ;;
  esac
  [ ${#fa_expected} -eq 64 ] \
    || fatal "the expected sha256 \"$fa_expected\" is not 64 hex digits (check HEPTO_AGENT_SHA256); nothing was installed"
  AGENT_SHA256=$(sha256sum "$AGENT_TARBALL" | cut -d ' ' -f 1)
  [ "$AGENT_SHA256" = "$fa_expected" ] \
    || fatal "checksum mismatch for $HEPTO_AGENT_URL: expected $fa_expected, got $AGENT_SHA256 (corrupt download or wrong HEPTO_AGENT_SHA256); nothing was installed"
  info "checksum verified ($AGENT_SHA256)"
}

unpack_agent() {
  mkdir "$TMP_DIR/unpacked"
  tar -xzf "$AGENT_TARBALL" -C "$TMP_DIR/unpacked" 2>"$TMP_DIR/tar.err" \
    || fatal "the agent tarball does not unpack: $(tail -n 1 "$TMP_DIR/tar.err"); nothing was installed"
  AGENT_SRC=
  for ua_dir in "$TMP_DIR"/unpacked/hepto-agent-*; do
    [ -d "$ua_dir" ] && AGENT_SRC=$ua_dir
  done
  if [ -z "$AGENT_SRC" ] || [ ! -f "$AGENT_SRC/dist/agent/cli.js" ] || [ ! -f "$AGENT_SRC/systemd/hepto-agent.service" ]; then
    fatal "$HEPTO_AGENT_URL is not a hepto-agent release tarball (no hepto-agent-<version>/dist/agent/cli.js); nothing was installed"
  fi
  AGENT_VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$AGENT_SRC/package.json" | head -n 1)
  case $AGENT_VERSION in
    '' | *[!0-9A-Za-z.+-]*) fatal "the agent tarball has no usable version in package.json; nothing was installed" ;;
  esac
  info "agent version $AGENT_VERSION"
}

# --- Podman and Node ------------------------------------------------------------
detect_distro() {
  [ -r /etc/os-release ] || { DISTRO=unknown; PKG=none; return 0; }
  # shellcheck disable=SC1091 # the running system's file
  DISTRO=$(. /etc/os-release && printf '%s' "${ID:-unknown}")
  # shellcheck disable=SC1091
  dd_like=$(. /etc/os-release && printf '%s' "${ID_LIKE:-}")
  case " $DISTRO $dd_like " in
    *" debian "* | *" ubuntu "* | *" linuxmint "*) PKG=apt ;;
    *" fedora "* | *" centos "* | *" rhel "*)
      if command -v dnf >/dev/null 2>&1; then PKG=dnf; else PKG=yum; fi
      ;;
    *) PKG=none ;;
  esac
}

find_node() {
  NODE_BIN=
  for fn_cand in node nodejs; do
    fn_path=$(command -v "$fn_cand" 2>/dev/null) || continue
    if "$fn_path" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' 2>/dev/null; then
      NODE_BIN=$fn_path
      return 0
    fi
  done
  return 1
}

install_deps() {
  id_need=
  command -v podman >/dev/null 2>&1 || id_need="podman"
  find_node || id_need="$id_need nodejs"
  # The agent sets up wesher's overlay interface with ip inside nsenter.
  command -v ip >/dev/null 2>&1 || id_need="$id_need iproute2"
  command -v nsenter >/dev/null 2>&1 || id_need="$id_need util-linux"
  # The path MTU probes are iputils' don't-fragment pings (ping -M do); busybox's and inetutils' lack -M.
  ping -V 2>/dev/null | grep -q iputils || id_need="$id_need iputils-ping"
  id_need=${id_need# }
  if [ -z "$id_need" ]; then
    info "Podman and Node $("$NODE_BIN" --version) are present"
    return 0
  fi
  detect_distro
  if dry; then
    info "would install $id_need with $PKG ($DISTRO)"
    return 0
  fi
  info "installing $id_need with $PKG ($DISTRO)"
  case $PKG in
    apt)
      DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >"$TMP_DIR/pkg.log" 2>&1 \
        || fatal "apt-get update failed: $(tail -n 1 "$TMP_DIR/pkg.log")"
      # shellcheck disable=SC2086 # a list of package names
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $id_need </dev/null >"$TMP_DIR/pkg.log" 2>&1 \
        || fatal "apt-get install $id_need failed: $(tail -n 1 "$TMP_DIR/pkg.log")"
      ;;
    dnf | yum)
      case " $id_need " in
        # CentOS/RHEL ship Node as module streams; 18 or newer is needed.
        *" nodejs "*) [ "$DISTRO" = fedora ] || "$PKG" -y module enable nodejs:18 >/dev/null 2>&1 || true ;;
      esac
      # Fedora and CentOS call iputils-ping iputils.
      id_need=$(printf '%s\n' "$id_need" | sed 's/iputils-ping/iputils/')
      # shellcheck disable=SC2086 # a list of package names
      "$PKG" -y install $id_need </dev/null >"$TMP_DIR/pkg.log" 2>&1 \
        || fatal "$PKG install $id_need failed: $(tail -n 1 "$TMP_DIR/pkg.log")"
      ;;
    *)
      fatal "cannot install $id_need on $DISTRO (supported: Debian, Ubuntu, Mint, CentOS, Fedora): install Podman and Node 18 or newer yourself, then re-run"
      ;;
  esac
  command -v podman >/dev/null 2>&1 || fatal "podman is still missing after installing it with $PKG"
  find_node || fatal "Node 18 or newer is needed and $DISTRO's nodejs is older: install Node 18+ (e.g. from NodeSource), then re-run"
  info "installed $id_need; Node $("$NODE_BIN" --version)"
}

# --- config -------------------------------------------------------------------------
# Merges the existing config (if any) with the HEPTO_* variables. Runs with Node
# because JSON is its language; keys travel in the environment, never in argv.
MERGE_JS='
const fs = require("fs");
const [file, out, changes] = process.argv.slice(1);
const E = process.env;
let text = null, conf = {};
try { text = fs.readFileSync(file, "utf8"); conf = JSON.parse(text); }
catch (e) { if (e.code !== "ENOENT") { console.error(file + " is not valid JSON (" + e.message + "): fix or remove it"); process.exit(1); } }
if (conf === null || typeof conf !== "object" || Array.isArray(conf)) { console.error(file + " does not hold a JSON object: fix or remove it"); process.exit(1); }
const before = JSON.stringify(conf);
const list = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
const num = (v) => (/^[0-9]+$/.test(v) ? Number(v) : v);
const set = (field, name, conv) => { const v = E[name]; if (v !== undefined && v !== "") conf[field] = conv ? conv(v) : v; };
set("node", "HEPTO_NODE");
if (conf.node === undefined) conf.node = E.HOST_NAME;
// A machine joining with an invitation gets the master, the anchors and the keys by enrolling.
const invited = !E.HEPTO_OVERLAY_KEY && (Boolean(E.HEPTO_INVITE) || typeof conf.invite === "string");
set("master", "HEPTO_MASTER");
if (conf.master === undefined && !invited && !(E.HEPTO_ANCHORS || (Array.isArray(conf.anchors) && conf.anchors.length))) conf.master = conf.node;
set("anchors", "HEPTO_ANCHORS", list);
set("overlay_key", "HEPTO_OVERLAY_KEY");
set("cluster_key", "HEPTO_CLUSTER_KEY");
set("agent_key", "HEPTO_AGENT_KEY");
set("invite", "HEPTO_INVITE");
// Joining with the keys after all: the invitation is not needed any more.
if (E.HEPTO_OVERLAY_KEY) delete conf.invite;
set("iface", "HEPTO_IFACE");
set("ip", "HEPTO_IP", list);
set("gw", "HEPTO_GW", list);
set("network_mode", "HEPTO_NETWORK_MODE");
set("gossip_port", "HEPTO_GOSSIP_PORT", num);
set("advertise", "HEPTO_ADVERTISE", list);
set("storage_base", "HEPTO_STORAGE_BASE");
set("mtu", "HEPTO_MTU", num);
set("wesher_download", "HEPTO_WESHER_DOWNLOAD");
set("wesher_sha256", "HEPTO_WESHER_SHA256");
set("admin_pub", "HEPTO_ADMIN_PUB");
const same = text !== null && JSON.stringify(conf) === before;
fs.writeFileSync(out, same ? text : JSON.stringify(conf, null, 2) + "\n", { mode: 0o600 });
// What a dry run names: each field that would change, never a key.
const old = JSON.parse(before);
const lines = Object.keys(conf).filter((k) => JSON.stringify(conf[k]) !== JSON.stringify(old[k]))
  .map((k) => (/_key$/.test(k) ? k + " (a key: not shown)" : k === "invite" ? k + " (an invitation: not shown)" : k + " = " + JSON.stringify(conf[k])));
fs.writeFileSync(changes, lines.map((l) => l + "\n").join(""));
'

staged_agent() { "$NODE_BIN" "$AGENT_SRC/dist/agent/cli.js" "$@"; }

build_config() {
  if [ -z "${NODE_BIN:-}" ]; then
    info "would write $HEPTO_CONF from the HEPTO_* variables (Node is not installed yet, so not checked now)"
    return 0
  fi
  if [ "$NEW_CLUSTER" = 1 ]; then
    if dry; then
      info "would generate the overlay key, the cluster key and the agent key: no anchors, no keys and no invitation, so this machine starts a new cluster"
      HEPTO_OVERLAY_KEY=dryrunplaceholder000000000000000
      HEPTO_CLUSTER_KEY=dryrunplaceholder000000000000001
      HEPTO_AGENT_KEY=dryrunplaceholder000000000000002
    else
      info "no anchors, no keys and no invitation: this machine starts a new cluster; generating its keys (overlay, k3s server and k3s agent)"
      HEPTO_OVERLAY_KEY=$(staged_agent keygen) || fatal "hepto-agent keygen failed; nothing was installed"
      HEPTO_CLUSTER_KEY=$(staged_agent keygen) || fatal "hepto-agent keygen failed; nothing was installed"
      HEPTO_AGENT_KEY=$(staged_agent keygen) || fatal "hepto-agent keygen failed; nothing was installed"
      # The cluster's admin key stays on this first machine (docs/trust.md); its public half
      # goes into every config. A retry after a failed install reuses the key made before.
      [ -e "$HEPTO_ETC/admin.key" ] || staged_agent admin init --admin-key "$HEPTO_ETC/admin.key" >/dev/null \
        || fatal "hepto-agent admin init failed; nothing was installed"
      HEPTO_ADMIN_PUB=$(staged_agent admin pub --admin-key "$HEPTO_ETC/admin.key") \
        || fatal "cannot read the admin key $HEPTO_ETC/admin.key; nothing was installed"
      info "made the cluster's admin key $HEPTO_ETC/admin.key (0600): keep it, it admits and removes machines"
    fi
  fi
  # umask 077 is in force: the file is 0600 from its creation, before any key is in it.
  NEW_CONF=$TMP_DIR/hepto.json
  HOST_NAME=$(cut -d . -f 1 /proc/sys/kernel/hostname | tr '[:upper:]' '[:lower:]') \
    HEPTO_OVERLAY_KEY=${HEPTO_OVERLAY_KEY:-} HEPTO_CLUSTER_KEY=${HEPTO_CLUSTER_KEY:-} HEPTO_AGENT_KEY=${HEPTO_AGENT_KEY:-} \
    HEPTO_ADMIN_PUB=${HEPTO_ADMIN_PUB:-} HEPTO_INVITE=${HEPTO_INVITE:-} \
    "$NODE_BIN" -e "$MERGE_JS" "$HEPTO_CONF" "$NEW_CONF" "$TMP_DIR/changes" 2>"$TMP_DIR/merge.err" \
    || fatal "cannot build the config: $(tail -n 1 "$TMP_DIR/merge.err")"
  if ! staged_agent config validate --config "$NEW_CONF" >"$TMP_DIR/validate.out" 2>&1; then
    # One line: the agent's problems, joined; it never prints a key.
    fatal "invalid settings: $(sed -e 's/^hepto-agent: //' -e "s#$NEW_CONF#the config#g" "$TMP_DIR/validate.out" | tr '\n' ';' | sed -e 's/;$//' -e 's/;/; /g'); nothing was installed"
  fi
  NODE_NAME=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).node' "$NEW_CONF")
  MASTER_NAME=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).master ?? ""' "$NEW_CONF")
  # For the join line: a wesher mirror (and its pin) the next machines need too.
  CONF_WESHER_DOWNLOAD=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).wesher_download ?? ""' "$NEW_CONF")
  CONF_WESHER_SHA256=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).wesher_sha256 ?? ""' "$NEW_CONF")
  CONF_ADMIN_PUB=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).admin_pub ?? ""' "$NEW_CONF")
  if [ "$INVITED" = 1 ]; then
    info "config valid: node $NODE_NAME; its agent enrols with the invitation when it starts, and gets the keys, the master and the anchors"
  else
    info "config valid: node $NODE_NAME, master $MASTER_NAME"
  fi
  # The k3s server token gives whoever holds it Kubernetes admin: only the master needs it.
  if [ -n "${HEPTO_CLUSTER_KEY:-}" ] && [ "$NEW_CLUSTER" = 0 ] && [ -n "$MASTER_NAME" ] && [ "$MASTER_NAME" != "$NODE_NAME" ]; then
    warn "HEPTO_CLUSTER_KEY is the k3s server token, which only the master ($MASTER_NAME) needs: it makes this machine's owner Kubernetes admin; pass HEPTO_AGENT_KEY (the master's agent_key) instead, and remove cluster_key from $HEPTO_CONF"
  fi
  if dry; then
    while IFS= read -r bc_line; do info "would set $bc_line in $HEPTO_CONF"; done <"$TMP_DIR/changes"
  fi
}

# --- installing files ----------------------------------------------------------------
CHANGED=
# install_file SRC DST MODE: replaces DST only when its bytes differ.
install_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    chmod "$3" "$2"
    return 0
  fi
  CHANGED="$CHANGED $2"
  if dry; then
    if [ -f "$2" ]; then info "would replace $2"; else info "would create $2"; fi
    return 0
  fi
  # Same directory, so the rename is atomic; umask 077 keeps it private until chmod.
  cp "$1" "$2.hepto-new"
  chmod "$3" "$2.hepto-new"
  mv -f "$2.hepto-new" "$2"
  info "wrote $2"
}

install_agent_dir() {
  ia_dir=$HEPTO_LIB/$AGENT_VERSION
  if [ -f "$ia_dir/.tarball-sha256" ] && [ "$(cat "$ia_dir/.tarball-sha256")" = "$AGENT_SHA256" ]; then
    return 0
  fi
  CHANGED="$CHANGED $ia_dir"
  if dry; then
    info "would unpack agent $AGENT_VERSION into $ia_dir"
    return 0
  fi
  mkdir -p "$HEPTO_LIB"
  chmod 0755 "$HEPTO_LIB"
  STAGED_LIB=$HEPTO_LIB/.$AGENT_VERSION.new
  rm -rf "$STAGED_LIB"
  cp -R "$AGENT_SRC" "$STAGED_LIB"
  printf '%s\n' "$AGENT_SHA256" >"$STAGED_LIB/.tarball-sha256"
  chmod -R u=rwX,go=rX "$STAGED_LIB"
  rm -rf "$ia_dir"
  mv "$STAGED_LIB" "$ia_dir"
  STAGED_LIB=
  info "unpacked agent $AGENT_VERSION into $ia_dir"
}

write_wrapper() { # $1 = destination
  ww_flags=$AGENT_NODE_FLAGS
  # shellcheck disable=SC2086 # the flags are words
  if ! "$NODE_BIN" $ww_flags -e 0 >/dev/null 2>&1; then
    warn "$NODE_BIN refuses the node flags $AGENT_NODE_FLAGS; the agent runs without them and uses more memory"
    ww_flags=
  fi
  cat >"$1" <<EOF
#!/bin/sh
# Written by the hepto installer: runs agent $AGENT_VERSION with $NODE_BIN.
exec $NODE_BIN $ww_flags $HEPTO_LIB/$AGENT_VERSION/dist/agent/cli.js "\$@"
EOF
}

write_uninstaller() { # $1 = destination
  cat >"$1" <<'EOF'
#!/bin/sh
# Written by the hepto installer. Removes what it installed: the service, the
# agent, its config. The node's containers and data stay unless --purge.
set -e
main() {
  purge=0
  for arg in "$@"; do
    case $arg in
      --purge) purge=1 ;;
      -h | --help) echo "usage: hepto-uninstall.sh [--purge]  (--purge also removes the node's containers and <storage_base>/<node> data)"; exit 0 ;;
      *) echo "[ERROR] unknown option $arg (usage: hepto-uninstall.sh [--purge])" >&2; exit 2 ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || { echo "[ERROR] hepto-uninstall.sh needs root: sudo hepto-uninstall.sh" >&2; exit 1; }
  data_dirs=
  if [ "$purge" = 1 ] && [ -f /etc/hepto/hepto.json ]; then
    node_bin=$(sed -n 's/^exec \([^ ]*\) .*/\1/p' /usr/local/bin/hepto-agent 2>/dev/null || true)
    if [ -n "$node_bin" ] && [ -x "$node_bin" ]; then
      data_dirs=$("$node_bin" -e '
        const c = JSON.parse(require("fs").readFileSync("/etc/hepto/hepto.json", "utf8"));
        const base = typeof c.storage_base === "string" ? c.storage_base : "/srv";
        const names = [c.node, ...(Array.isArray(c.nodes) ? c.nodes.map((n) => n && n.node) : [])];
        for (const n of names) if (typeof n === "string" && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(n)) console.log(base + "/" + n);
      ' 2>/dev/null || true)
    fi
  fi
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now hepto-agent.service >/dev/null 2>&1 || true
  fi
  rm -f /etc/systemd/system/hepto-agent.service
  if command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    systemctl reset-failed hepto-agent.service >/dev/null 2>&1 || true
  fi
  if [ "$purge" = 1 ] && command -v podman >/dev/null 2>&1; then
    # k3s shares wesher's network namespace: remove it first, then the rest.
    # Stopped with time to finish first: on SIGTERM wesher leaves the mesh
    # (up to 10 s) and deletes its interface, which in host mode is on this
    # machine's own network; a plain rm -f kills it at once (the containers
    # carry no stop timeout) and leaves wgoverlay behind.
    for filter in label=io.hepto.role=k3s label=io.hepto.node; do
      for c in $(podman ps -a --filter "$filter" --format '{{.Names}}' 2>/dev/null); do
        podman stop -t 15 "$c" >/dev/null 2>&1 || true
        if podman rm -f "$c" >/dev/null 2>&1; then echo "[INFO]  removed container $c" >&2; fi
      done
    done
    left=$(podman ps -a --filter label=io.hepto.node --format '{{.Names}}' 2>/dev/null | tr '\n' ' ')
    if [ -n "$left" ]; then echo "[WARN]  could not remove containers: $left(podman rm -f them)" >&2; fi
  fi
  for d in $data_dirs; do
    case $d in /*/*) rm -rf "$d" && echo "[INFO]  removed $d" >&2 ;; esac
  done
  rm -f /usr/local/bin/hepto-agent
  rm -rf /usr/local/lib/hepto-agent /run/hepto
  # The cluster's admin key is not this machine's to lose: it is kept, even with --purge.
  if [ -e /etc/hepto/admin.key ]; then
    find /etc/hepto -mindepth 1 ! -name admin.key -exec rm -rf {} + 2>/dev/null || true
    echo "[INFO]  kept the cluster's admin key /etc/hepto/admin.key (remove it yourself if no cluster needs it)" >&2
  else
    rm -rf /etc/hepto
  fi
  if [ "$purge" = 0 ]; then
    echo "[INFO]  hepto-agent removed; containers and node data were kept (hepto-uninstall.sh --purge removes them)" >&2
  else
    echo "[INFO]  hepto-agent, its containers and node data removed" >&2
  fi
  rm -f /usr/local/bin/hepto-uninstall.sh
}
main "$@"
EOF
}

install_files() {
  install_agent_dir
  write_wrapper "$TMP_DIR/wrapper"
  install_file "$TMP_DIR/wrapper" "$HEPTO_BIN" 0755
  if [ -n "${NEW_CONF:-}" ]; then
    if ! dry && [ ! -d "$HEPTO_ETC" ]; then mkdir -m 0700 "$HEPTO_ETC"; fi
    install_file "$NEW_CONF" "$HEPTO_CONF" 0600
  fi
  install_file "$AGENT_SRC/systemd/hepto-agent.service" "$HEPTO_UNIT" 0644
  write_uninstaller "$TMP_DIR/uninstall"
  install_file "$TMP_DIR/uninstall" "$HEPTO_UNINSTALL" 0755
}

# --- the service ----------------------------------------------------------------------
changed() { # $1 = path: was it replaced in this run?
  case " $CHANGED " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

# The agent's own one-line error from a given run of the service.
last_agent_error() {
  journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$1" SYSLOG_IDENTIFIER=hepto-agent 2>/dev/null \
    | grep -E '^(<[0-9]>)?(hepto-agent:|error )' | tail -n 1 | sed 's/^<[0-9]>//'
}

start_service() {
  if ! systemctl is-enabled --quiet podman.socket 2>/dev/null || ! systemctl is-active --quiet podman.socket 2>/dev/null; then
    act systemctl enable --now podman.socket
  fi
  if changed "$HEPTO_UNIT"; then act systemctl daemon-reload; fi
  systemctl is-enabled --quiet "$HEPTO_SERVICE" 2>/dev/null || act systemctl enable --quiet "$HEPTO_SERVICE"
  if [ "${HEPTO_SKIP_START:-0}" = 1 ]; then
    info "HEPTO_SKIP_START=1: not starting; start it with: systemctl start $HEPTO_SERVICE"
    return 0
  fi
  if [ -z "$CHANGED" ] && systemctl is-active --quiet "$HEPTO_SERVICE"; then
    info "nothing changed; $HEPTO_SERVICE keeps running"
    return 0
  fi
  if dry; then
    info "would (re)start $HEPTO_SERVICE"
    return 0
  fi
  ss_before=$(systemctl show -p InvocationID --value "$HEPTO_SERVICE")
  info "(re)starting $HEPTO_SERVICE"
  systemctl restart --no-block "$HEPTO_SERVICE"
  ss_waited=0
  while :; do
    ss_state=$(systemctl show -p ActiveState --value "$HEPTO_SERVICE")
    ss_now=$(systemctl show -p InvocationID --value "$HEPTO_SERVICE")
    if [ "$ss_now" != "$ss_before" ] && [ "$ss_state" = active ]; then
      break
    fi
    ss_sub=$(systemctl show -p SubState --value "$HEPTO_SERVICE")
    if [ "$ss_now" != "$ss_before" ] && { [ "$ss_state" = failed ] || [ "$ss_sub" = auto-restart ]; }; then
      # Reported after the join line, so a new cluster's keys are not lost with it.
      START_FAILED="$HEPTO_SERVICE exited while starting: $(last_agent_error "$ss_now") (journalctl -u $HEPTO_SERVICE)"
      return 0
    fi
    if [ "$ss_waited" -ge "$START_TIMEOUT" ]; then
      warn "$HEPTO_SERVICE is still starting after ${START_TIMEOUT}s: $(systemctl show -p StatusText --value "$HEPTO_SERVICE") (systemctl status $HEPTO_SERVICE)"
      return 0
    fi
    sleep 1
    ss_waited=$((ss_waited + 1))
  done
  info "$HEPTO_SERVICE is running: $(systemctl show -p StatusText --value "$HEPTO_SERVICE")"
}

remove_old_versions() {
  [ -d "$HEPTO_LIB" ] || return 0
  for ro_dir in "$HEPTO_LIB"/*; do
    if [ -d "$ro_dir" ] && [ "$ro_dir" != "$HEPTO_LIB/$AGENT_VERSION" ]; then
      act rm -rf "$ro_dir"
    fi
  done
}

# --- this machine's admission (pinned names, docs/trust.md) -------------------------
ADMIT_WAIT=15

# Asks the running agent about this machine's own member: sets SELF_ADMITTED
# (yes or no; empty when the agent does not answer within ADMIT_WAIT seconds)
# and SELF_IDENTITY (its identity key, ed25519:<base64>: public).
self_admission() {
  SELF_ADMITTED=
  SELF_IDENTITY=
  sa_waited=0
  while :; do
    sa_out=$("$HEPTO_BIN" status --json 2>/dev/null | "$NODE_BIN" -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        try { const j = JSON.parse(s); const me = j.members.find((m) => m.self === true || m.name === j.node);
              if (me) console.log((me.admitted_at ? "yes" : "no") + " " + (me.identity_key || "")); } catch {}
      });' 2>/dev/null || true)
    case $sa_out in
      yes\ * | no\ *)
        SELF_ADMITTED=${sa_out%% *}
        SELF_IDENTITY=${sa_out#* }
        return 0
        ;;
    esac
    [ "$sa_waited" -lt "$ADMIT_WAIT" ] || break
    sleep 1
    sa_waited=$((sa_waited + 1))
  done
  # No answer: the identity key's public half is in the node's state too.
  SELF_IDENTITY=$("$NODE_BIN" -e '
    const fs = require("fs");
    try { const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
          const base = typeof c.storage_base === "string" ? c.storage_base : "/srv";
          const id = JSON.parse(fs.readFileSync(base + "/" + c.node + "/identity.json", "utf8"));
          if (typeof id.public === "string" && id.public) console.log("ed25519:" + id.public); } catch {}
  ' "$HEPTO_CONF" 2>/dev/null || true)
}

# Does this machine hold the cluster's admin key, the one admin_pub names?
holds_admin_key() {
  if [ -z "${CONF_ADMIN_PUB:-}" ] || [ ! -f "$HEPTO_ETC/admin.key" ]; then return 1; fi
  ha_pub=$("$HEPTO_BIN" admin pub --admin-key "$HEPTO_ETC/admin.key" 2>/dev/null) || return 1
  [ "$ha_pub" = "$CONF_ADMIN_PUB" ]
}

# With admin_pub, members refuse a node that shows no admission. The machine
# with the admin key admits its own node here; any other one is told what the
# admin runs for it (ADMIT_NOTE, printed last).
admit_self() {
  ADMIT_NOTE=
  [ -n "${CONF_ADMIN_PUB:-}" ] || return 0
  as_hand="hepto-agent admit $NODE_NAME --admin-key $HEPTO_ETC/admin.key"
  if [ "${HEPTO_SKIP_START:-0}" = 1 ] || ! systemctl is-active --quiet "$HEPTO_SERVICE" 2>/dev/null; then
    if holds_admin_key; then
      ADMIT_NOTE="once $HEPTO_SERVICE runs, admit this machine, or the cluster refuses it: $as_hand"
    else
      ADMIT_NOTE="once $HEPTO_SERVICE runs, this machine must be admitted before the cluster accepts it: hepto-agent status names the command to run on the machine with the admin key"
    fi
    return 0
  fi
  self_admission
  [ "$SELF_ADMITTED" != yes ] || return 0
  if ! holds_admin_key; then
    if [ -n "$SELF_IDENTITY" ]; then
      ADMIT_NOTE="this machine must be admitted before the cluster accepts it: on the machine with the admin key, run: hepto-agent admit $NODE_NAME --identity $SELF_IDENTITY"
    else
      ADMIT_NOTE="this machine must be admitted before the cluster accepts it: hepto-agent status names the command to run on the machine with the admin key"
    fi
    return 0
  fi
  as_waited=0
  while :; do
    as_rc=0
    "$HEPTO_BIN" admit "$NODE_NAME" --admin-key "$HEPTO_ETC/admin.key" >"$TMP_DIR/admit.out" 2>"$TMP_DIR/admit.err" || as_rc=$?
    if [ "$as_rc" = 0 ]; then
      info "admitted this machine ($NODE_NAME, identity ${SELF_IDENTITY:-unknown}) with the cluster's admin key; its agent spreads the admission"
      return 0
    fi
    # 3: the agent does not answer on its control socket (yet).
    if [ "$as_rc" != 3 ] || [ "$as_waited" -ge "$ADMIT_WAIT" ]; then break; fi
    sleep 1
    as_waited=$((as_waited + 1))
  done
  # Its error is its last line on stderr (a refusal's summary follows on stdout).
  as_why=$(sed -e 's/^hepto-agent: //' "$TMP_DIR/admit.err" | tail -n 1)
  [ -n "$as_why" ] || as_why=$(tail -n 1 "$TMP_DIR/admit.out")
  warn "could not admit this machine: ${as_why:-hepto-agent admit exited $as_rc}; the cluster refuses it until you run: $as_hand"
}

# --- joining the next machines ----------------------------------------------------
# Quotes a value always, as join.env's KEY='value' lines need.
shq_always() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# /etc/hepto/join.env: how the next machines install, for the line `hepto-agent
# invite` prints (public values only: URLs and pins, never a key). As the
# old join line did: the tarball installed here with its sha256, so the next
# machines check the same bytes rather than a .sha256 from the server; a local
# tarball with HEPTO_INSTALL_URL is to be served by its owner (a placeholder);
# from a checkout, nothing (the line runs ./install.sh there, which builds its
# own). A wesher mirror this machine needed, the next ones need too (a plain
# http one only with its pin, which is for this machine's architecture).
# Sets JOIN_INSTALL_URL. Not a change to the agent: no restart for it.
write_join_env() {
  JOIN_INSTALL_URL=${HEPTO_INSTALL_URL:-}
  je_agent=
  je_sha=
  case $HEPTO_AGENT_URL in
    http://* | https://*)
      [ -n "$JOIN_INSTALL_URL" ] || JOIN_INSTALL_URL=${HEPTO_AGENT_URL%/*}/install.sh
      je_agent=$HEPTO_AGENT_URL
      je_sha=$AGENT_SHA256
      ;;
    *)
      if [ -n "$JOIN_INSTALL_URL" ]; then
        je_agent='<url-of-the-tarball>'
        je_sha=$AGENT_SHA256
      fi
      ;;
  esac
  {
    echo "# Written by the hepto installer; read by hepto-agent invite for the line it prints."
    echo "# Public values only: where the next machines get install.sh and the agent, and the pins."
    for je_pair in "HEPTO_INSTALL_URL=$JOIN_INSTALL_URL" "HEPTO_AGENT_URL=$je_agent" "HEPTO_AGENT_SHA256=$je_sha" \
      "HEPTO_WESHER_DOWNLOAD=${CONF_WESHER_DOWNLOAD:-}" "HEPTO_WESHER_SHA256=${CONF_WESHER_SHA256:-}"; do
      if [ -n "${je_pair#*=}" ]; then printf '%s=%s\n' "${je_pair%%=*}" "$(shq_always "${je_pair#*=}")"; fi
    done
  } >"$TMP_DIR/join.env"
  if [ -f "$HEPTO_JOIN_ENV_FILE" ] && cmp -s "$TMP_DIR/join.env" "$HEPTO_JOIN_ENV_FILE"; then
    return 0
  fi
  if dry; then
    info "would write $HEPTO_JOIN_ENV_FILE (for hepto-agent invite: where the next machines install from)"
    return 0
  fi
  if [ ! -d "${HEPTO_JOIN_ENV_FILE%/*}" ]; then mkdir -m 0700 "${HEPTO_JOIN_ENV_FILE%/*}"; fi
  cp "$TMP_DIR/join.env" "$HEPTO_JOIN_ENV_FILE.hepto-new"
  chmod 0644 "$HEPTO_JOIN_ENV_FILE.hepto-new"
  mv -f "$HEPTO_JOIN_ENV_FILE.hepto-new" "$HEPTO_JOIN_ENV_FILE"
  info "wrote $HEPTO_JOIN_ENV_FILE (for hepto-agent invite: where the next machines install from)"
}

INVITE_WAIT=15

# A new cluster's last word: an invitation for the next machine, made by the
# running agent with the admin key (`hepto-agent invite`), whose last line is
# the command that joins it. Its output holds the invitation: it goes to a
# 0600 file (umask 077), and only its last line, through printf, to stdout.
print_invite_line() {
  pi_hand="hepto-agent invite --ttl 24h --uses 1"
  info "new cluster created; this machine ($NODE_NAME) is its master and first anchor"
  if [ "${HEPTO_SKIP_START:-0}" = 1 ] || [ -n "${START_FAILED:-}" ] || ! systemctl is-active --quiet "$HEPTO_SERVICE" 2>/dev/null; then
    warn "no join line yet: an invitation needs the running agent; once $HEPTO_SERVICE runs, make one here with: $pi_hand (its last line joins the next machine)"
    return 0
  fi
  pi_waited=0
  while :; do
    pi_rc=0
    HEPTO_JOIN_ENV=$HEPTO_JOIN_ENV_FILE "$HEPTO_BIN" invite --ttl 24h --uses 1 --admin-key "$HEPTO_ETC/admin.key" --config "$HEPTO_CONF" \
      >"$TMP_DIR/invite.out" 2>"$TMP_DIR/invite.err" || pi_rc=$?
    # 3: the agent does not answer on its control socket (yet).
    if [ "$pi_rc" != 3 ] || [ "$pi_waited" -ge "$INVITE_WAIT" ]; then break; fi
    sleep 1
    pi_waited=$((pi_waited + 1))
  done
  pi_line=
  if [ "$pi_rc" = 0 ]; then
    while IFS= read -r pi_read || [ -n "$pi_read" ]; do [ -z "$pi_read" ] || pi_line=$pi_read; done <"$TMP_DIR/invite.out"
    pi_read=
  fi
  case $pi_line in
    *" HEPTO_INVITE=hepto1."*) ;;
    *)
      pi_why=$(sed -e 's/^hepto-agent: //' "$TMP_DIR/invite.err" | grep -v '^warning: ' | tail -n 1)
      [ -n "$pi_why" ] || pi_why="hepto-agent invite exited $pi_rc without a join line"
      warn "could not make an invitation for the next machine: $pi_why; make one here with: $pi_hand (its last line joins the next machine)"
      return 0
      ;;
  esac
  # Its first line says what it is (id, uses, expiry, anchors); never the token.
  pi_about=$(sed -n '1{/^invitation /p}' "$TMP_DIR/invite.out")
  [ -z "$pi_about" ] || info "$pi_about"
  case ${JOIN_INSTALL_URL:-} in
    http://*) warn "the join line fetches install.sh over plain http ($JOIN_INSTALL_URL), and passes it the invitation: anyone who can change it on the way can use it first; serve install.sh over https and set HEPTO_INSTALL_URL" ;;
  esac
  if [ -n "${CONF_WESHER_SHA256:-}" ]; then
    info "(HEPTO_WESHER_SHA256 pins the wesher binary for this machine's architecture, $(uname -m): on a machine of another one, put that binary's sha256 in its place)"
  fi
  info "to join another machine, run the line below on it from a root shell (sudo -i; not 'sudo HEPTO_...=...', which shows the invitation to every user); it enrols and is admitted, nothing to run here after it"
  info "the line is an invitation for ONE machine, valid for 24 h: share it privately. For more machines, run here (it holds the admin key): hepto-agent invite --uses N [--ttl 24h]"
  printf '%s\n' "$pi_line"
  pi_line=
}

ENROL_WAIT=30

# A machine installed with an invitation: its agent enrols through the
# invitation's anchors as it starts. Says how that went (the status of its own
# member), or leaves, for the end, what went wrong (ADMIT_NOTE).
enrol_self() {
  es_state=$(systemctl show -p ActiveState --value "$HEPTO_SERVICE" 2>/dev/null || true)
  if [ "${HEPTO_SKIP_START:-0}" = 1 ] || { [ "$es_state" != active ] && [ "$es_state" != activating ]; }; then
    ADMIT_NOTE="once $HEPTO_SERVICE runs, it enrols with the invitation (until the invitation expires); hepto-agent status shows how that went"
    return 0
  fi
  es_waited=0
  es_out=
  while :; do
    es_out=$("$HEPTO_BIN" status --json 2>/dev/null | "$NODE_BIN" -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        try { const j = JSON.parse(s); const me = j.members.find((m) => m.self === true || m.name === j.node);
              const why = (j.problems || [])[0] || "";
              console.log((me && me.admitted_at ? "yes " + (me.identity_key || "") : "no " + why).replace(/\n/g, " ")); } catch {}
      });' 2>/dev/null || true)
    case $es_out in
      yes\ *)
        info "enrolled with the invitation: $NODE_NAME is a member of the cluster, admitted (identity ${es_out#yes })"
        return 0
        ;;
    esac
    [ "$es_waited" -lt "$ENROL_WAIT" ] || break
    sleep 1
    es_waited=$((es_waited + 1))
  done
  es_why=${es_out#no }
  [ -n "$es_why" ] || es_why=$(systemctl show -p StatusText --value "$HEPTO_SERVICE" 2>/dev/null || true)
  ADMIT_NOTE="this machine has not enrolled with its invitation yet (after ${ENROL_WAIT}s): ${es_why:-no answer from the agent}; see hepto-agent status and journalctl -u $HEPTO_SERVICE"
}

main() {
  set -e
  umask 077
  warn_unknown_vars
  check_root
  check_flags
  check_systemd
  check_cluster_inputs
  check_agent_source
  dry && info "HEPTO_DRY_RUN=1: nothing will be changed"
  TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hepto-install.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  fetch_agent
  unpack_agent
  install_deps
  build_config
  install_files
  write_join_env
  start_service
  if ! dry; then remove_old_versions; fi
  if [ -z "${START_FAILED:-}" ] && ! dry; then admit_self; fi
  if [ "$INVITED" = 1 ] && [ -z "${START_FAILED:-}" ] && ! dry; then enrol_self; fi
  if [ "$NEW_CLUSTER" = 1 ] && ! dry; then print_invite_line; fi
  if [ -n "${START_FAILED:-}" ]; then fatal "$START_FAILED"; fi
  if [ -z "$CHANGED" ]; then
    info "done: nothing changed"
  elif dry; then
    info "dry run done: would change$CHANGED"
  else
    info "done: changed$CHANGED"
  fi
  if [ -n "${ADMIT_NOTE:-}" ]; then warn "$ADMIT_NOTE"; fi
}

main "$@"
