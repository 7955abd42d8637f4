"""Fixtures and helpers for the sessiond GSE conformance suite.

Everything here talks to a real ``sessiond`` binary (started privately per module or
per test, on ports chosen by the OS) through the official clients only:

* ``tencentcloud-sdk-python-gse`` 3.0.1416 (typed request models, and ``call_json``
  where a typed model cannot express the request), in the four signing modes of
  /work/shared/reference/README.md;
* ``tccli`` 3.0.1348.1 (v1 HmacSHA256 POST form with ``Host: http://127.0.0.1:PORT``),
  run as a subprocess from its own venv (``TCCLI_BIN``).

Environment (set by scripts/conformance): SESSIOND_BIN, EXAMPLE_GAME_SERVER_BIN,
TCCLI_BIN. CONFORMANCE_KEEP=1 keeps the temporary directories (config, data, logs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sessiond_process import (  # noqa: E402  (shared with the other dialects' suites)
    RUNNING,
    LaunchError,
    SessiondProcess,
    no_proxy_env,
    required_executable,
    wait_until,
)
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.gse.v20191112 import gse_client, models

# --------------------------------------------------------------------------------------
# constants

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-shanghai"
PUBLIC_IP = "127.0.0.1"

ACCOUNT_A = "100000000001"
ACCOUNT_B = "100000000002"


@dataclass(frozen=True)
class Cred:
    secret_id: str
    secret_key: str
    account: str


CRED_A = Cred("AKIDconformanceAccountA1xx", "conformance-secret-a1-0123456789", ACCOUNT_A)
CRED_A2 = Cred("AKIDconformanceAccountA2xx", "conformance-secret-a2-0123456789", ACCOUNT_A)
CRED_B = Cred("AKIDconformanceAccountB1xx", "conformance-secret-b1-0123456789", ACCOUNT_B)
ALL_CREDS = (CRED_A, CRED_A2, CRED_B)

LAUNCH_PATH = "/local/game/example-game-server"
GAME_SERVER_NAME = "example-game-server"

END_GRACE_SECONDS = 3
# sessiond: SIGTERM after the grace period, SIGKILL 5 s later (gse.md §7)
PROCESS_EXIT_DEADLINE = END_GRACE_SECONDS + 5 + 7

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
FLEET_ID_RE = re.compile(r"^fleet-[0-9a-f]{8}-[0-9a-f]{8}$")
ASSET_ID_RE = re.compile(r"^asset-[0-9a-z]{8}$")
INSTANCE_ID_RE = re.compile(r"^ins-[0-9a-z]{8}$")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PSESS_ID_RE = re.compile(rf"^psess-{UUID_RE}$")


def gss_id_re(account: str, fleet_id: str) -> re.Pattern:
    return re.compile(
        rf"^qcs::gse:{REGION}:uin/{account}:gameserversession/{re.escape(fleet_id)}/gssess-{UUID_RE}$"
    )


def fake_gss_id(account: str, fleet_id: str) -> str:
    """A well-formed GSS id that names no session."""
    return f"qcs::gse:{REGION}:uin/{account}:gameserversession/{fleet_id}/gssess-{uuid.uuid4()}"


def _required_executable(env: str, default: Path) -> Path:
    try:
        return required_executable(env, default)
    except LaunchError as e:
        pytest.exit(str(e), returncode=2)


def example_game_server_bin() -> Path:
    return _required_executable(
        "EXAMPLE_GAME_SERVER_BIN", REPO_ROOT / "target/debug/example-game-server"
    )


def tccli_bin() -> Path:
    p = Path(os.environ.get("TCCLI_BIN") or REPO_ROOT / ".venv-tccli/bin/tccli")
    if not p.is_file():
        pytest.fail(f"tccli not found at {p} (scripts/conformance installs it)")
    return p


no_proxy_env(os.environ)

# --------------------------------------------------------------------------------------
# polling


# --------------------------------------------------------------------------------------
# /proc helpers (the API does not expose pids; these let the suite check real processes)


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of pid, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19])


def pid_alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _proc_stat(int(d))
            if st:
                children.setdefault(st[1], []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def is_game_server(pid: int) -> bool:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return os.path.basename(exe).startswith(GAME_SERVER_NAME)


def pid_listening_on(port: int) -> int | None:
    """pid of the process holding a listening TCP socket on port (any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                try:
                    if os.readlink(f"/proc/{d}/fd/{fd}") in wanted:
                        return int(d)
                except OSError:
                    pass
        except OSError:
            pass
    return None


def port_accepts(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------
# sessiond


class Sessiond(SessiondProcess):
    """A private sessiond for the GSE suite: an asset root holding the example game server,
    three credentials in two accounts, short timers."""

    def __init__(self, name: str, reservation_seconds: int = 60, extra_toml: str = ""):
        super().__init__(name, lambda sd: sd._gse_config(reservation_seconds, extra_toml))
        self.asset_root = self.tmp / "assets"
        self.home = self.tmp / "home"  # HOME for tccli (it writes ~/.tccli)
        for d in (self.asset_root / "example", self.home):
            d.mkdir(parents=True)
        shutil.copy2(example_game_server_bin(), self.asset_root / "example" / GAME_SERVER_NAME)
        self._game_pids: dict[int, int] = {}  # pid -> starttime, every game server seen

    def _gse_config(self, reservation_seconds: int, extra: str) -> str:
        creds = "".join(
            f'\n[[credentials]]\naccess_key_id = "{c.secret_id}"\n'
            f'secret_access_key = "{c.secret_key}"\naccount_id = "{c.account}"\n'
            for c in ALL_CREDS
        )
        # polling in the suite must never trip the (per credential, per action) limiter
        limits = "".join(
            f'"gse.{a}" = 1000\n'
            for a in (
                "CreateGameServerSession",
                "DescribeGameServerSessions",
                "DescribeGameServerSessionDetails",
                "DescribePlayerSessions",
                "DescribeFleetAttributes",
                "EndGameServerSessionAndProcess",
                "ListFleets",
                "DescribeAssets",
            )
        )
        return (
            f'data_dir = "{self.data_dir}"\n'
            f'public_ip = "{PUBLIC_IP}"\n'
            "\n[listen]\n"
            'api = "127.0.0.1:0"\n'
            'agent = "127.0.0.1:0"\n'
            f"{creds}\n"
            "[gse]\n"
            f'asset_roots = ["{self.asset_root}"]\n'
            f"player_session_reservation_seconds = {reservation_seconds}\n"
            f"end_grace_seconds = {END_GRACE_SECONDS}\n"
            "health_check_interval_seconds = 1\n"
            f"{extra}\n"
            "[rate_limits]\n"
            f"{limits}"
        )

    def start(self, timeout: float = 20.0) -> "Sessiond":
        try:
            super().start(timeout)
        except LaunchError as e:
            pytest.fail(str(e))
        if not self.agent_addr:
            self.stop()
            pytest.fail(f"sessiond stdout lacks the agent line: {self._lines!r}")
        return self

    def game_server_pids(self) -> list[int]:
        """Live example-game-server processes started (directly or not) by this sessiond."""
        if not self.proc:
            return []
        pids = [p for p in descendants(self.proc.pid) if is_game_server(p) and pid_alive(p)]
        for p in pids:
            st = _proc_stat(p)
            if st:
                self._game_pids[p] = st[2]
        return pids

    def remember_pid(self, pid: int):
        st = _proc_stat(pid)
        if st:
            self._game_pids[pid] = st[2]

    def stop(self):
        if self.proc is None:
            return self.cleanup()
        self.game_server_pids()  # record the current ones before sessiond goes away
        self.terminate()
        # game servers that outlived sessiond: end exactly those, by pid
        deadline = time.monotonic() + 3
        for pid, start in self._game_pids.items():
            while time.monotonic() < deadline:
                st = _proc_stat(pid)
                if st is None or st[2] != start or st[0] in ("Z", "X"):
                    break
                time.sleep(0.05)
            st = _proc_stat(pid)
            if st is not None and st[2] == start and st[0] not in ("Z", "X"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if os.environ.get("CONFORMANCE_KEEP") == "1" or self.keep:
            shutil.rmtree(self.asset_root, ignore_errors=True)  # just a copy of the binary
        self.cleanup()

    # -- clients ---------------------------------------------------------------------

    def gse(self, cred: Cred = CRED_A, sign: "SignMode | None" = None, *, secret_key: str | None = None,
            secret_id: str | None = None) -> "Gse":
        sign = sign or SIGN_MODES[0]
        endpoint = f"http://{self.endpoint}" if sign.scheme_in_endpoint else self.endpoint
        hp = HttpProfile(endpoint=endpoint, protocol="http", reqMethod=sign.req_method, reqTimeout=30)
        cp = ClientProfile(httpProfile=hp, signMethod=sign.sign_method)
        cred_obj = credential.Credential(secret_id or cred.secret_id, secret_key or cred.secret_key)
        return Gse(gse_client.GseClient(cred_obj, REGION, cp), sign)

    def tccli(self, action: str, *args: str, cred: Cred = CRED_A, secret_key: str | None = None,
              timeout: float = 60) -> "TccliResult":
        cmd = [
            str(tccli_bin()), "gse", action,
            "--endpoint", f"http://{self.endpoint}",
            "--region", REGION,
            "--secretId", cred.secret_id,
            "--secretKey", secret_key or cred.secret_key,
            *args,
        ]
        env = no_proxy_env({k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")})
        env["HOME"] = str(self.home)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
        return TccliResult(cmd, p.returncode, p.stdout, p.stderr)


# --------------------------------------------------------------------------------------
# SDK client wrapper


@dataclass(frozen=True)
class SignMode:
    id: str
    sign_method: str
    req_method: str
    scheme_in_endpoint: bool = False


SIGN_MODES = [
    SignMode("tc3-post", "TC3-HMAC-SHA256", "POST"),
    SignMode("tc3-get", "TC3-HMAC-SHA256", "GET"),
    SignMode("hmacsha256-post", "HmacSHA256", "POST"),
    SignMode("hmacsha1-get", "HmacSHA1", "GET"),
]
# endpoint given as "http://127.0.0.1:PORT": Host header (and signed host) carry the scheme
SIGN_MODES_HTTP_ENDPOINT = [
    SignMode("tc3-post-httphost", "TC3-HMAC-SHA256", "POST", True),
    SignMode("hmacsha256-post-httphost", "HmacSHA256", "POST", True),
]

sign_modes = pytest.mark.parametrize("sign", SIGN_MODES, ids=lambda s: s.id)


class Gse:
    """Calls GSE actions through the SDK's typed models: ``gse.JoinGameServerSession(
    GameServerSessionId=..., PlayerId=...)`` builds ``models.JoinGameServerSessionRequest``,
    calls ``GseClient.JoinGameServerSession`` and returns the response model as a dict.
    Every success must carry a RequestId."""

    def __init__(self, client: gse_client.GseClient, sign: SignMode):
        self.client = client
        self.sign = sign

    @staticmethod
    def request(action: str, params: dict):
        req = getattr(models, action + "Request")()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            req._deserialize(params)
        bad = [str(x.message) for x in w if "useless" in str(x.message)]
        assert not bad, f"test bug: {action} request has fields the model does not know: {bad}"
        return req

    def send(self, action: str, req) -> dict:
        resp = getattr(self.client, action)(req)
        out = json.loads(resp.to_json_string())
        assert out.get("RequestId"), f"{action}: successful response without RequestId: {out}"
        return out

    def __getattr__(self, action: str):
        if not action[:1].isupper():
            raise AttributeError(action)

        def call(**params):
            return self.send(action, self.request(action, params))

        call.__name__ = action
        return call

    def call_json(self, action: str, params: dict) -> dict:
        """The SDK's generic call: returns the raw "Response" object."""
        out = self.client.call_json(action, params)
        assert "Response" in out, out
        assert out["Response"].get("RequestId"), f"{action}: no RequestId: {out}"
        return out["Response"]

    def raw(self, action: str, params: dict):
        """The underlying requests.Response of one signed call (no error checking)."""
        return self.client._call(action, params)


def expect_error(code: str, fn: Callable, *args, **kwargs) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as ei:
        fn(*args, **kwargs)
    e = ei.value
    assert e.get_code() == code, (
        f"expected error {code}, got {e.get_code()}: {e.get_message()} (RequestId {e.get_request_id()})"
    )
    assert e.get_request_id(), f"error {code} without RequestId"
    return e


# --------------------------------------------------------------------------------------
# tccli


@dataclass
class TccliResult:
    cmd: list
    rc: int
    stdout: str
    stderr: str

    _ERR_RE = re.compile(r"\[TencentCloudSDKException\] code:(\S+) message:(.*?) requestId:(\S*)\s*$", re.S)

    def json(self) -> dict:
        assert self.rc == 0, f"tccli failed (rc={self.rc}): {self.stderr.strip()[-2000:]}"
        try:
            out = json.loads(self.stdout)
        except ValueError:
            pytest.fail(f"tccli printed non-JSON: {self.stdout[:2000]!r}")
        assert out.get("RequestId"), f"tccli output without RequestId: {out}"
        return out

    def error(self) -> tuple[str, str, str]:
        """(code, message, requestId) of a failed call; tccli exits 255 and prints
        '[TencentCloudSDKException] code:X message:Y requestId:Z' on stderr."""
        assert self.rc != 0, f"tccli unexpectedly succeeded: {self.stdout[:2000]}"
        m = self._ERR_RE.search(self.stderr)
        assert m, f"no TencentCloudSDKException in tccli stderr (rc={self.rc}): {self.stderr[-2000:]}"
        return m.group(1), m.group(2).strip(), m.group(3)


# --------------------------------------------------------------------------------------
# GSE workflow helpers


def example_runtime(concurrent: int, **extra) -> dict:
    rc = {
        "ServerProcesses": [
            {"LaunchPath": LAUNCH_PATH, "Parameters": "", "ConcurrentExecutions": concurrent}
        ]
    }
    rc.update(extra)
    return rc


def create_asset(gse: Gse, name: str) -> str:
    out = gse.CreateAsset(
        BucketKey="example.zip",
        AssetName=name,
        AssetVersion="1.0",
        AssetRegion=REGION,
        OperateSystem="CentOS7.16",
    )
    assert ASSET_ID_RE.match(out["AssetId"] or ""), out
    return out["AssetId"]


def create_fleet(gse: Gse, asset_id: str, name: str, concurrent: int, **extra) -> dict:
    params = dict(
        AssetId=asset_id,
        Name=name,
        FleetType="ON_DEMAND",
        NewGameServerSessionProtectionPolicy="NoProtection",
        RuntimeConfiguration=example_runtime(concurrent),
    )
    params.update(extra)
    return gse.CreateFleet(**params)["FleetAttributes"]


def create_gss(gse: Gse, timeout: float = 20.0, **params) -> dict:
    """CreateGameServerSession, retrying ResourceInsufficient (no idle process yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return gse.CreateGameServerSession(**params)["GameServerSession"]
        except TencentCloudSDKException as e:
            if e.get_code() != "ResourceInsufficient" or time.monotonic() >= deadline:
                raise
        time.sleep(0.2)


def describe_gss(gse: Gse, gss_id: str) -> dict:
    out = gse.DescribeGameServerSessions(GameServerSessionId=gss_id)
    sessions = out["GameServerSessions"] or []
    assert len(sessions) == 1, f"DescribeGameServerSessions({gss_id}) -> {out}"
    return sessions[0]


def wait_gss_status(gse: Gse, gss_id: str, status: str, timeout: float = 20.0) -> dict:
    def check():
        s = describe_gss(gse, gss_id)
        return s if s["Status"] == status else None

    return wait_until(check, timeout, f"game server session {gss_id} to be {status}")


def active_gss(gse: Gse, fleet_id: str, max_players: int = 10, **params) -> dict:
    gss = create_gss(gse, FleetId=fleet_id, MaximumPlayerSessionCount=max_players, **params)
    return wait_gss_status(gse, gss["GameServerSessionId"], "ACTIVE")


def player_session(gse: Gse, psid: str) -> dict:
    out = gse.DescribePlayerSessions(PlayerSessionId=psid)
    ps = out["PlayerSessions"] or []
    assert len(ps) == 1, f"DescribePlayerSessions(PlayerSessionId={psid}) -> {out}"
    return ps[0]


def wait_ps_status(gse: Gse, psid: str, status: str, timeout: float = 10.0) -> dict:
    def check():
        p = player_session(gse, psid)
        return p if p["Status"] == status else None

    return wait_until(check, timeout, f"player session {psid} to be {status}")


def player_sessions_of(gse: Gse, gss_id: str, **params) -> list[dict]:
    """All player sessions of a GSS, following NextToken."""
    out, token, pages = [], None, 0
    while True:
        p = dict(GameServerSessionId=gss_id, **params)
        if token:
            p["NextToken"] = token
        r = gse.DescribePlayerSessions(**p)
        out += r["PlayerSessions"] or []
        token = r.get("NextToken")
        pages += 1
        assert pages < 100, "DescribePlayerSessions paging does not terminate"
        if not token:
            return out


def end_gss(gse: Gse, gss_id: str):
    """Best-effort End (cleanup)."""
    try:
        gse.EndGameServerSessionAndProcess(GameServerSessionId=gss_id)
    except TencentCloudSDKException:
        pass


class Player:
    """A game client speaking the example game server's line protocol."""

    def __init__(self, ip: str, port: int, player_session_id: str, timeout: float = 10.0):
        self.sock = socket.create_connection((ip, port), timeout=timeout)
        self.sock.sendall(f"{player_session_id}\n".encode())
        self.reply = self._readline()

    def _readline(self) -> str:
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                break
            buf += chunk
        return buf.decode("utf-8", "replace").rstrip("\r\n")

    def wait_closed_by_server(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1024) == b""
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_pid_exit(pid: int, timeout: float, desc: str):
    wait_until(lambda: not pid_alive(pid), timeout, f"{desc} (pid {pid}) to exit", interval=0.1)


# --------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def sessiond(request):
    """One private sessiond per test module. A module may set
    SESSIOND_RESERVATION_SECONDS (default 60)."""
    sd = Sessiond(
        request.module.__name__.rsplit(".", 1)[-1],
        reservation_seconds=getattr(request.module, "SESSIOND_RESERVATION_SECONDS", 60),
    )
    sd.start()
    yield sd
    sd.stop()


@pytest.fixture
def fresh_sessiond(request):
    """A private sessiond for one test (state matters)."""
    sd = Sessiond(request.node.name[:40].replace("/", "_").replace("[", "-").replace("]", ""))
    sd.start()
    yield sd
    sd.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for sd in list(RUNNING):
            sd.keep = True
            rep.sections.append((f"sessiond [{sd.name}] log tail ({sd.log_path})", sd.log_tail()))
