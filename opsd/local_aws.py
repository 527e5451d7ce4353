"""The embedded AWS endpoint of local mode: moto's server on loopback (ARCHITECTURE §5), whose
state is kept in its folder across restarts (opsd/local_aws_state.py)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import structlog

from opsd.settings import Settings
from opsd.state import OpsState, process_alive

LOCAL_AWS_KEY = "local_aws"

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# Written by the endpoint (opsd/local_aws_state.py); kept here to spare the daemon moto's import.
STATE_FILE_NAME = "state.pickle"
SET_ASIDE_MARK = ".unreadable-"
ORPHAN_EXIT_WAIT_S = 5.0
log = structlog.get_logger()


class LocalAwsError(Exception):
    pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class EmbeddedAws:
    """moto's server in a child process, so its CPU and memory are not the daemon's."""

    def __init__(self, port: int, folder: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.folder = folder
        self.log_path = folder / "local-aws.log"
        self.state_path = folder / STATE_FILE_NAME
        # Imported here: cryptography costs every task run 20 ms of start-up otherwise.
        from opsd.local_tls import ensure_certificate

        self.cert_path, self.key_path = ensure_certificate(folder)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> str:
        # An endpoint whose `opsd run` was killed saves its state and stops within seconds.
        deadline = time.monotonic() + ORPHAN_EXIT_WAIT_S
        while port_in_use(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.25)
        if port_in_use(self.host, self.port):
            raise LocalAwsError(
                f"LOCAL_AWS_PORT {self.port} is in use on {self.host}: stop what runs there "
                "or choose another port"
            )
        set_aside_before = set(self.folder.glob(f"{STATE_FILE_NAME}{SET_ASIDE_MARK}*"))
        options = {"-H": self.host, "-p": self.port, "-c": self.cert_path, "-k": self.key_path}
        options |= {"--state": self.state_path, "--parent-pid": os.getpid()}
        command = [sys.executable, "-m", "opsd.local_aws_server"]
        command += [str(part) for option in options.items() for part in option]
        with self.log_path.open("ab") as output:
            self._process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LocalAwsError(
                    f"embedded AWS endpoint exited at start (code {self._process.returncode})"
                )
            if self.ready():
                for path in set(self.folder.glob(f"{STATE_FILE_NAME}{SET_ASIDE_MARK}*")) - (
                    set_aside_before
                ):
                    log.warning(
                        "local aws state unreadable, set aside; starting empty",
                        set_aside=str(path),
                        details=str(self.log_path),
                    )
                return self.url
            time.sleep(0.2)
        self.stop()
        raise LocalAwsError(f"embedded AWS endpoint did not answer on {self.url} in {timeout_s}s")

    def ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.cert_path))
        try:
            with urllib.request.urlopen(
                f"{self.url}/moto-api/data.json", timeout=1, context=context
            ):
                return True
        except OSError:  # urllib's URLError among them
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def point_environment_at(url: str, ca_bundle: Path) -> None:
    """Every boto3 client, the AWS CLI and child processes use the local endpoint."""
    os.environ["AWS_ENDPOINT_URL"] = url
    os.environ["AWS_CA_BUNDLE"] = str(ca_bundle)
    os.environ.update(LOCAL_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)


def record_running_endpoint(settings: Settings, embedded: EmbeddedAws) -> None:
    """So that a task started by hand in local mode finds the endpoint `opsd run` serves."""
    with OpsState.for_settings(settings) as state:
        state.set(
            LOCAL_AWS_KEY,
            {
                "endpoint": embedded.url,
                "ca_bundle": str(embedded.cert_path.resolve()),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            },
        )


def attach_running_endpoint(settings: Settings) -> Settings:
    """In local mode with no AWS_ENDPOINT_URL: the endpoint of the running `opsd run` that
    shares this OPS_STATE_PATH, if there is one; otherwise the settings as they are."""
    if not settings.is_local or settings.aws_endpoint_url or not settings.ops_state_path.exists():
        return settings
    with OpsState.for_settings(settings) as state:
        running = state.get(LOCAL_AWS_KEY)
    if not process_alive(running):
        return settings
    point_environment_at(running["endpoint"], Path(running["ca_bundle"]))
    return settings.model_copy(update={"aws_endpoint_url": running["endpoint"]})
