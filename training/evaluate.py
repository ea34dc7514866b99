"""``python -m training evaluate``: a trained model on feature rows it never trained on, seen two ways.

First at the model's own operating points (model.json: the thresholds its validation slice chose, and
its ``block_threshold``); then as the decision service turns its score into an action under a policy:
the thresholds of the call's ingress kind, CHALLENGE or BLOCK on never-sole reasons alone lowered to
LABEL, and the evidence cap (a score alone goes no further than ``score_max_action`` unless it reaches
the block threshold). By default only the rows of the dataset's own window (``holdout_from_ms`` in the
features manifest, after the lead-in) are scored, so every number has warm history.

The features carry no origination reason codes and no list hits, so BLOCK from proof, forced reason
actions, allow lists and degraded reads are not modelled: blocks here are score-only blocks. Every
rate is a count with its 95 % Wilson interval (``training.evaluation``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score  # type: ignore[import-untyped]

from fraudmesh.v1 import common_pb2, dataset_pb2, verdicts_pb2
from services.common.features import INDEX
from services.common.reasons import Reason
from services.decision.policy import CHALLENGE, LABEL, SEVERITY, Policy, parse_policy
from services.scoring.model import Scorer
from training.evaluation import BLOCK_LEGIT_RATE, calibration_error, kind_name, resolution_warnings, share
from training.train import FeatureSet, load_features

DEFAULT_POLICY: Final[Path] = Path("deploy/policy/default.yaml")
REPORTS: Final[Path] = Path("reports/evaluation")
REPORT_MD: Final[str] = "evaluation.md"
REPORT_JSON: Final[str] = "evaluation.json"
ACTIONS: Final[tuple[str, ...]] = ("ALLOW", "LABEL", "CHALLENGE", "BLOCK")
ACTION_OF: Final[dict[int, int]] = {severity: action for action, severity in SEVERITY.items()}
NOT_MODELLED: Final[tuple[str, ...]] = (
    "BLOCK from proof (deny and DNO lists, a signature failure together with a caller-ID finding) is "
    "not modelled: the features carry no reason codes, so every BLOCK here is a score-only BLOCK",
    "origination reason codes that force an action (`reason_actions`, e.g. SHAKEN_REPLAY → LABEL), "
    "allow lists, PSAP callbacks, degraded reads (`degraded_max_action`) and shadow mode are not "
    "modelled either",
    "calls to emergency numbers (actor kind EMERGENCY; the features carry no callee) are ALLOW, as the "
    "decision answers them before scoring; the model's operating points count them as scored",
    "`proof candidates`: calls whose PASSporT failed verification and that have a caller-ID finding, "
    "where a proof BLOCK could apply (which failure and which finding the features do not say)",
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Severity = npt.NDArray[np.int8]


class EvaluationError(Exception):
    """The rows cannot be evaluated (none in the window, or no window to cut at)."""


def window(features: FeatureSet, from_manifest: bool | None = None) -> tuple[I64, int | None]:
    """Indices of the rows to score and where they start: from the manifest's ``holdout_from_ms`` on
    (the default when it has one), else every row."""
    start = features.manifest.get("holdout_from_ms")
    use = start is not None if from_manifest is None else from_manifest
    if not use:
        return np.arange(len(features.y), dtype=np.int64), None
    if start is None:
        raise EvaluationError("the features manifest has no holdout_from_ms to cut the window at")
    rows = np.flatnonzero(features.t_ms >= int(start)).astype(np.int64)
    if len(rows) == 0:
        raise EvaluationError(f"no row at or after holdout_from_ms {start}")
    return rows, int(start)


def policy_actions(policy: Policy, scorer: Scorer, x: F32, probability: F64, *, emergency: Bool) -> Severity:
    """The action each score earns as the decision applies ``policy`` to it (0 ALLOW … 3 BLOCK).

    Thresholds of the call's ingress kind (the ``ingress_kind`` feature); CHALLENGE or BLOCK whose model
    reasons are all never-sole becomes LABEL; without proof the evidence cap applies; calls to
    emergency numbers are ALLOW.
    """
    ingress = x[:, INDEX["ingress_kind"]]
    codes = np.where(np.isnan(ingress), 0, ingress).astype(np.int64)
    severity = np.zeros(len(probability), dtype=np.int8)
    for code in np.unique(codes):
        thresholds = policy.thresholds_for(int(code))
        rows = codes == code
        p = probability[rows]
        severity[rows] = (
            (p >= thresholds.label).astype(np.int8)
            + (p >= thresholds.challenge).astype(np.int8)
            + (p >= thresholds.block).astype(np.int8)
        )
    metadata = scorer.artifact.metadata
    for i in np.flatnonzero(severity >= SEVERITY[CHALLENGE]):
        action = ACTION_OF[int(severity[i])]
        reasons = scorer.score(x[i]).top_reasons or [Reason.MODEL_SCORE]
        if set(reasons) <= policy.never_sole_reasons:
            action = LABEL
        if not policy.evidence.is_proof(frozenset(reasons)):
            action = policy.evidence.score_alone(action, float(probability[i]), metadata)
        severity[i] = SEVERITY[action]
    severity[emergency] = 0
    return severity


def relation(model: Mapping[str, Any], features: Mapping[str, Any], t_ms: I64) -> tuple[str, list[str]]:
    """How the evaluated rows relate to the model's training data, and warnings if it saw some."""
    trained = model.get("training_data", {})
    slices = model.get("metrics", {}).get("slices", {})
    holdout_from = trained.get("holdout_from_ms", slices.get("holdout", {}).get("from_ms"))
    if trained.get("files") and trained.get("files") == features.get("files"):
        seen = int((t_ms < int(holdout_from)).sum()) if holdout_from is not None else len(t_ms)
        if seen:
            return "the model's own training data", [
                f"{seen:,} of {len(t_ms):,} rows precede the model's holdout: it trained or chose "
                "thresholds on them, so these figures flatter it"
            ]
        return "the model's own holdout window (never fitted or tuned on; model.json measured it)", []
    scenario, seed = features.get("scenario", "?"), features.get("seed", "?")
    if (scenario, seed) == (trained.get("scenario"), trained.get("seed")):
        return (
            f"the scenario it was trained on ({scenario}, seed {seed}) generated again: other files than "
            "it trained on, but not independent traffic",
            [],
        )
    return (
        f"another dataset (scenario {scenario}, seed {seed}; the model learned "
        f"{trained.get('scenario', '?')}, seed {trained.get('seed', '?')})",
        [],
    )


