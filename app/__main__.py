"""`python -m app serve [--host H] [--port P]` and `python -m app migrate`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.migrate import MigrationError, migrate
from app.settings import AppSettings
from opsd.database import DatabaseError
from opsd.logging import configure_logging
from opsd.settings import ConfigError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply migrations, then serve (one process)")
    serve.add_argument("--host", help="address to listen on (default: APP_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: APP_PORT)")
    commands.add_parser("migrate", help="apply pending migrations, after a pre-migration backup")
    return parser


def _migrate(settings: AppSettings) -> int:
    try:
        outcome = migrate(settings)
    except (MigrationError, DatabaseError) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print(f"migrate: {outcome.describe()}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(AppSettings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())
    status = _migrate(settings)
    if args.command == "migrate" or status != 0:
        return status

    import uvicorn

    from app.main import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.app_host,
        port=args.port or settings.app_port,
        log_level="warning",
        # The app reads X-Forwarded-For itself, trusting TRUSTED_PROXY_HOPS entries.
        proxy_headers=False,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
