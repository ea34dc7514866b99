#!/usr/bin/env bash
# Generate the Python code (+ mypy stubs) for protos/fraudmesh/v1 with the venv's pinned grpcio-tools.
#   generate.sh          regenerate in place, beside the .proto sources
#   generate.sh --check  regenerate into a scratch dir and fail if protos/ differs (stale or extra files)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
py="$root/.venv/bin/python"
export PATH="$root/.venv/bin:$PATH"   # protoc-gen-mypy / protoc-gen-mypy_grpc

generate() {
  local out=$1
  local protos services
  protos=$(cd "$here" && ls fraudmesh/v1/*.proto)
  services=$(cd "$here" && grep -l '^service ' fraudmesh/v1/*.proto)
  # shellcheck disable=SC2086
  (cd "$here" && "$py" -m grpc_tools.protoc -I. --python_out="$out" --mypy_out=quiet:"$out" $protos)
  # shellcheck disable=SC2086
  (cd "$here" && "$py" -m grpc_tools.protoc -I. --grpc_python_out="$out" --mypy_grpc_out=quiet:"$out" $services)
}

generated() { (cd "$1" && find fraudmesh -name '*_pb2*.py*' | sort); }

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  if [ "$(generated "$tmp")" != "$(generated "$here")" ]; then
    echo "generated file set differs from protos/ (run 'make proto'):" >&2
    diff <(generated "$here") <(generated "$tmp") >&2 || true
    exit 1
  fi
  stale=0
  for f in $(generated "$tmp"); do
    cmp -s "$tmp/$f" "$here/$f" || { echo "stale: protos/$f (run 'make proto')" >&2; stale=1; }
  done
  [ "$stale" = 0 ] && echo "generated code in protos/ is up to date"
  exit "$stale"
fi

find "$here/fraudmesh" -name '*_pb2*.py*' -delete
generate "$here"
echo "regenerated $(generated "$here" | wc -l) files in protos/fraudmesh/v1"
