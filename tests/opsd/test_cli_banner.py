from __future__ import annotations

from pathlib import Path

import pytest

from opsd.cli import print_banner
from opsd.local_aws import EmbeddedAws
from opsd.settings import Settings


def test_the_banner_gives_the_aws_cli_its_region_and_the_readme_shows_the_same_line(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    embedded = EmbeddedAws(45666, folder=tmp_path / "local-aws")
    print_banner(settings, embedded, app_port=8123)
    banner = capsys.readouterr().out
    [export] = [line.strip() for line in banner.splitlines() if "export AWS_" in line]
    assert f"AWS_DEFAULT_REGION={settings.aws_default_region}" in export
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    shown = export.replace(
        str(embedded.cert_path.resolve()), "$PWD/data/local-aws/local-aws-cert.pem"
    )
    assert shown in readme
    assert "http://127.0.0.1:8123/docs" in banner
