#!/usr/bin/env bash
# Sourced by ./gantry and .ci/run. Makes sure this checkout has everything it needs to build and test:
#   Node >= 22.12 (installs Node 24 from the npm registry into .tools/ when the system Node is older),
#   pnpm through corepack (pinned by `packageManager`), workspace dependencies,
#   Debian's prometheus (when missing and running as root) and the Kafka broker jars (cached in .cache/);
#   for ./gantry demo, Debian's chromium the same way (ensure_chromium).
# Safe to rerun: every step checks before it works, so a second run takes a second or two.
set -euo pipefail

GANTRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$GANTRY_ROOT/.tools"
NODE_VERSION="24.21.0"
NODE_INTEGRITY="sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q=="
COREPACK_VERSION="0.36.0"
COREPACK_INTEGRITY="sha512-SiiJsBhZqdBiPHTEl6OT3sASrRrKIcYTQMsVGXx6EE/gM8WFMwYjeIX8Tt8RiU4Iv2J6LbT8KpGfCOsBpRWB/w=="
REGISTRY="${npm_config_registry:-https://registry.npmjs.org}"
REGISTRY="${REGISTRY%/}"

say() { printf '\033[2m[bootstrap]\033[0m %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

# fetch_package <name> <version> <integrity> <dest>: download an npm tarball, check its integrity, unpack it.
fetch_package() {
  local name="$1" version="$2" integrity="$3" dest="$4" tmp
  tmp="$(mktemp -d)"
  local file="$tmp/pkg.tgz" base="${name##*/}"
  curl -fsSL --retry 3 -o "$file" "$REGISTRY/$name/-/$base-$version.tgz" \
    || die "could not download $name@$version from $REGISTRY"
  local actual="sha512-$(openssl dgst -sha512 -binary "$file" | base64 -w0)"
  [ "$actual" = "$integrity" ] || die "$name@$version: integrity mismatch (expected $integrity, got $actual)"
  mkdir -p "$dest"
  tar -xzf "$file" -C "$dest" --strip-components=1
  rm -rf "$tmp"
}

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
node_minor() { "$1" -p 'process.versions.node.split(".")[1]' 2>/dev/null || echo 0; }

ensure_node() {
  local system_node
  system_node="$(command -v node || true)"
  if [ -n "$system_node" ]; then
    local major minor
    major="$(node_major "$system_node")"; minor="$(node_minor "$system_node")"
    if [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 12 ]; }; then
      NODE_BIN="$(readlink -f "$system_node")"; return
    fi
  fi
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64|arm64) arch=arm64; NODE_INTEGRITY="" ;;
    *) die "no Node $NODE_VERSION package for $(uname -m); install Node >= 22.12 yourself" ;;
  esac
  local dir="$TOOLS/node-$NODE_VERSION"
  if [ ! -x "$dir/bin/node" ]; then
    local found="no system Node"
    [ -z "$system_node" ] || found="system Node is $("$system_node" -v)"
    say "$found (need >= 22.12); installing Node $NODE_VERSION into .tools/"
    [ -n "$NODE_INTEGRITY" ] || die "only linux-x64 has a pinned Node integrity; install Node >= 22.12 yourself"
    rm -rf "$dir.partial"
    fetch_package "node-linux-$arch" "$NODE_VERSION" "$NODE_INTEGRITY" "$dir.partial"
    mv "$dir.partial" "$dir"
  fi
  NODE_BIN="$dir/bin/node"
}

ensure_pnpm() {
  local corepack_dir="$TOOLS/corepack-$COREPACK_VERSION"
  if [ ! -f "$corepack_dir/dist/corepack.js" ]; then
    say "installing corepack $COREPACK_VERSION into .tools/"
    rm -rf "$corepack_dir.partial"
    fetch_package corepack "$COREPACK_VERSION" "$COREPACK_INTEGRITY" "$corepack_dir.partial"
    mv "$corepack_dir.partial" "$corepack_dir"
  fi
  mkdir -p "$TOOLS/bin"
  ln -sf "$NODE_BIN" "$TOOLS/bin/node"
  # A pnpm shim that runs the version pinned in package.json's packageManager through corepack.
  cat > "$TOOLS/bin/pnpm" <<SHIM
#!/usr/bin/env bash
export COREPACK_HOME="$TOOLS/corepack-home" COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_ENABLE_AUTO_PIN=0
exec "$TOOLS/bin/node" "$corepack_dir/dist/pnpm.js" "\$@"
SHIM
  chmod +x "$TOOLS/bin/pnpm"
  export COREPACK_HOME="$TOOLS/corepack-home"
  export COREPACK_ENABLE_DOWNLOAD_PROMPT=0
  export COREPACK_ENABLE_AUTO_PIN=0
  export PATH="$TOOLS/bin:$PATH"
}

ensure_dependencies() {
  local stamp="$GANTRY_ROOT/node_modules/.gantry-install-stamp"
  local hash
  local file manifests=()
  for file in "$GANTRY_ROOT"/{pnpm-lock.yaml,package.json,pnpm-workspace.yaml} "$GANTRY_ROOT"/bench/package.json \
    "$GANTRY_ROOT"/{packages,examples,test}/*/package.json; do
    [ -f "$file" ] && manifests+=("$file")
  done
  hash="$(cat "${manifests[@]}" | openssl dgst -sha256 -r | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then return; fi
  say "installing workspace dependencies (pnpm install --frozen-lockfile)"
  (cd "$GANTRY_ROOT" && pnpm install --frozen-lockfile --reporter=append-only) >&2
  echo "$hash" > "$stamp"
}

ensure_prometheus() {
  command -v prometheus >/dev/null 2>&1 && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's prometheus package (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
  else
    say "prometheus is not installed and this is not root with apt-get: tests that need it will say so"
  fi
}

# Only `./gantry demo` needs it (the report's screenshot); the demo skips the screenshot with a notice without it.
ensure_chromium() {
  [ -n "${GANTRY_CHROMIUM:-}" ] && return
  command -v chromium >/dev/null 2>&1 && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium package (apt-get) for the demo report's screenshot"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2 ||
      say "chromium could not be installed: the demo will skip its report screenshot"
  fi
}

ensure_kafka_jars() {
  (cd "$GANTRY_ROOT" && node test/harness/src/cli.ts ensure-kafka) >&2
}

ensure_node
ensure_pnpm
ensure_dependencies
if [ "${GANTRY_BOOTSTRAP_SERVERS:-1}" = "1" ]; then
  ensure_prometheus
  ensure_kafka_jars
fi
export GANTRY_ROOT
