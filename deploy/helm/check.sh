#!/usr/bin/env bash
# Lint and render the chart with every ci/*-values.yaml, validate each rendering offline against
# the Kubernetes API schemas (deploy/helm/validate.py), and diff the default rendering against
# the checked-in deploy/helm/rendered/default.yaml.  --update rewrites that file instead.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PY:-.venv/bin/python}
CHART=deploy/helm/fraudmesh
RENDERED=deploy/helm/rendered/default.yaml
KUBE_VERSIONS=(1.29.0 1.37.0)   # oldest supported (Chart.yaml kubeVersion) and newest bundled schemas
OUT=.stack/rendered
helm=$(bash deploy/tools/install.sh helm)

# Helm notes that the chart's files/ links into charts/ (dashboards, alerts); that is intended.
quiet() { "$@" 2> >(grep -v 'found symbolic link in path' >&2); }

mkdir -p "$OUT"
rm -f "$OUT"/*.yaml
for values in "$CHART"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  quiet "$helm" lint --strict --quiet --kube-version "${KUBE_VERSIONS[0]}" "$CHART" -f "$values" >/dev/null \
    || { quiet "$helm" lint --strict --kube-version "${KUBE_VERSIONS[0]}" "$CHART" -f "$values"; exit 1; }
  quiet "$helm" template fraudmesh "$CHART" --namespace fraudmesh --kube-version "${KUBE_VERSIONS[0]}" \
    -f "$values" > "$OUT/$name.yaml"
  echo "helm lint + template: ci/$(basename "$values") ok"
done
versions=()
for v in "${KUBE_VERSIONS[@]}"; do versions+=(--kube-version "$v"); done
"$PY" deploy/helm/validate.py "${versions[@]}" "$OUT"/*.yaml

if [[ "${1:-}" == --update ]]; then
  mkdir -p "$(dirname "$RENDERED")"
  cp "$OUT/default.yaml" "$RENDERED"
  echo "wrote $RENDERED"
elif ! diff -q "$RENDERED" "$OUT/default.yaml" >/dev/null; then
  diff -u "$RENDERED" "$OUT/default.yaml" | head -60 >&2 || true
  echo "$RENDERED is stale: run 'make helm-render' and commit it" >&2
  exit 1
else
  echo "$RENDERED is up to date"
fi
