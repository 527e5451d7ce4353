"""One-class AUROC on scikit-learn's 8×8 handwritten digits, trained through the training
command (`python -m app.scoring train`).

Each digit class in turn is 'normal': the first part of its images (dark ink on white paper,
upscaled) is the training set, listed in a manifest for every age group; the rest of it and
the held-out images of every other class are scored at age 9. The AUROC says how well the
anomaly score ranks the other digits above unseen drawings of the normal one.

Side by side, on the same split, the baseline a user would otherwise reach for: a Ledoit–Wolf
Gaussian (scikit-learn) on the 64 raw pixels, which knows nothing of paper or drawings.
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from app.scoring import bundle_from_bytes, extract_features
from app.scoring.__main__ import main as scoring_command

TRAIN_FRACTION = 0.6
IMAGE_SIDE = 128
SCORING_AGE = 9
AGES_PER_GROUP = (3, 6, 9, 12, 16)  # one age in every age group


class DigitsUnavailable(RuntimeError):
    """scikit-learn (a dev dependency) is not installed."""


@dataclass(frozen=True)
class DigitsResult:
    auroc_by_class: dict[int, float]
    baseline_by_class: dict[int, float]  # Ledoit–Wolf Gaussian on the raw pixels

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.auroc_by_class.values())))

    @property
    def baseline_mean(self) -> float:
        return float(np.mean(list(self.baseline_by_class.values())))


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise DigitsUnavailable("scikit-learn is not installed (pip install -e '.[dev]')") from None
    data = sklearn_digits()
    return np.asarray(data.images, dtype=np.float64), np.asarray(data.target, dtype=np.int64)


def digit_image(pixels: np.ndarray) -> Image.Image:
    """Dark ink on white paper, upscaled smoothly like a scanned pen drawing."""
    paper = 255.0 - pixels / 16.0 * 255.0
    small = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    return small.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR).convert("RGB")


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """P(an anomaly scores above a normal one), ties counted half."""
    scores = np.concatenate([normal, anomalous])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(scores.size)
    ranks[order] = np.arange(1, scores.size + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    anomalous_ranks = ranks[normal.size :].sum()
    n_a, n_n = anomalous.size, normal.size
    return float((anomalous_ranks - n_a * (n_a + 1) / 2) / (n_a * n_n))


def _raw_pixel_baseline(
    images: np.ndarray, train: np.ndarray, normal: np.ndarray, others: np.ndarray
) -> float:
    from sklearn.covariance import LedoitWolf

    pixels = images.reshape(len(images), -1)
    gaussian = LedoitWolf().fit(pixels[train])
    return auroc(gaussian.mahalanobis(pixels[normal]), gaussian.mahalanobis(pixels[others]))


def _train(folder: Path, names: list[str], out: Path) -> None:
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "age"))
        for age in AGES_PER_GROUP:
            writer.writerows((name, age) for name in names)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = scoring_command(
            ["train", "--images", str(folder), "--manifest", str(manifest), "--out", str(out)]
        )
    if code != 0:
        raise RuntimeError(f"training command exited {code}: {sink.getvalue().strip()[-300:]}")


def run_digits(
    work: Path, classes: tuple[int, ...] = tuple(range(10)), limit: int = 0
) -> DigitsResult:
    """AUROC per normal class; ``limit`` > 0 keeps that many images per class (tiny runs)."""
    images, labels = load_digits()
    work.mkdir(parents=True, exist_ok=True)
    split: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        if limit:
            members = members[:limit]
        cut = round(members.size * TRAIN_FRACTION)
        split[digit] = (members[:cut], members[cut:])
    used = np.concatenate([np.concatenate(parts) for parts in split.values()])
    features = {int(i): extract_features(digit_image(images[i])) for i in used}
    results: dict[int, float] = {}
    baseline: dict[int, float] = {}
    for digit in classes:
        folder = work / f"digit-{digit}"
        folder.mkdir(exist_ok=True)
        names = []
        for index in split[digit][0]:
            name = f"{index}.png"
            if not (folder / name).exists():
                digit_image(images[index]).save(folder / name)
            names.append(name)
        model_path = folder / "model.npz"
        _train(folder, names, model_path)
        bundle = bundle_from_bytes(model_path.read_bytes())
        held_normal = split[digit][1]
        others = np.concatenate([split[d][1] for d in range(10) if d != digit])
        normal_scores, other_scores = (
            np.array([bundle.score(features[int(i)], SCORING_AGE).anomaly_score for i in rows])
            for rows in (held_normal, others)
        )
        results[digit] = auroc(normal_scores, other_scores)
        baseline[digit] = _raw_pixel_baseline(images, split[digit][0], held_normal, others)
    return DigitsResult(results, baseline)


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        result = run_digits(Path(folder), limit=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    for digit, value in result.auroc_by_class.items():
        print(
            f"digit {digit}: AUROC {value:.4f} (raw pixels: {result.baseline_by_class[digit]:.4f})"
        )
    print(f"mean AUROC {result.mean:.4f} (raw pixels: {result.baseline_mean:.4f})")
