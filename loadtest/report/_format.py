"""How the report writes numbers, table cells, markdown tables and links to its plots."""

from __future__ import annotations

from collections.abc import Sequence


def _fmt_int(value: int | float) -> str:
    return f"{int(value):,}"


def _fmt_pct(value: float | None) -> str:
    if value is None:
        return "—"
    percent = 100.0 * value
    if 0 < percent < 0.01:
        return f"{percent:.2g}%"
    return f"{percent:.2f}%"


def _fmt_num(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def _fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.3f} ms"


def _fmt_s(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    if value >= 3600:
        return f"{value:,.0f} s ({value / 3600:.1f} h)"
    return f"{value:,.1f} s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return [*lines, ""]


def _image(name: str, title: str, written: list[str], skipped: dict[str, str]) -> list[str]:
    if name in written:
        return [f"![{title}]({name})", ""]
    return [f"_No {title.lower()} plot: {skipped.get(name, 'no data')}._", ""]
