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
    min_widths: Sequence[int] = (),
    right: Collection[int] = (),
    rule: bool = False,
) -> list[str]:
    """`rows` in columns two spaces apart, each as wide as its widest cell or its `min_widths`,
    those numbered in `right` right-aligned, dashes under the first if `rule`; no line ends
    in spaces."""
    columns = enumerate(zip(*rows, strict=True))
    widths = [max([*map(len, cells), *min_widths[i : i + 1]]) for i, cells in columns]
    pads = [str.rjust if i in right else str.ljust for i in range(len(widths))]
    lines = [
        "  ".join(pad(c, w) for pad, c, w in zip(pads, row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return [*lines[:1], "  ".join("-" * w for w in widths), *lines[1:]] if rule and lines else lines
