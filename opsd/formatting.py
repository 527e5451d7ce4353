"""How quantities and tables read for people, the same on pages and in command output."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def human_size(count: float) -> str:
    """1536 -> '1.5 KB' (binary multiples)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def text_table(
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = (),
    *,
    min_widths: Sequence[int] = (),
    right: Collection[int] = (),
    rule: bool = False,
) -> list[str]:
    """The lines of `header` (if any), a rule of dashes under it (if `rule`) and `rows`, in
    columns two spaces apart, each as wide as its widest cell and at least its `min_widths`;
    columns numbered in `right` are right-aligned. No line ends in spaces."""
    table = [list(header), *map(list, rows)] if header else [list(row) for row in rows]
    if not table:
        return []
    widths = [
        max([*(len(row[index]) for row in table), *min_widths[index : index + 1]])
        for index in range(len(table[0]))
    ]
    lines = [
        "  ".join(
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    ]
    if header and rule:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return lines
