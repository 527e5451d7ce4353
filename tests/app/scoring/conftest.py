"""A small synthetic reference set shared by the scoring tests (generated once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.scoring.synthetic import generate_reference_set

REFERENCE_PER_AGE = 7  # the three-age groups then have 21 drawings, just over the minimum


@pytest.fixture(scope="session")
def reference_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 7 drawings per age (128 px) with its manifest.csv."""
    folder = tmp_path_factory.mktemp("reference")
    generate_reference_set(folder, REFERENCE_PER_AGE, seed=11, size=128)
    return folder
