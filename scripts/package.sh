#!/usr/bin/env bash
# Builds the release tarball that install.sh consumes (`npm run package`):
#
#   dist/release/hepto-agent-<version>.tar.gz          the agent, ready to run
#   dist/release/hepto-agent-<version>.tar.gz.sha256   "<sha256>  <file name>"
#   dist/release/install.sh                            the installer, served next to it
#
# The tarball holds one directory, hepto-agent-<version>/, with the compiled
# dist/agent and dist/shared, production node_modules (npm ci --omit=dev),
# package.json, shared/schema and systemd/. It is reproducible: the same
# checkout gives the same bytes (sorted entries, fixed owner and modes, mtimes
# from the last commit, gzip without a timestamp). No network beyond npm.
#
# Options: --out DIR (default dist/release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=$ROOT/dist/release
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    *) echo "package.sh: unknown option $1 (only --out DIR)" >&2; exit 2 ;;
  esac
done

VERSION=$(node -p 'require("./package.json").version')
case $VERSION in
  *[!0-9A-Za-z.+-]*|'') echo "package.sh: package.json version \"$VERSION\" is not a plain version" >&2; exit 1 ;;
esac
NAME=hepto-agent-$VERSION
# Timestamps come from the last commit so that rebuilds match; 0 outside git.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hepto-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/$NAME
mkdir -p "$STAGE"

echo "package.sh: compiling $NAME" >&2
# Straight into the staging dir, so test builds or stale files in dist/ never leak in.
npx --no-install tsc -p tsconfig.build.json --outDir "$STAGE/dist"
# The config's schema validator, generated (scripts/config-validator.js): the agent does not load ajv's compiler.
node scripts/config-validator.js "$STAGE/dist/shared/config/config-validator.js"

cp package.json package-lock.json "$STAGE/"
mkdir -p "$STAGE/systemd"
cp systemd/hepto-agent.service "$STAGE/systemd/"
if [ -d shared/schema ]; then
  mkdir -p "$STAGE/shared"
  cp -r shared/schema "$STAGE/shared/"
fi

echo "package.sh: installing production dependencies" >&2
# --ignore-scripts: no prepare (tsc) or native builds; everything we ship is plain JS.
(cd "$STAGE" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
# npm writes this cache file with install-time data; it is not needed to run.
rm -f "$STAGE/node_modules/.package-lock.json"

# Normalise modes: umask and npm must not change the bytes.
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f -perm /111 -exec chmod 0755 {} +
find "$STAGE" -type f ! -perm /111 -exec chmod 0644 {} +
chmod 0755 "$STAGE/dist/agent/cli.js"

mkdir -p "$OUT"
TARBALL=$OUT/$NAME.tar.gz
tar -C "$WORK" --sort=name --format=gnu --mtime="@$EPOCH" \
  --owner=0 --group=0 --numeric-owner -cf - "$NAME" | gzip -9n >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
(cd "$OUT" && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256")
cp install.sh "$OUT/install.sh"
chmod 0755 "$OUT/install.sh"

echo "package.sh: wrote $TARBALL" >&2
cat "$TARBALL.sha256"
