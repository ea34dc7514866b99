"""The presence proofs section: which calls the proof rules fired on, by actor kind, and how the calls
they must spare (legitimate roamers) and the ones they target (impersonators and international
spoofers presenting on-net or off-net numbers) were decided."""

from __future__ import annotations

from fraudmesh.v1 import dataset_pb2
from loadtest.report._analysis import _Analysis, ratio
from loadtest.report._codes import BoolArray, kind_name
from loadtest.report._format import _fmt_pct, _table
from loadtest.report._reading import PROOF_CODES, _Calls, _Outcomes

IMPERSONATOR = int(dataset_pb2.ACTOR_KIND_AI_IMPERSONATOR)
INTL_SPOOFER = int(dataset_pb2.ACTOR_KIND_INTL_DOMESTIC_SPOOFER)


def _count(mask: BoolArray, of: BoolArray) -> str:
    """``mask``'s calls as a count and a share of ``of``'s."""
    n, total = int(mask.sum()), int(of.sum())
    return f"{n:,} ({_fmt_pct(ratio(n, total))})" if n else "0"


def _presence_section(calls: _Calls, outcomes: _Outcomes, analysis: _Analysis) -> list[str]:
    """Calls each proof rule fired on per actor kind, and the roamer and impersonator figures."""
    a = analysis
    proofs = outcomes.proofs
    fired = [(proofs & (1 << bit)) > 0 for bit in range(len(PROOF_CODES))]
    proven = proofs > 0
    lines = [
        "## Presence proofs",
        "",
        "The home network's presence reports (subscribers.presence.v1) prove a call presenting one of "
        "the tenant's own numbers from off-net, or a reported domestic number from abroad, false: the "
        "subscriber is attached at home "
        f"(`{PROOF_CODES[0]}`) or in another on-net call (`{PROOF_CODES[1]}`); `{PROOF_CODES[2]}` adds "
        "that the callee knows the number. Unknown, roaming and switched-off subscribers prove nothing. "
        "Per actor kind, decided calls each code fired on (share of the kind's decided calls), and how "
        "many of the calls with any of them were blocked.",
        "",
    ]
    rows = []
    for kind in [*a.kinds, -1]:
        mask = a.decided & (calls.kind == kind if kind >= 0 else True)
        if kind >= 0 and not mask.any():
            continue
        group = "unwanted" if kind in a.unwanted_kinds else "legitimate"
        rows.append(
            [
                kind_name(kind) if kind >= 0 else "**all**",
                group if kind >= 0 else "",
                f"{int(mask.sum()):,}",
                *(_count(mask & hit, mask) for hit in fired),
                f"{int((mask & proven & a.blocked).sum()):,} of {int((mask & proven).sum()):,}",
            ]
        )
    lines += _table(["actor kind", "group", "decided", *PROOF_CODES, "blocked / with a proof"], rows)
    legit_proven = int((a.decided & proven & ~calls.unwanted).sum())
    if legit_proven:
        lines += [
            f"> **{legit_proven:,} legitimate calls carried a proof code**: a proof must never fire on "
            "a legitimate call (a roamer, a ported-out number).",
            "",
        ]
    legit = ~calls.unwanted
    groups = (
        ("legitimate roamers, on-net number", legit & calls.roaming & calls.presented_on_net),
        ("legitimate roamers, off-net number", legit & calls.roaming & ~calls.presented_on_net),
        ("AI impersonators, on-net number", (calls.kind == IMPERSONATOR) & calls.presented_on_net),
        ("AI impersonators, off-net number", (calls.kind == IMPERSONATOR) & ~calls.presented_on_net),
        ("intl-domestic spoofers, on-net number", (calls.kind == INTL_SPOOFER) & calls.presented_on_net),
        ("intl-domestic spoofers, off-net number", (calls.kind == INTL_SPOOFER) & ~calls.presented_on_net),
    )
    rows = []
    for label, mask in groups:
        decided = mask & a.decided
        rows.append(
            [
                label,
                f"{int(mask.sum()):,}",
                f"{int(decided.sum()):,}",
                _fmt_pct(ratio(int((decided & a.flagged).sum()), int(decided.sum()))),
                _fmt_pct(ratio(int((decided & a.blocked).sum()), int(decided.sum()))),
                _fmt_pct(ratio(int((decided & proven).sum()), int(decided.sum()))),
                _fmt_pct(ratio(int((decided & outcomes.no_roaming).sum()), int(decided.sum()))),
                _fmt_pct(ratio(int((decided & outcomes.allow_labelled).sum()), int(decided.sum()))),
            ]
        )
    return [
        *lines,
        "Legitimate roamers are people calling home from abroad (ground truth `roaming`): over an "
        "international gateway presenting their own number, or home-routed on-net; their flagged and "
        "blocked rates are false positives. An *on-net number* is one of the tenant's own subscribers' "
        "(ground truth `presented_on_net`), the only kind presence can prove false. A domestic mobile "
        "number over the international gateway that presence does not show roaming gets "
        "`NO_ROAMING_INDICATION` (labelled by default, blocked where a tenant opts in): other carriers' "
        "roamers get it too until an inter-carrier roaming feed reports them. *ALLOW, labelled* is an "
        "allowed call shown as an international call (tenants with `international_label`): not a flag.",
        "",
        *_table(
            [
                "scored calls of",
                "calls",
                "decided",
                "flagged",
                "blocked",
                "a proof fired",
                "no roaming indication",
                "ALLOW, labelled",
            ],
            rows,
        ),
    ]
