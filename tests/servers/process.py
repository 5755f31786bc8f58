"""A test server in a subprocess on a free loopback port, stopped by its PID.

Every loopback server of the suite (moto, the S3 dialect layer, Azurite, the GCS emulator, the
in-repo fakes) starts through `start_server`, so each waits for readiness and shuts down the same way.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class ServerProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_dir: Path
    tls: bool = False

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        """What the server printed; a file, not a pipe, so a chatty server never blocks on a full pipe."""
        path = self.log_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Terminate our own process by PID, and kill it only if it ignores SIGTERM."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.log_dir, ignore_errors=True)


def start_server(
    command: Sequence[str],
    name: str,
    *,
    env: Mapping[str, str] | None = None,
    probe_path: str = "/",
    timeout: float = STARTUP_TIMEOUT,
    tls: bool = False,
) -> ServerProcess:
    """Run `command` with `{port}` replaced by a free port; return once it answers HTTP there.

    With `tls` the server speaks HTTPS: the probe trusts any certificate (the fixture made it, and
    tests check verification themselves) and `endpoint` says https.
    """
    log_dir = Path(tempfile.mkdtemp(prefix=f"objfs-{name}-"))
    port = free_port()
    argv = [part.replace("{port}", str(port)).replace("{dir}", str(log_dir)) for part in command]
    with open(log_dir / "server.log", "wb") as log:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=dict(env or os.environ)
        )
    server = ServerProcess(name, port, process, log_dir, tls)
    try:
        _wait_until_answering(server, probe_path, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_answering(server: ServerProcess, probe_path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            raise RuntimeError(f"{server.name} exited with status {code}:\n{server.log}")
        if _answers(server.port, probe_path, server.tls):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not answer at {server.endpoint} in {timeout:.0f} s:\n{server.log}")


def _answers(port: int, path: str, tls: bool = False) -> bool:
    """Any HTTP answer, even an error status, means the server is up; http.client ignores proxies."""
    connection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=ssl._create_unverified_context())
        if tls
        else http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    )
    try:
        connection.request("GET", path)
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True
