"""``python -m charts.grafana [--check]``: write charts/dashboards/*.json, or fail if they are stale."""

from __future__ import annotations

import argparse
import sys

from charts.grafana.dashboards import OUT_DIR, build_all


def main(argv: list[str] | None = None) -> int:
    """Regenerate the dashboards, or with --check report stale or extra files and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the checked-in JSON differs")
    args = parser.parse_args(argv)
    built = build_all()
    existing = {p.name for p in OUT_DIR.glob("*.json")}
    if args.check:
        stale = sorted(
            n for n, text in built.items() if not (OUT_DIR / n).is_file() or (OUT_DIR / n).read_text() != text
        )
        extra = sorted(existing - built.keys())
        for name in stale:
            print(f"stale: charts/dashboards/{name}", file=sys.stderr)
        for name in extra:
            print(f"not generated (delete it): charts/dashboards/{name}", file=sys.stderr)
        if stale or extra:
            print("run `make dashboards` and commit the result", file=sys.stderr)
            return 1
        print(f"dashboards: {len(built)} up to date")
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in existing - built.keys():
        (OUT_DIR / name).unlink()
    for name, text in built.items():
        (OUT_DIR / name).write_text(text)
    print(f"dashboards: wrote {len(built)} to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
