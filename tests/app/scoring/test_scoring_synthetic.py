"""Synthetic drawings: deterministic, age-dependent, anomalies of every kind."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.scoring import load_packaged_bundle
from app.scoring.features import FEATURE_NAMES, extract_features
from app.scoring.model import GROUP_NAMES, age_group_for
from app.scoring.synthetic import (
    ANOMALY_KINDS,
    Look,
    generate_drawing,
    generate_even_reference_set,
    generate_reference_set,
)
from app.scoring.synthetic_media import CAPTURES, MEDIA, PAPER_KINDS


def test_same_seed_gives_the_same_pixels() -> None:
    first = generate_drawing(6, np.random.default_rng(42), size=256)
    second = generate_drawing(6, np.random.default_rng(42), size=256)
    assert first.tobytes() == second.tobytes()
    assert first.size == (256, 256) and first.mode == "RGB"


def test_older_children_use_more_colours_and_finer_strokes() -> None:
    def mean_feature(age: int, name: str) -> float:
        rng = np.random.default_rng(100 + age)
        index = FEATURE_NAMES.index(name)
        return float(
            np.mean([extract_features(generate_drawing(age, rng, 256))[index] for _ in range(12)])
        )

    assert mean_feature(16, "palette_size") > mean_feature(3, "palette_size")
    assert mean_feature(16, "stroke_thickness") < mean_feature(3, "stroke_thickness")


def test_every_paper_capture_and_medium_can_be_chosen() -> None:
    for paper in PAPER_KINDS:
        for capture in CAPTURES:
            for medium in MEDIA:
                look = Look(paper=paper, capture=capture, medium=medium)
                image = generate_drawing(7, np.random.default_rng(3), size=96, look=look)
                assert image.size == (96, 96) and image.mode == "RGB"
    with pytest.raises(ValueError, match="unknown paper kind"):
        generate_drawing(7, np.random.default_rng(3), 96, look=Look("papyrus", "scan", "paint"))


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_every_anomaly_kind_is_drawn(kind: str) -> None:
    image = generate_drawing(9, np.random.default_rng(1), size=128, kind=kind)
    assert image.size == (128, 128) and image.mode == "RGB"


def test_anomalous_picks_a_kind_and_unknown_kinds_are_refused() -> None:
    generate_drawing(9, np.random.default_rng(1), size=128, anomalous=True)
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        generate_drawing(9, np.random.default_rng(1), size=128, kind="sparkly")


def test_age_and_size_are_checked() -> None:
    with pytest.raises(ValueError, match="outside 2..18"):
        generate_drawing(1, np.random.default_rng(1))
    with pytest.raises(ValueError, match="too small"):
        generate_drawing(5, np.random.default_rng(1), size=10)


def test_reference_set_writes_pngs_and_a_manifest(tmp_path: Path) -> None:
    manifest = generate_reference_set(tmp_path / "ref", 2, seed=5, size=96, ages=range(4, 7))
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["age"]) for r in rows] == [4, 4, 5, 5, 6, 6]
    assert all(r["subject"] and r["paper"] and r["capture"] and r["style"] for r in rows)
    for row in rows:
        with Image.open(tmp_path / "ref" / row["file"]) as image:
            assert image.format == {"png": "PNG", "jpg": "JPEG"}[row["file"].rsplit(".", 1)[1]]
            assert min(image.size) >= 64 and max(image.size) <= 96 * 1.5 * 1.45 + 1
    again = generate_reference_set(tmp_path / "again", 2, seed=5, size=96, ages=range(4, 7))
    assert again.read_text() == manifest.read_text()
    first = (tmp_path / "ref" / rows[0]["file"]).read_bytes()
    assert (tmp_path / "again" / rows[0]["file"]).read_bytes() == first


def test_an_even_reference_set_gives_every_age_group_as_many_drawings(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    manifest = generate_even_reference_set(folder, 15, seed=1, size=64)
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    per_group = Counter(age_group_for(int(row["age"])) for row in rows)
    assert per_group == dict.fromkeys(GROUP_NAMES, 15)
    assert Counter(int(row["age"]) for row in rows)[16] == 3  # 15 over the five ages 14-18
    assert {p.name for p in folder.iterdir()} == {row["file"] for row in rows} | {manifest.name}


def test_the_packaged_model_has_as_many_reference_drawings_in_every_age_group() -> None:
    """A group's threshold depends on how many reference drawings it has (issue 13)."""
    counts = {name: m.reference_scores.size for name, m in load_packaged_bundle().models.items()}
    assert set(counts.values()) == {120}, counts