def evaluate(
    scorer: Scorer,
    features: FeatureSet,
    policy: Policy,
    *,
    from_manifest: bool | None = None,
    sources: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Score the window's rows and measure both views; the JSON-ready report (``evaluation.json``)."""
    rows, start = window(features, from_manifest)
    x, y, kinds, t_ms = features.X[rows], features.y[rows], features.kinds[rows], features.t_ms[rows]
    scored = scorer.score_batch(x)
    raw, probability = scored.raw, scored.probability
    meta = scorer.artifact.metadata
    points = meta["metrics"]["operating_points"]
    flagged_at = [raw > float(p["raw_threshold"]) for p in points]
    block_at = meta.get("block_threshold")
    blocked = probability >= float(block_at) if block_at is not None else None
    emergency = kinds == dataset_pb2.ACTOR_KIND_EMERGENCY
    severity = policy_actions(policy, scorer, x, probability, emergency=emergency)
    candidates = (x[:, INDEX["shaken_status"]] == verdicts_pb2.SHAKEN_STATUS_FAILED) & (
        x[:, INDEX["cli_findings"]] >= 1
    )
    about, warnings = relation(meta, features.manifest, t_ms)
    both = 0 < int(y.sum()) < len(y)
    model_points: list[dict[str, Any]] = []
    for point, flagged in zip(points, flagged_at, strict=True):
        legit = share(flagged[~y])
        target = float(point["target_fp_rate"])
        unresolved = resolution_warnings(target, legit, f"legit flagged at {target:g}")
        warnings += unresolved
        model_points.append(
            {
                "target_fp_rate": target,
                "raw_threshold": float(point["raw_threshold"]),
                "probability_threshold": float(point["probability_threshold"]),
                "legit_flagged": legit.to_json(),
                "recall": share(flagged[y]).to_json(),
                "warnings": unresolved,
            }
        )
    policy_json = _policy_json(policy, (sources or {}).get("policy"), block_at)
    report: dict[str, Any] = {
        "model": {
            "version": scorer.version,
            "path": (sources or {}).get("model"),
            "block_threshold": block_at,
            "trained_on": {
                key: meta.get("training_data", {}).get(key)
                for key in ("scenario", "seed", "dataset", "rows", "holdout_from_ms")
            },
        },
        "features": {
            "path": (sources or {}).get("features"),
            "sha256": features.manifest.get("sha256"),
            "scenario": features.manifest.get("scenario"),
            "seed": features.manifest.get("seed"),
            "dataset": features.manifest.get("dataset"),
            "rows": len(features.y),
            "evaluated": len(rows),
            "window_from_ms": start,
            "from_ms": int(t_ms.min()),
            "to_ms": int(t_ms.max()),
            "relation": about,
        },
        "policy": policy_json,
        "ranking": {
            "unwanted": share(y).to_json(),
            "roc_auc": float(roc_auc_score(y, raw)) if both else math.nan,
            "pr_auc": float(average_precision_score(y, raw)) if both else math.nan,
            "mean_probability": float(probability.mean()),
            "calibration_error": calibration_error(probability, y),
        },
        "operating_points": model_points,
        "model_block": {
            "probability_threshold": block_at,
            "legit_blocked": share(blocked[~y]).to_json(),
            "recall": share(blocked[y]).to_json(),
        }
        if blocked is not None
        else None,
        "decision": {
            "legit": _actions(severity[~y]),
            "unwanted": _actions(severity[y]),
            "by_ingress": _by_ingress(x, y, severity),
        },
        "per_kind": _per_kind(kinds, y, raw, flagged_at, blocked, severity, candidates),
        "not_modelled": list(NOT_MODELLED),
        "warnings": warnings,
    }
    if policy_json["score_block_at"] is not None:
        legit_blocked = share(severity[~y] == SEVERITY[common_pb2.ACTION_BLOCK])
        warnings += resolution_warnings(BLOCK_LEGIT_RATE, legit_blocked, "decision legit BLOCK")
    return report


def run(
    model: Path, features: Path, policy: Path, out: Path | None, *, from_manifest: bool | None = None
) -> tuple[dict[str, Any], Path]:
    """Load the model, features and policy, evaluate, and write the report (to ``default_out`` unless
    ``out``); returns the report and the markdown's path."""
    scorer = Scorer.load(model)
    rows = load_features(features)
    rules = parse_policy(policy.read_bytes(), str(policy))
    sources = {"model": str(model), "features": str(features), "policy": str(policy)}
    report = evaluate(scorer, rows, rules, from_manifest=from_manifest, sources=sources)
    return report, write(report, out or default_out(report))


def _policy_json(policy: Policy, path: str | None, block_at: float | None) -> dict[str, Any]:
    """The thresholds and evidence rules the decision view applied."""
    ingress = {
        common_pb2.IngressKind.Name(common_pb2.IngressKind.ValueType(code)).removeprefix("INGRESS_KIND_"): t
        for code, t in policy.ingress_thresholds.items()
    }
    evidence = policy.evidence
    return {
        "path": path,
        "version": policy.version,
        "digest": policy.digest,
        "thresholds": {
            name: {"label": t.label, "challenge": t.challenge, "block": t.block}
            for name, t in {"default": policy.thresholds, **ingress}.items()
        },
        "never_sole_reasons": sorted(policy.never_sole_reasons),
        "score_max_action": ACTIONS[SEVERITY[evidence.score_max_action]],
        "score_block_at": evidence.score_block_at if evidence.score_block_at is not None else block_at,
        "score_block_at_source": "policy" if evidence.score_block_at is not None else "model",
    }


def _actions(severity: Severity) -> dict[str, Any]:
    """Shares flagged (LABEL or more), challenged (CHALLENGE) and blocked (BLOCK)."""
    return {
        "flagged": share(severity >= 1).to_json(),
        "challenged": share(severity == 2).to_json(),
        "blocked": share(severity == 3).to_json(),
    }


def _by_ingress(x: F32, y: Bool, severity: Severity) -> list[dict[str, Any]]:
    """The decision's legit and unwanted shares per ingress kind (their thresholds may differ)."""
    ingress = x[:, INDEX["ingress_kind"]]
    codes = np.where(np.isnan(ingress), 0, ingress).astype(np.int64)
    out = []
    for code in (int(c) for c in np.unique(codes)):
        rows = codes == code
        name = common_pb2.IngressKind.Name(common_pb2.IngressKind.ValueType(code))
        out.append(
            {
                "ingress": name.removeprefix("INGRESS_KIND_"),
                "calls": int(rows.sum()),
                "legit": _actions(severity[rows & ~y]),
                "unwanted": _actions(severity[rows & y]),
            }
        )
    return out


def _per_kind(
    kinds: npt.NDArray[np.int32],
    y: Bool,
    raw: F64,
    flagged_at: list[Bool],
    blocked: Bool | None,
    severity: Severity,
    candidates: Bool,
) -> list[dict[str, Any]]:
    """Per actor kind and label: flagged at each operating point, model-blocked, and the decision."""
    out = []
    legit = ~y
    for kind in (int(k) for k in np.unique(kinds)):
        for unwanted in (False, True):
            rows = (kinds == kind) & (y == unwanted)
            if not rows.any():
                continue
            vs_legit = rows | legit
            out.append(
                {
                    "kind": kind,
                    "name": kind_name(kind),
                    "label": "unwanted" if unwanted else "legit",
                    "calls": int(rows.sum()),
                    "model_flagged": [share(flagged[rows]).to_json() for flagged in flagged_at],
                    "model_blocked": share(blocked[rows]).to_json() if blocked is not None else None,
                    "decision": _actions(severity[rows]),
                    "proof_candidates": share(candidates[rows]).to_json(),
                    "roc_auc_vs_legit": float(roc_auc_score(y[vs_legit], raw[vs_legit]))
                    if unwanted and legit.any()
                    else None,
                }
            )
    return out


def default_out(report: Mapping[str, Any]) -> Path:
    """reports/evaluation/<model version>/<scenario>[-all-rows]/: one folder per model and dataset."""
    features = report["features"]
    name = str(features["scenario"] or Path(str(features["path"])).parent.name or "features")
    suffix = "" if features["window_from_ms"] is not None else "-all-rows"
    return REPORTS / str(report["model"]["version"]) / f"{name}{suffix}"


def write(report: Mapping[str, Any], out: Path) -> Path:
    """Write ``evaluation.json`` and ``evaluation.md`` into ``out``; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    path = out / REPORT_MD
    path.write_text(render(report))
    return path


def _pct(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{100 * value:.2f}%" if value >= 0.1 else f"{100 * value:.3g}%"


def rate(r: Mapping[str, Any] | None, *, counts: bool = True) -> str:
    """A share with its 95 % interval (and its count), e.g. ``0.012% [0.0051%, 0.028%] (5/40,000)``."""
    if not r or not r["total"]:
        return "n/a"
    text = f"{_pct(r['rate'])} [{_pct(r['low'])}, {_pct(r['high'])}]"
    return f"{text} ({r['count']:,}/{r['total']:,})" if counts else text


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _views(report: Mapping[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(view, legit flagged, legit blocked, recall) for each operating point, the block level and
    the decision."""
    views: list[tuple[str, Any, Any, Any]] = []
    for p in report["operating_points"]:
        view = f"model @ legit FP {p['target_fp_rate']:g} (p > {p['probability_threshold']:.4g})"
        views.append((view, p["legit_flagged"], None, p["recall"]))
    block = report["model_block"]
    if block is not None:
        view = f"model BLOCK (p ≥ {block['probability_threshold']:.6g})"
        views.append((view, None, block["legit_blocked"], block["recall"]))
    decision = report["decision"]
    view = f"decision, policy {report['policy']['version']}"
    views.append(
        (view, decision["legit"]["flagged"], decision["legit"]["blocked"], decision["unwanted"]["flagged"])
    )
    return views


def _title(report: Mapping[str, Any]) -> str:
    f, ranking = report["features"], report["ranking"]
    return (
        f"model {report['model']['version']} on {f['scenario'] or f['path']} (seed {f['seed']}): "
        f"{f['evaluated']:,} of {f['rows']:,} rows, {_utc(f['from_ms'])} to {_utc(f['to_ms'])} UTC, "
        f"{_pct(ranking['unwanted']['rate'])} unwanted; ROC AUC {ranking['roc_auc']:.4f}"
    )


def render(report: Mapping[str, Any]) -> str:
    """The markdown report (``evaluation.md``) from its JSON form."""
    f, policy, ranking = report["features"], report["policy"], report["ranking"]
    lines = [f"# Evaluation — model {report['model']['version']} on {f['scenario'] or f['path']}", ""]
    lines += [f"- **WARNING** {w}" for w in report["warnings"]] + ([""] if report["warnings"] else [])
    lines += [
        f"- rows: {f['evaluated']:,} of {f['rows']:,} in `{f['path']}` (sha256 `{str(f['sha256'])[:16]}`), "
        + (
            f"those of the scenario's own window (from {_utc(f['window_from_ms'])} UTC, after its lead-in)"
            if f["window_from_ms"] is not None
            else "every row"
        ),
        f"- relation to the model's training data: {f['relation']}",
        f"- ROC AUC {ranking['roc_auc']:.4f}, PR AUC {ranking['pr_auc']:.4f}; unwanted share "
        f"{rate(ranking['unwanted'])}; mean predicted probability {_pct(ranking['mean_probability'])}; "
        f"calibration error (ECE) {ranking['calibration_error']:.4f}",
        f"- policy `{policy['path']}` version {policy['version']} (digest {policy['digest']}): thresholds "
        + "; ".join(
            f"{name} {t['label']:g}/{t['challenge']:g}/{t['block']:g}"
            for name, t in policy["thresholds"].items()
        )
        + f" (label/challenge/block); a score alone goes no further than {policy['score_max_action']}"
        + (
            f" unless p ≥ {policy['score_block_at']:.6g} ({policy['score_block_at_source']})"
            if policy["score_block_at"] is not None
            else " (the model has no block threshold: never BLOCK on the score)"
        ),
        "",
        "## Overall",
        "",
        "| view | legit flagged | legit blocked | unwanted flagged (recall) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {v} | {rate(a)} | {rate(b)} | {rate(c)} |" for v, a, b, c in _views(report)]
    lines += [
        "",
        "Model points flag when the raw score is above the threshold chosen on the model's validation "
        "slice; the decision flags at LABEL or more.",
        "",
        "## Decision by ingress kind",
        "",
        "| ingress | calls | legit flagged | legit challenged | legit blocked | unwanted flagged | "
        "unwanted challenged | unwanted blocked |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["decision"]["by_ingress"]:
        cells = [rate(row[label][what]) for label in ("legit", "unwanted") for what in _ACTIONS_SHOWN]
        lines.append(f"| {row['ingress']} | {row['calls']:,} | " + " | ".join(cells) + " |")
    header = " | ".join(f"@{p['target_fp_rate']:g}" for p in report["operating_points"])
    lines += [
        "",
        "## Per actor kind",
        "",
        "Model: share flagged at each operating point and blocked at its block threshold.",
        "",
        f"| kind | label | calls | {header} | model BLOCK | ROC AUC vs legit |",
        "|---|---|---:|" + "---:|" * (len(report["operating_points"]) + 2),
    ]
    for row in report["per_kind"]:
        cells = [rate(r, counts=False) for r in row["model_flagged"]] + [rate(row["model_blocked"])]
        auc = row["roc_auc_vs_legit"]
        lines.append(
            f"| {row['name']} | {row['label']} | {row['calls']:,} | "
            + " | ".join(cells)
            + f" | {'' if auc is None else f'{auc:.4f}'} |"
        )
    lines += [
        "",
        "Decision: share flagged (LABEL or more), challenged (CHALLENGE) and blocked (BLOCK, score-only); "
        "proof candidates for comparison.",
        "",
        "| kind | label | calls | flagged | challenged | blocked | proof candidates |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["per_kind"]:
        cells = [rate(row["decision"][what]) for what in _ACTIONS_SHOWN] + [rate(row["proof_candidates"])]
        lines.append(f"| {row['name']} | {row['label']} | {row['calls']:,} | " + " | ".join(cells) + " |")
    lines += ["", "## Not modelled offline", ""] + [f"- {note}" for note in report["not_modelled"]]
    return "\n".join([*lines, ""])


_ACTIONS_SHOWN: Final[tuple[str, ...]] = ("flagged", "challenged", "blocked")


def table(report: Mapping[str, Any]) -> str:
    """A compact plain-text summary for the terminal."""
    lines = [_title(report), ""]
    views = _views(report)
    width = max(len(v[0]) for v in views)
    lines.append(f"{'':{width}}  {'legit flagged':34}  {'legit blocked':34}  recall")
    for view, legit, blocked, recall in views:
        lines.append(
            f"{view:{width}}  {rate(legit, counts=False):34}  {rate(blocked, counts=False):34}  "
            f"{rate(recall, counts=False)}"
        )
    strict = f"@{report['operating_points'][0]['target_fp_rate']:g}" if report["operating_points"] else "@-"
    lines += ["", f"{'kind':34} {'calls':>8}  {strict:10}  {'flagged':30}  {'challenged':10}  blocked"]
    for row in report["per_kind"]:
        d = row["decision"]
        first = row["model_flagged"][0] if row["model_flagged"] else None
        lines.append(
            f"{row['name'] + ' (' + row['label'] + ')':34} {row['calls']:>8,}  "
            f"{_pct(first['rate']) if first else 'n/a':10}  {rate(d['flagged'], counts=False):30}  "
            f"{_pct(d['challenged']['rate']):10}  {_pct(d['blocked']['rate'])}"
        )
    lines += [
        "",
        "blocks are score-only: BLOCK from proof (lists, signature + caller-ID findings) is not modelled",
    ]
    return "\n".join(lines)
