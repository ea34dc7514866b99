"""Validate rendered chart output offline: Kubernetes API schemas plus fraudmesh's pod policy.

Every object is checked in strict mode (unknown fields rejected) against the API schemas that the
kubernetes-validate wheel bundles, for each ``--kube-version``; the prometheus-operator kinds get
a structural check. Every pod must also run non-root on a read-only root with all capabilities
dropped and seccomp RuntimeDefault, may take secrets only by reference, and may set each env name
and declare each port once (values merged from several places must not shadow one another).

    python deploy/helm/validate.py --kube-version 1.29.0 rendered.yaml ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

OPERATOR_KINDS = {"PrometheusRule", "PodMonitor"}
POD_OWNERS = {"Deployment", "Job"}
SCRATCH = "/tmp"  # noqa: S108 - a mount path checked in a manifest, not a file this script writes


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            yield document


def _operator_problems(obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "PrometheusRule":
        problems = []
        for group in spec.get("groups") or [{}]:
            if not group.get("name") or not group.get("rules"):
                problems.append("every rule group needs a name and rules")
            for rule in group.get("rules", []):
                if not rule.get("expr") or not (rule.get("alert") or rule.get("record")):
                    problems.append(f"rule {rule!r:.80} needs expr and alert or record")
        return problems
    if not spec.get("selector") or not spec.get("podMetricsEndpoints"):
        return ["a PodMonitor needs a selector and podMetricsEndpoints"]
    return []


def _pod_problems(obj: dict[str, Any]) -> list[str]:
    pod = obj["spec"]["template"]["spec"]
    problems = []
    pod_security = pod.get("securityContext", {})
    if pod_security.get("runAsNonRoot") is not True:
        problems.append("pod securityContext.runAsNonRoot must be true")
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod seccompProfile must be RuntimeDefault")
    for container in pod["containers"]:
        security = container.get("securityContext", {})
        name = container["name"]
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem must be true")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities must drop ALL")
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        if SCRATCH not in mounts:
            problems.append(f"{name}: /tmp must be a mounted emptyDir on a read-only root")
        if obj["kind"] == "Deployment" and "/var/cache/numba" not in mounts:
            problems.append(f"{name}: NUMBA_CACHE_DIR (/var/cache/numba) must be mounted")
        env_names = [env["name"] for env in container.get("env", [])]
        if len(env_names) != len(set(env_names)):
            twice = sorted({n for n in env_names if env_names.count(n) > 1})
            problems.append(f"{name}: env set twice (the later hides the earlier): {', '.join(twice)}")
        ports = container.get("ports", [])
        port_names = [port["name"] for port in ports if "name" in port]
        if len(port_names) != len(set(port_names)):
            problems.append(f"{name}: container port names repeat: {sorted(port_names)}")
        bound = [(port["containerPort"], port.get("protocol", "TCP")) for port in ports]
        if len(bound) != len(set(bound)):
            problems.append(f"{name}: a container port and protocol is declared twice: {sorted(bound)}")
        for env in container.get("env", []):
            secret_named = any(word in env["name"] for word in ("KEY", "PASSWORD", "TOKEN"))
            if secret_named and "value" in env and not env["name"].endswith("_FILE"):
                problems.append(f"{name}: {env['name']} carries a literal secret; reference a Secret")
        if obj["kind"] == "Deployment" and not (
            container.get("readinessProbe") and container.get("livenessProbe")
        ):
            problems.append(f"{name}: readiness and liveness probes are required")
    return problems


def validate(path: Path, versions: list[str]) -> list[str]:
    """Every problem found in one rendered file, as 'file: Kind/name: problem' lines."""
    problems: list[str] = []
    for obj in _documents(path):
        where = f"{path}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        found: list[str] = []
        if obj.get("kind") in OPERATOR_KINDS:
            found += _operator_problems(obj)
        else:
            for version in versions:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    path_in = ".".join(str(p) for p in exc.path)
                    found.append(f"Kubernetes {version}: {path_in}: {exc.message}")
                except (
                    kubernetes_validate.SchemaNotFoundError,
                    kubernetes_validate.InvalidSchemaError,
                ) as exc:
                    found.append(f"Kubernetes {version}: no schema ({exc.message})")
        if obj.get("kind") in POD_OWNERS:
            found += _pod_problems(obj)
        problems += [f"{where}: {problem}" for problem in found]
    return problems


def main(argv: list[str] | None = None) -> int:
    """CLI: validate rendered manifests; exit 1 listing every problem."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kube-version", action="append", required=True, help="e.g. 1.29.0 (repeatable)")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    problems: list[str] = []
    count = 0
    for path in args.files:
        count += sum(1 for _ in _documents(path))
        problems += validate(path, args.kube_version)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(
        f"validated {count} objects in {len(args.files)} files"
        f" against Kubernetes {', '.join(args.kube_version)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
