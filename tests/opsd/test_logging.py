import io
import json

import structlog

from opsd.logging import configure_logging


def test_secret_values_and_secret_fields_never_reach_a_line() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", secrets=["hunter2-very-secret"], stream=stream)
    log = structlog.get_logger()
    log.info("login", note="password was hunter2-very-secret", admin_password="letmein")
    line = json.loads(stream.getvalue())
    assert "hunter2" not in stream.getvalue() and "letmein" not in stream.getvalue()
    assert line["admin_password"] == "[redacted]"
    assert line["event"] == "login"


def test_json_lines_carry_level_and_time() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    structlog.get_logger().info("task finished", task="backup", bytes=10)
    line = json.loads(stream.getvalue())
    assert line["level"] == "info" and line["task"] == "backup" and "timestamp" in line


def test_level_filters_debug_lines() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "json", stream=stream)
    structlog.get_logger().info("quiet")
    assert stream.getvalue() == ""
