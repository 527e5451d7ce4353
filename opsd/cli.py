"""`opsd run` (the whole system, locally or on a single host) and `opsd status`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import structlog

from opsd.aws import AwsClients, describe_aws_error
from opsd.clock import utcnow
from opsd.daemon import Daemon, daemon_info, status_rows
from opsd.formatting import text_table
from opsd.local_aws import (
    EmbeddedAws,
    LocalAwsError,
    point_environment_at,
    record_running_endpoint,
)
from opsd.logging import configure_logging
from opsd.results import EXIT_USAGE, TaskError
from opsd.schedule import OneLineParser, start_runs
from opsd.settings import ConfigError, Settings, load_settings
from tasks.registry import TASKS

log = structlog.get_logger()


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="opsd",
        description="Operations daemon of the Children's Drawing Anomaly Detection System.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=OneLineParser
    )
    run = commands.add_parser(
        "run",
        help="start the system: embedded AWS (local mode), the app and every schedule",
        description="Start everything: in local mode (ENVIRONMENT=local, the default) an "
        "embedded AWS endpoint on loopback with the declared resources; the app; the daemon "
        "running every task on its schedule, with a first run of each at start. Ctrl-C stops "
        "all of it.",
    )
    run.add_argument("--app-port", type=int, help="port of the app (APP_PORT, 8000)")
    run.add_argument(
        "--aws-port", type=int, help="port of the embedded AWS endpoint (LOCAL_AWS_PORT, 4566)"
    )
    run.add_argument("--no-app", action="store_true", help="run the daemon without the app")
    run.add_argument(
        "--no-initial-runs", action="store_true", help="do not run the tasks once at start"
    )
    status = commands.add_parser("status", help="per task: last run, its status, next run")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run" and args.app_port is None:
        raw = os.environ.get("APP_PORT") or "8000"
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            print(f"configuration error: APP_PORT: {raw!r} is not a port", file=sys.stderr)
            return EXIT_USAGE
        args.app_port = int(raw)
    try:
        settings = load_settings()
        if args.command == "status":
            return show_status(settings, args.json)
        configure_logging(settings.log_level, settings.log_format, settings.secret_values())
        return run_system(settings, args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def show_status(settings: Settings, as_json: bool) -> int:
    rows = status_rows(settings, TASKS)
    daemon = daemon_info(settings)
    if as_json:
        print(json.dumps({"daemon": daemon, "tasks": rows}, indent=2))
        return 0
    if daemon is None:
        print("daemon: never started with this OPS_STATE_PATH")
    else:
        state = "running" if daemon["alive"] else "not running"
        print(
            f"daemon: {state} (pid {daemon['pid']} on {daemon['host']}, "
            f"started {daemon['started_at'][:19]}Z)"
        )
    columns = ("task", "schedule", "last_run", "status", "duration_s", "next_run", "message")
    cut = {"last_run": 19, "next_run": 19}
    cells = [["-" if r[c] is None else str(r[c])[: cut.get(c)] for c in columns] for r in rows]
    print("\n".join(text_table([[c.upper() for c in columns], *cells])))
    return 0


def run_system(settings: Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    embedded: EmbeddedAws | None = None
    app: subprocess.Popen[bytes] | None = None
    daemon: Daemon | None = None
    try:
        if settings.is_local:
            embedded, settings = start_local_aws(settings, args.aws_port)
        settings.database_path.parent.mkdir(parents=True, exist_ok=True)
        clients = AwsClients(settings)
        daemon = Daemon(settings, TASKS, clients)
        if not args.no_app:
            app = start_app(args.app_port)
        initial = [] if args.no_initial_runs else initial_runs(settings, clients)
        daemon.start(initial_runs=initial)
        print_banner(settings, embedded, None if args.no_app else args.app_port)
        while not stop.is_set():
            if app is not None and app.poll() is not None:
                log.error("app exited", code=app.returncode)
                return 1
            stop.wait(1.0)
        log.info("shutting down")
        return 0 if daemon.shutdown() else 1
    except (LocalAwsError, AppStartError) as exc:
        print(f"opsd run: {exc}", file=sys.stderr)
        return 1
    finally:
        if daemon is not None and not daemon.stop.is_set():
            daemon.shutdown()
        if app is not None and app.poll() is None:
            app.terminate()
            try:
                app.wait(15)
            except subprocess.TimeoutExpired:
                app.kill()
        if embedded is not None:
            embedded.stop()


def start_local_aws(settings: Settings, port: int | None) -> tuple[EmbeddedAws, Settings]:
    from opsd.local_resources import provision

    embedded = EmbeddedAws(
        port or settings.local_aws_port, folder=settings.ops_state_path.parent / "local-aws"
    )
    url = embedded.start()
    point_environment_at(url, embedded.cert_path)
    record_running_endpoint(settings, embedded)
    settings = settings.model_copy(update={"aws_endpoint_url": url})
    try:
        created = provision(settings, AwsClients(settings))
    except Exception as exc:
        embedded.stop()
        raise LocalAwsError(describe_aws_error("create the local resources", exc)) from exc
    os.environ["ALERT_TOPIC_ARN"] = created.topic_arn
    settings = settings.model_copy(update={"alert_topic_arn": created.topic_arn})
    log.info("local aws ready", endpoint=url)
    return embedded, settings


class AppStartError(Exception):
    pass


def start_app(port: int, timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
    """The app as its own process (`python -m app serve`), as in its container."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        preexec_fn=stop_with_parent if sys.platform == "linux" else None,
    )
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppStartError(f"the app exited at start (code {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process
        except OSError:  # urllib's URLError among them
            time.sleep(0.5)
    process.terminate()
    raise AppStartError(f"the app did not answer on {url} within {timeout_s:.0f}s")


def stop_with_parent() -> None:
    """In the app's process before it starts: SIGTERM when `opsd run` dies, even by SIGKILL
    (no daemon threads run yet when the app is started, so the fork is safe)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def initial_runs(settings: Settings, clients: AwsClients) -> list[str]:
    """The registry's runs at start, in order; the backup only when the bucket has none."""
    names = start_runs(TASKS)
    if "backup" in names and backup_exists(settings, clients):
        names.remove("backup")
    return names


def backup_exists(settings: Settings, clients: AwsClients) -> bool:
    """Whether the store holds a backup we took (a planted or stray object is not one)."""
    from tasks.backups.store import BackupStore

    try:
        newest, _ = BackupStore.for_settings(settings, clients("s3")).newest(utcnow())
    except TaskError as exc:
        log.warning("cannot list backups", error=str(exc))
        return False
    return newest is not None


def print_banner(settings: Settings, embedded: EmbeddedAws | None, app_port: int | None) -> None:
    lines = [
        "",
        "Children's Drawing Anomaly Detection System is running "
        f"(ENVIRONMENT={settings.environment}).",
    ]
    if app_port is not None:
        base = f"http://127.0.0.1:{app_port}"
        lines += [f"  app:        {base}/demo   dashboard: {base}/dashboard   docs: {base}/docs"]
        if settings.is_local and not os.environ.get("ADMIN_PASSWORD"):
            lines += [
                "  admin:      the password generated for this run is shown above "
                "(set ADMIN_PASSWORD to choose one)"
            ]
    if embedded is not None:
        lines += [
            f"  AWS (local): {embedded.url}  — for the AWS CLI:",
            "      export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "
            f"AWS_DEFAULT_REGION={settings.aws_default_region} "
            f"AWS_CA_BUNDLE={embedded.cert_path.resolve()}",
            f"      .venv/bin/aws --endpoint-url {embedded.url} s3 ls "
            f"s3://{settings.s3_bucket_backups}/",
        ]
    lines += [
        f"  database:   {Path(settings.database_path).resolve()}",
        f"  ops state:  {Path(settings.ops_state_path).resolve()}",
        "  status:     .venv/bin/opsd status",
        "Press Ctrl-C to stop everything.",
        "",
    ]
    print("\n".join(lines), flush=True)
