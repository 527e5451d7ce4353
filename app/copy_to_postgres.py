"""Copy the app's SQLite database into an empty PostgreSQL one (the move to RDS, docs/CAPACITY.md).

`DATABASE_URL=postgresql+psycopg://... python -m app.copy_to_postgres /data/app.db`

Both databases must be at the same migration (run `python -m app migrate` with DATABASE_URL
first); the target's tables must be empty. Everything is copied in one PostgreSQL transaction
(all or nothing), then each id sequence is moved past the highest id copied.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from app.database import engine_for, make_engine
from app.tables import metadata
from opsd.settings import ConfigError, Settings, load_settings

BATCH_ROWS = 5_000


class CopyError(Exception):
    """The copy did not happen; the message says why in one line."""


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:  # no alembic_version table: never migrated
            return None


def copy_database(source: Engine, target: Engine) -> dict[str, int]:
    """Rows copied per table."""
    if target.dialect.name != "postgresql":
        raise CopyError("DATABASE_URL must name the PostgreSQL database to copy into")
    revisions = _revision(source), _revision(target)
    if revisions[0] is None or revisions[0] != revisions[1]:
        raise CopyError(
            f"schemas differ (SQLite at {revisions[0]}, PostgreSQL at {revisions[1]}): run "
            "`python -m app migrate` on both first"
        )
    copied: dict[str, int] = {}
    with source.connect() as reading, target.begin() as writing:
        for table in metadata.sorted_tables:
            if writing.execute(select(func.count()).select_from(table)).scalar_one():
                raise CopyError(f"PostgreSQL table {table.name} is not empty: nothing copied")
            rows = reading.execute(select(table)).mappings()
            copied[table.name] = 0
            while batch := rows.fetchmany(BATCH_ROWS):
                writing.execute(table.insert(), [dict(row) for row in batch])
                copied[table.name] += len(batch)
            id_column = table.c.get("id")
            if id_column is not None and id_column.primary_key:
                writing.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"
                    )
                )
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.copy_to_postgres", description=__doc__)
    parser.add_argument("sqlite_path", type=Path, help="the SQLite app database to copy")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(Settings)
        if not args.sqlite_path.is_file():
            raise CopyError(f"{args.sqlite_path}: no such database file")
        source = make_engine(args.sqlite_path, settings.sqlite_busy_timeout_ms)
        target = engine_for(settings)
        try:
            copied = copy_database(source, target)
        finally:
            source.dispose()
            target.dispose()
    except (ConfigError, CopyError) as exc:
        print(f"copy-to-postgres: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{name}: {count} rows" for name, count in copied.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
