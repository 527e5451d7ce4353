"""How the scoring holds on drawings it was not fitted to (issue 13, "Measure").

- False-flag rate per paper kind and capture, on held-out generated drawings (another seed),
  at the default 95th-percentile threshold of a model fitted on the reference set.
- False-flag rate per left-out style family (medium): a model fitted on every other family,
  measured on held-out drawings of the one left out.
- Detection rate per anomaly kind.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from app.scoring import extract_features
from app.scoring.model import MAX_AGE, MIN_AGE, ModelBundle
from app.scoring.synthetic import (
    ANOMALY_KINDS,
    generate_drawing,
    generate_even_reference_set,
    pick_look,
    varied_shape,
)
from app.scoring.synthetic_media import CAPTURES, MEDIA, PAPER_KINDS, encode
from app.scoring.training import fit_bundle

AGES = np.arange(MIN_AGE, MAX_AGE + 1)


@dataclass(frozen=True)
class ReferenceSet:
    features: np.ndarray
    ages: np.ndarray
    media: np.ndarray


def features_of_upload(image: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Features of the drawing as it would be uploaded: another size, PNG or JPEG."""
    data, _ = encode(varied_shape(image, rng), rng)
    with Image.open(io.BytesIO(data)) as decoded:
        return extract_features(decoded)


def reference_set(folder: Path, per_group: int, seed: int, size: int) -> ReferenceSet:
    manifest = generate_even_reference_set(folder, per_group, seed, size=size)
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    features = []
    for row in rows:
        with Image.open(folder / row["file"]) as image:
            features.append(extract_features(image))
    return ReferenceSet(
        features=np.stack(features),
        ages=np.array([int(r["age"]) for r in rows]),
        media=np.array([r["style"] for r in rows]),
    )


def flag_rate(
    bundle: ModelBundle,
    count: int,
    seed: int,
    size: int,
    draw: Callable[[int, np.random.Generator], Image.Image],
) -> float:
    rng = np.random.default_rng(seed)
    flagged = 0
    for index in range(count):
        age = int(AGES[index % AGES.size])
        features = features_of_upload(draw(age, rng), rng)
        flagged += bundle.score(features, age).is_anomaly
    return flagged / count


def paper_false_flags(
    bundle: ModelBundle, count: int, seed: int, size: int
) -> dict[tuple[str, str], float]:
    rates = {}
    for paper_index, paper in enumerate(PAPER_KINDS):
        for capture_index, capture in enumerate(CAPTURES):
            rates[(paper, capture)] = flag_rate(
                bundle,
                count,
                seed + 100 * paper_index + capture_index,
                size,
                lambda age, rng, p=paper, c=capture: generate_drawing(
                    age, rng, size, look=pick_look(rng, paper=p, capture=c)
                ),
            )
    return rates


def anomaly_detection(bundle: ModelBundle, count: int, seed: int, size: int) -> dict[str, float]:
    return {
        kind: flag_rate(
            bundle,
            count,
            seed + 1000 + index,
            size,
            lambda age, rng, k=kind: generate_drawing(age, rng, size, kind=k),
        )
        for index, kind in enumerate(ANOMALY_KINDS)
    }


def family_false_flags(
    reference: ReferenceSet, count: int, seed: int, size: int, base: ModelBundle | None = None
) -> dict[str, float]:
    """Per medium: a model fitted without it (groups left too small keep ``base``'s model),
    measured on held-out drawings of that medium."""
    rates = {}
    for index, medium in enumerate(MEDIA):
        others = reference.media != medium
        bundle = fit_bundle(
            reference.features[others],
            reference.ages[others],
            version_prefix=f"no-{medium}",
            base=base,
            styles=reference.media[others],
        )
        rates[medium] = flag_rate(
            bundle,
            count,
            seed + 2000 + index,
            size,
            lambda age, rng, m=medium: generate_drawing(
                age, rng, size, look=pick_look(rng, medium=m)
            ),
        )
    return rates
