"""How quantities read for people, the same on pages and in command output."""

from __future__ import annotations


def human_size(count: float) -> str:
    """1536 -> '1.5 KB' (binary multiples)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
