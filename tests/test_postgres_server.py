"""Without Debian's postgresql package the PostgreSQL tests skip, saying why; under CI=true they
fail instead."""

from __future__ import annotations

import pytest

from tests import postgres_server


@pytest.mark.parametrize(("ci", "outcome"), [("true", "Failed"), ("", "Skipped")])
def test_a_missing_postgresql_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setattr(postgres_server, "postgres_bin", lambda: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException) as stopped:
        postgres_server.require_postgres()
    assert type(stopped.value).__name__ == outcome
    assert "Debian's postgresql package" in str(stopped.value)
