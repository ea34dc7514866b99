#!/usr/bin/env bash
# Fetch the operate tools, pinned and cached by version under .stack/tools/<name>-<version>/bin,
# and print the path of the requested binary:  bash deploy/tools/install.sh helm|promtool
#   helm:     built from the Go module proxy (go install, ~4-5 min on 2 cores, once per version)
#   ghz:      built from the Go module proxy (go install, ~2 min on 2 cores), for bench.decision
#   promtool: extracted from Debian's prometheus package (apt-get download + dpkg-deb -x, ~10 s;
#             nothing is installed or started). `go install …/cmd/promtool` is slower and, for
#             Prometheus 3.16 (v0.316.0), fails: the proxy refuses one of its SD dependencies.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_VERSION=v3.22.0
GHZ_VERSION=v0.121.0                          # gRPC load generator for bench.decision (~2 min to build)
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1   # Debian 12's prometheus (promtool 2.42)

tool=${1:?usage: install.sh helm|promtool|ghz}
tools_dir="$PWD/.stack/tools"

case "$tool" in
  helm)
    bin_dir="$tools_dir/helm-$HELM_VERSION/bin"
    if [[ ! -x "$bin_dir/helm" ]]; then
      command -v go >/dev/null || { echo "install.sh: Go is needed to build helm" >&2; exit 1; }
      start=$(date +%s)
      echo "building helm $HELM_VERSION (go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION) ..." >&2
      mkdir -p "$bin_dir"
      GOBIN="$bin_dir" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
        go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
      echo "built helm in $(( $(date +%s) - start )) s" >&2
    fi
    echo "$bin_dir/helm"
    ;;
  promtool)
    bin_dir="$tools_dir/promtool-$PROMETHEUS_DEB_VERSION/bin"
    if [[ ! -x "$bin_dir/promtool" ]]; then
      start=$(date +%s)
      work=$(mktemp -d)
      trap 'rm -rf "$work"' EXIT
      fetch() { (cd "$work" && apt-get download -q "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1); }
      if ! fetch; then
        apt-get update -qq >&2 || true
        fetch || { echo "install.sh: Debian's prometheus $PROMETHEUS_DEB_VERSION is not available;" \
          "update PROMETHEUS_DEB_VERSION to what 'apt-cache policy prometheus' offers" >&2; exit 1; }
      fi
      dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
      mkdir -p "$bin_dir"
      cp "$work/x/usr/bin/promtool" "$bin_dir/promtool"
      echo "fetched promtool $PROMETHEUS_DEB_VERSION in $(( $(date +%s) - start )) s" >&2
    fi
    echo "$bin_dir/promtool"
    ;;
  ghz)
    bin_dir="$tools_dir/ghz-$GHZ_VERSION/bin"
    if [[ ! -x "$bin_dir/ghz" ]]; then
      command -v go >/dev/null || { echo "install.sh: Go is needed to build ghz" >&2; exit 1; }
      start=$(date +%s)
      echo "building ghz $GHZ_VERSION (go install github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION) ..." >&2
      mkdir -p "$bin_dir"
      GOBIN="$bin_dir" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
        go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" >&2
      echo "built ghz in $(( $(date +%s) - start )) s" >&2
    fi
    echo "$bin_dir/ghz"
    ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac
