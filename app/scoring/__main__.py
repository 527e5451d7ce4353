"""``python -m app.scoring``: generate reference drawings, train, package the fallback model.

Exit codes: 0 done, 1 failed, 2 usage or configuration error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.scoring.artefact import ArtefactError, bundle_from_bytes, bundle_to_bytes
from app.scoring.model import (
    DEFAULT_PERCENTILE,
    MAX_AGE,
    MIN_AGE,
    ModelBundle,
    check_percentile,
)
from app.scoring.store import (
    MODEL_KEY,
    PACKAGED_MODEL_PATH,
    load_latest,
    load_packaged_bundle,
    upload_bundle,
)
from app.scoring.synthetic import generate_even_reference_set, generate_reference_set
from app.scoring.training import (
    GroupReport,
    TrainingError,
    train_bundle_with_report,
)
from opsd.logging import configure_logging

PACKAGE_SEED = 3  # chosen among six seeds: benchmarks/RESULTS.md, issue 13, 2026-12-04
PACKAGE_PER_GROUP = 120  # 40 per age, 24 for each of the five ages 14-18
PACKAGE_IMAGE_SIZE = 512


class UsageError(Exception):
    """Bad arguments or configuration: exit 2."""


def models_bucket_and_client() -> tuple[str, Any]:
    """The models bucket and an S3 client, from the same settings and factory as every process."""
    from opsd.aws import make_client
    from opsd.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise UsageError(f"configuration error: {exc}") from None
    return settings.s3_bucket_models, make_client(settings, "s3")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_bytes(data)
    partial.replace(path)


def _generate(args: argparse.Namespace) -> int:
    if args.per_age < 1:
        raise UsageError(f"--per-age must be at least 1, not {args.per_age}")
    if args.size < 64:
        raise UsageError(f"--size must be at least 64 pixels, not {args.size}")
    manifest = generate_reference_set(args.out, args.per_age, args.seed, size=args.size)
    count = args.per_age * (MAX_AGE - MIN_AGE + 1)
    print(f"wrote {count} drawings and {manifest}")
    return 0


def _base_model(args: argparse.Namespace, target: tuple[str, Any] | None) -> ModelBundle:
    """The model whose groups are kept when the manifest has too few drawings for them:
    --base FILE, else the deployed model (with --upload), else the packaged one."""
    if args.base is not None:
        try:
            return bundle_from_bytes(args.base.read_bytes())
        except OSError as exc:
            raise UsageError(f"--base {args.base}: {exc.strerror or exc}") from None
    if target is not None:
        bucket, s3 = target
        return load_latest(s3, bucket, key=args.key).bundle
    return load_packaged_bundle()


def _print_report(reports: list[GroupReport]) -> None:
    print(f"{'ages':<7} {'drawings':>8} {'components':>10} {'threshold':>10} "
          f"{'false flags (cv)':>16}  model")  # fmt: skip
    for r in reports:
        rate = "–" if r.false_flag_rate is None else f"{100 * r.false_flag_rate:.1f} %"
        print(f"{r.group:<7} {r.drawings:>8} {r.components:>10} {r.threshold:>10.3f} "
              f"{rate:>16}  {r.source}")  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    if args.out is None and not args.upload:
        raise UsageError("give --out FILE, --upload, or both")
    try:
        check_percentile(args.percentile)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = models_bucket_and_client() if args.upload else None
    bundle, reports = train_bundle_with_report(
        args.images,
        args.manifest,
        percentile=args.percentile,
        base=lambda: _base_model(args, target),
    )
    _print_report(reports)
    if args.out is not None:
        _write_atomically(args.out, bundle_to_bytes(bundle))
        print(f"wrote model {bundle.model_version} to {args.out}")
    if target is not None:
        bucket, s3 = target
        version_id = upload_bundle(s3, bucket, bundle, key=args.key)
        print(
            f"uploaded model {bundle.model_version} to s3://{bucket}/{args.key} "
            f"(version {version_id})"
        )
    return 0


def _package(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="reference-drawings-") as folder:
        manifest = generate_even_reference_set(
            Path(folder), PACKAGE_PER_GROUP, PACKAGE_SEED, size=PACKAGE_IMAGE_SIZE
        )
        bundle, reports = train_bundle_with_report(
            Path(folder), manifest, version_prefix="packaged"
        )
    _print_report(reports)
    data = bundle_to_bytes(bundle)
    _write_atomically(args.out, data)
    print(f"wrote packaged model {bundle.model_version} ({len(data)} bytes) to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.scoring",
        description="Anomaly models for children's drawings: reference drawings, training, "
        "the packaged fallback model.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate", help="write synthetic normal drawings for every age plus manifest.csv"
    )
    generate.add_argument("--out", type=Path, required=True, help="folder to write into")
    generate.add_argument("--per-age", type=int, default=20, help="drawings per age (20)")
    generate.add_argument("--seed", type=int, default=0, help="random seed (0)")
    generate.add_argument("--size", type=int, default=512, help="image side in pixels (512)")
    generate.set_defaults(handler=_generate)

    train = commands.add_parser(
        "train", help="train one model per age group from a folder of drawings and a manifest"
    )
    train.add_argument("--images", type=Path, required=True, help="folder of drawings")
    train.add_argument(
        "--manifest",
        type=Path,
        required=True,
        help="CSV with columns file,age[,subject][,style] (or JSON lines, .jsonl); with a style "
        "for every drawing, thresholds are calibrated on each style left out in turn",
    )
    train.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help=f"default threshold percentile of the reference scores ({DEFAULT_PERCENTILE:g})",
    )
    train.add_argument("--out", type=Path, help="write the model artefact (.npz) here")
    train.add_argument(
        "--upload",
        action="store_true",
        help="upload as a new version to the bucket named by S3_BUCKET_MODELS",
    )
    train.add_argument("--key", default=MODEL_KEY, help=f"object key ({MODEL_KEY})")
    train.add_argument(
        "--base",
        type=Path,
        help="model artefact whose age groups are kept where the manifest has fewer than 20 "
        "drawings (default: the deployed model with --upload, else the packaged one)",
    )
    train.set_defaults(handler=_train)

    package = commands.add_parser(
        "package", help="regenerate the packaged model from a fixed-seed synthetic reference set"
    )
    package.add_argument(
        "--out", type=Path, default=PACKAGED_MODEL_PATH, help="where to write it (in the app)"
    )
    package.set_defaults(handler=_package)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage line on bad arguments
    configure_logging(to_stderr=True)  # stdout carries the results
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (TrainingError, ArtefactError, ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
