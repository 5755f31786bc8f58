"""A real moto S3 server in a subprocess: boto3 goes through HTTP exactly as against AWS, and a
mounted filesystem in another process can share the same endpoint."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]
    log_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        """What the server printed; a file, not a pipe, so a chatty server never blocks on a full pipe."""
        path = self.log_dir / "moto.log"
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


def start_moto(auth: bool = False) -> MotoServer:
    """Start `moto_server` on a free loopback port and wait until it answers HTTP.

    With `auth`, moto checks every request's signature against its IAM users, of which there
    are none, so any access key is rejected (InvalidAccessKeyId, or a bare 403 for HEAD).
    """
    log_dir = Path(tempfile.mkdtemp(prefix="objfs-moto-"))
    port = _free_port()
    env = dict(os.environ)
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    with open(log_dir / "moto.log", "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    server = MotoServer(f"http://127.0.0.1:{port}", process, log_dir)
    try:
        _wait_until_answering(server, port)
    except BaseException:
        server.stop()
        raise
    return server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_answering(server: MotoServer, port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            raise RuntimeError(f"moto_server exited with status {code}:\n{server.log}")
        if _answers(port):
            return
        time.sleep(0.05)
    waited = f"{STARTUP_TIMEOUT:.0f} s"
    raise RuntimeError(f"moto_server did not answer at {server.endpoint} in {waited}:\n{server.log}")


def _answers(port: int) -> bool:
    """Any HTTP answer, even an error status, means the server is up; http.client ignores proxies."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/moto-api/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True
