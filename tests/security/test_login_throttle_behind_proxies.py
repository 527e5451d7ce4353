"""Login throttling behind CloudFront and the load balancer, against the exact production
command line (Dockerfile.prod's CMD and ENV, gunicorn on a free port).

The header chain of production: the viewer may send any X-Forwarded-For; CloudFront appends
the viewer's address (and sets CloudFront-Viewer-Address), the load balancer appends the
CloudFront edge's. So a client writes the left-most entries, never the last two.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.local_s3 import LocalS3
from benchmarks.production_app import ProductionApp
from tests.app.helpers import ADMIN_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
EDGE = "130.176.0.15"  # a CloudFront edge, as the load balancer sees it
HOST = "drawings.example.org"
BUCKETS = ("drawing-analysis-drawings-test", "drawing-analysis-models-test")


def through_cloudfront(viewer: str, forged: str | None = None) -> dict[str, str]:
    """The headers the app gets for a viewer at `viewer` who sent X-Forwarded-For `forged`."""
    chain = [forged] if forged else []
    return {
        "X-Forwarded-For": ", ".join([*chain, viewer, EDGE]),
        "CloudFront-Viewer-Address": f"{viewer}:51234",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "Host": HOST,
        "Origin": f"https://{HOST}",
    }


@pytest.fixture
def production_app(tmp_path: Path) -> Iterator[ProductionApp]:
    with LocalS3(tmp_path / "moto.log", bucket=BUCKETS[0]) as s3:
        s3.client().create_bucket(Bucket=BUCKETS[1])
        env = {
            **s3.env(),
            "ENVIRONMENT": "production",
            "S3_BUCKET_DRAWINGS": BUCKETS[0],
            "S3_BUCKET_MODELS": BUCKETS[1],
            "S3_BUCKET_BACKUPS": "drawing-analysis-backups-test",
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DATABASE_PATH": str(tmp_path / "app.db"),
            "OPS_STATE_PATH": str(tmp_path / "ops-state.db"),
            "SCRATCH_DIR": str(tmp_path),
            "LOG_LEVEL": "WARNING",
        }
        with ProductionApp(env, tmp_path / "app.log") as app:
            yield app


def attempt(app: ProductionApp, headers: dict[str, str], password: str = "guess") -> httpx.Response:
    return httpx.post(
        f"{app.url}/login",
        data={"password": password, "next": "/dashboard"},
        headers=headers,
        follow_redirects=False,
        timeout=30,
    )


def test_forged_left_most_entries_do_not_escape_the_limit(production_app: ProductionApp) -> None:
    viewer = "198.51.100.7"
    statuses = [
        attempt(production_app, through_cloudfront(viewer, forged=f"10.9.{n}.{n}")).status_code
        for n in range(20)
    ]

    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 15, statuses


def test_forged_failures_naming_someone_else_do_not_lock_them_out(
    production_app: ProductionApp,
) -> None:
    victim, attacker = "198.51.100.20", "203.0.113.9"
    for _ in range(5):
        forged = attempt(production_app, through_cloudfront(attacker, forged=victim))
        assert forged.status_code == 401

    assert attempt(production_app, through_cloudfront(attacker)).status_code == 429
    login = attempt(production_app, through_cloudfront(victim), password=ADMIN_PASSWORD)
    assert login.status_code == 303, login.text


def test_a_crowd_of_addresses_is_capped_but_cannot_lock_the_admin_out_of_a_known_browser(
    production_app: ProductionApp,
) -> None:
    admin = "192.0.2.10"
    first = attempt(production_app, through_cloudfront(admin), password=ADMIN_PASSWORD)
    assert first.status_code == 303
    device = first.cookies["admin_device"]  # sent back only to /login, over HTTPS in production

    # 20 addresses (the account-wide limit), one wrong guess each: no address is throttled.
    crowd = [f"203.0.113.{n}" for n in range(1, 21)]
    assert {attempt(production_app, through_cloudfront(a)).status_code for a in crowd} == {401}

    # Guessing is capped whatever the address: a new one is refused before the password is
    # even compared, so the right password would tell a guesser nothing.
    capped = attempt(production_app, through_cloudfront("203.0.113.99"), password=ADMIN_PASSWORD)
    assert capped.status_code == 429
    assert int(capped.headers["retry-after"]) > 0
    assert "admin_session" not in capped.cookies

    # The admin's browser, which logged in before, is not held by the crowd.
    known = attempt(
        production_app,
        {**through_cloudfront(admin), "Cookie": f"admin_device={device}"},
        password=ADMIN_PASSWORD,
    )
    assert known.status_code == 303, known.text
    assert "admin_session" in known.cookies
