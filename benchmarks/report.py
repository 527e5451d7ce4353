"""Turning benchmark reports into a readable text table and a markdown section."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks.harness import BenchReport, Table
from opsd import formatting

RESULTS_HEADER = """# Benchmark results

Appended by `python -m benchmarks` (full runs; `--tiny` runs are not recorded). Every
section names its machine and versions. The local S3 endpoint is moto's server on the same
cores as the contenders: compare contenders within one section, not across sections
(see benchmarks/README.md, and the notes of each run).
"""


def machine_lines() -> list[str]:
    return [
        f"date (UTC): {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')}",
        f"machine: {os.cpu_count()} cores ({_cpu_model()}), {_memory_gib():.1f} GiB memory, "
        f"{platform.system()} {platform.release()}",
        "versions: Python {} · SQLite {} · moto {} · boto3 {} · awscli {} · {}".format(
            platform.python_version(),
            sqlite3.sqlite_version,
            _version("moto"),
            _version("boto3"),
            _version("awscli"),
            _litestream_version(),
        ),
        f"load average at start: {load_average()} "
        "(the cores are shared with other work; figures are noisy accordingly)",
    ]


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def text_table(table: Table) -> str:
    rows = [table.columns, *([str(cell) for cell in row] for row in table.rows)]
    return "\n".join([table.title, *formatting.text_table(rows, rule=True)])


def markdown_table(table: Table) -> str:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_text(reports: list[BenchReport], machine: list[str]) -> str:
    parts = [*machine, ""]
    for report in reports:
        parts.append(f"== {report.name} ==")
        for table in report.tables:
            if table.rows:
                parts += [text_table(table), ""]
        for check in report.checks:
            parts.append(f"[{'met' if check.met else 'MISSED'}] {check.target}: {check.measured}")
        parts += [f"note: {note}" for note in report.notes]
        parts.append("")
    return "\n".join(parts)


def render_markdown(reports: list[BenchReport], machine: list[str], command: str) -> str:
    parts = [f"## Run of {machine[0].split(': ', 1)[1]} UTC", "", f"`{command}`", ""]
    parts += [f"- {line}" for line in machine[1:]]
    for report in reports:
        parts += ["", f"### {report.name}", ""]
        for table in report.tables:
            if table.rows:
                parts += [markdown_table(table), ""]
        if report.checks:
            parts += ["Targets:", ""]
            parts += [
                f"- {'met' if check.met else '**missed**'}: {check.target} — {check.measured}"
                for check in report.checks
            ]
            parts.append("")
        parts += [f"- {note}" for note in report.notes]
    return "\n".join(parts).rstrip() + "\n"


def append_results(path: Path, section: str) -> None:
    existing = path.read_text() if path.exists() else RESULTS_HEADER
    path.write_text(existing.rstrip() + "\n\n" + section)


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _litestream_version() -> str:
    from benchmarks.contenders import find_tool

    tool = find_tool("litestream")
    if tool is None:
        return "Litestream not installed"
    try:
        done = subprocess.run([tool, "version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Litestream (version unknown: {exc})"
    return f"Litestream {done.stdout.strip()}"
