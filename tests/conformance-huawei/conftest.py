"""Fixtures for the sessiond Huawei DCS v2 conformance suite.

Everything goes through the official ``huaweicloudsdkdcs`` 3.1.219 client (SDK-HMAC-SHA256,
X-Sdk-Date, X-Project-Id), unchanged, against a private sessiond whose DCS instance is made
of private ``redis-server`` processes (free ports, bound to 127.0.0.1 and ::1, no
persistence, killed at the end). Application clients are plain sockets speaking RESP.

Environment (set by scripts/conformance): SESSIOND_BIN; REDIS_SERVER_BIN (default
/usr/bin/redis-server). With CI=true a missing redis-server fails the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sessiond_process import RUNNING, SessiondProcess, no_proxy_env, wait_until  # noqa: E402

from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402
from huaweicloudsdkdcs.v2 import DcsClient  # noqa: E402

no_proxy_env(os.environ)

PROJECT_A = "0605767a3300d5762fb7c0186d9e1779"
PROJECT_B = "1705767a3300d5762fb7c0186d9e1780"
INSTANCE = "3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1"
INSTANCE_B = "9b1d1b8e-5d0f-4c61-9a39-5d1f0d0c7e22"
PASSWORD = "conformance-redis-pass"


@dataclass(frozen=True)
class Cred:
    ak: str
    sk: str
    project: str


CRED_A = Cred("HWAKconformanceA1", "hw-conformance-secret-a1", PROJECT_A)
CRED_B = Cred("HWAKconformanceB1", "hw-conformance-secret-b1", PROJECT_B)


def redis_server_bin() -> Path | None:
    p = Path(os.environ.get("REDIS_SERVER_BIN") or "/usr/bin/redis-server")
    if p.is_file() and os.access(p, os.X_OK):
        return p
    if os.environ.get("CI") == "true":
        pytest.fail(f"{p} is missing: the DCS suite needs redis-server")
    pytest.skip(f"{p} is missing (install redis-server; in CI this fails)")
    return None


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6) as s6:
                s6.bind(("::1", port))
            return port
        except OSError:
            continue


def resp(*args: str) -> bytes:
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a.encode()
        out += f"${len(b)}\r\n".encode() + b + b"\r\n"
    return out


def read_reply(f) -> object:
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind in (b"+", b":"):
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:n].decode()
    raise RuntimeError(f"unexpected reply {line!r}")


class RedisServer:
    """A private redis-server."""

    def __init__(self, password: str | None = None, maxclients: int = 1000):
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="sessiond-conf-redis-"))
        for _ in range(5):
            self.port = free_port()
            cmd = [
                str(redis_server_bin()), "--port", str(self.port), "--bind", "127.0.0.1", "::1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--logfile", str(self.dir / "redis.log"), "--maxclients", str(maxclients),
            ]
            if password:
                cmd += ["--requirepass", password]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_until(self._ready, 10, f"redis-server on port {self.port}", interval=0.05)
                return
            except AssertionError:
                self.stop()
        raise RuntimeError("redis-server did not start")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited")
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def command(self, *args: str):
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            f = s.makefile("rb")
            payload = (resp("AUTH", self.password) if self.password else b"") + resp(*args)
            s.sendall(payload)
            if self.password:
                read_reply(f)
            return read_reply(f)

    def addrs(self) -> set[str]:
        text = self.command("CLIENT", "LIST")
        return {
            field[5:] for line in text.splitlines() for field in line.split(" ")
            if field.startswith("addr=")
        }

    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.kill()
            self.proc.wait(5)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class AppClient:
    """An application connection to Redis (IPv4 or IPv6 loopback)."""

    def __init__(self, server: RedisServer, family: int = socket.AF_INET):
        host = "127.0.0.1" if family == socket.AF_INET else "::1"
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect((host, server.port))
        self.f = self.sock.makefile("rb")
        if server.password:
            self.sock.sendall(resp("AUTH", server.password))
            assert read_reply(self.f) == "OK"
        self.sock.sendall(resp("PING"))
        assert read_reply(self.f) == "PONG"
        local = self.sock.getsockname()
        self.addr = f"{local[0]}:{local[1]}" if family == socket.AF_INET else f"[{local[0]}]:{local[1]}"

    def alive(self) -> bool:
        try:
            self.sock.sendall(resp("PING"))
            return read_reply(self.f) == "PONG"
        except (OSError, ConnectionError, RuntimeError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Sessiond(SessiondProcess):
    def __init__(self, name: str, master: RedisServer, replica: RedisServer):
        self.master, self.replica = master, replica
        super().__init__(name, lambda sd: sd._config())

    def _config(self) -> str:
        creds = "".join(
            f'\n[[credentials]]\naccess_key_id = "{c.ak}"\nsecret_access_key = "{c.sk}"\n'
            f'account_id = "{c.project}"\n'
            for c in (CRED_A, CRED_B)
        )
        limits = "".join(
            f'"dcs.{op}" = 1000\n'
            for op in ("ListClients", "ShowJobInfo", "HangUpClients", "ScanClients",
                       "HangUpKillAllClients", "ShowInstance", "ShowNodesInformation")
        )
        return (
            f'data_dir = "{self.data_dir}"\n\n[listen]\napi = "127.0.0.1:0"\nagent = "127.0.0.1:0"\n'
            f"{creds}\n[rate_limits]\n{limits}\n"
            "[dcs]\nconnect_timeout_ms = 1000\ncommand_timeout_ms = 2000\n\n"
            f'[[dcs.instances]]\ninstance_id = "{INSTANCE}"\nname = "conformance"\n'
            f'project_id = "{PROJECT_A}"\n\n'
            f'[[dcs.instances.nodes]]\nnode_id = "node-master"\nrole = "master"\ngroup = "group-0"\n'
            f'address = "{self.master.address()}"\npassword = "{PASSWORD}"\n\n'
            f'[[dcs.instances.nodes]]\nnode_id = "node-replica"\nrole = "slave"\ngroup = "group-0"\n'
            f'address = "[::1]:{self.replica.port}"\n\n'
            f'[[dcs.instances]]\ninstance_id = "{INSTANCE_B}"\nname = "other"\n'
            f'project_id = "{PROJECT_B}"\n\n'
            f'[[dcs.instances.nodes]]\nnode_id = "node-b"\nrole = "master"\ngroup = "group-0"\n'
            f'address = "127.0.0.1:{self.replica.port}"\n'
        )

    def client(self, cred: Cred = CRED_A, *, sk: str | None = None, project: str | None = "") -> DcsClient:
        cfg = HttpConfig.get_default_config()
        cfg.timeout = (5, 30)
        proj = cred.project if project == "" else project
        creds = BasicCredentials(cred.ak, sk or cred.sk, proj) if proj else BasicCredentials(cred.ak, sk or cred.sk)
        return (
            DcsClient.new_builder()
            .with_credentials(creds)
            .with_endpoint(self.api_url)
            .with_http_config(cfg)
            .build()
        )


@pytest.fixture(scope="session")
def redis_nodes():
    master = RedisServer(password=PASSWORD)
    replica = RedisServer()
    yield master, replica
    master.cleanup()
    replica.cleanup()


@pytest.fixture(scope="session")
def sessiond(redis_nodes):
    sd = Sessiond("huawei", *redis_nodes)
    sd.start()
    yield sd
    sd.stop()


@pytest.fixture
def dcs(sessiond) -> DcsClient:
    return sessiond.client()


@pytest.fixture
def app_clients(redis_nodes):
    """Factory of application clients; all closed after the test."""
    made: list[AppClient] = []

    def make(server: RedisServer, n: int, family: int = socket.AF_INET) -> list[AppClient]:
        out = [AppClient(server, family) for _ in range(n)]
        made.extend(out)
        return out

    yield make
    for c in made:
        c.close()


def new_uuid() -> str:
    return str(uuid.uuid4())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for sd in list(RUNNING):
            sd.keep = True
            rep.sections.append((f"sessiond [{sd.name}] log tail ({sd.log_path})", sd.log_tail()))


def wait_job(client: DcsClient, job_id: str, timeout: float = 10.0):
    from huaweicloudsdkdcs.v2 import ShowJobInfoRequest

    def done():
        job = client.show_job_info(ShowJobInfoRequest(job_id=job_id))
        return job if job.status != "RUNNING" else None

    return wait_until(done, timeout, f"job {job_id}", interval=0.05)


def now() -> float:
    return time.monotonic()
