"""Fixtures for the sessiond GameSparks conformance suite.

Everything here talks to a real ``sessiond`` binary (started privately, on ports chosen by the
OS) through the official AWS Python SDK only: boto3 1.28.66 with botocore 1.31.66, the last
releases that ship the ``gamesparks`` model, with retries off. Game clients are real WebSocket
clients (``websockets``) speaking sessiond's runtime protocol (docs/runtime-protocol.md).

Environment (set by scripts/conformance): SESSIOND_BIN. CONFORMANCE_KEEP=1 keeps the
temporary directories (config, data, log).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from websockets.sync.client import connect as ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sessiond_process import RUNNING, LaunchError, SessiondProcess, no_proxy_env  # noqa: E402

import os  # noqa: E402

no_proxy_env(os.environ)

REGION = "us-east-1"
ACCOUNT_A = "111122223333"
ACCOUNT_B = "444455556666"
KEY_A = ("AKIDawsconformanceA1", "aws-conformance-secret-a1")
KEY_B = ("AKIDawsconformanceB1", "aws-conformance-secret-b1")
ROLE = "arn:aws:iam::111122223333:role/GameSparksRole"
RUNTIME_PATH = "/gamesparks/runtime/v1"


def gamesparks_config(extra: str = ""):
    def build(sd: SessiondProcess) -> str:
        creds = "".join(
            f'\n[[credentials]]\naccess_key_id = "{k}"\nsecret_access_key = "{s}"\naccount_id = "{a}"\n'
            for (k, s), a in ((KEY_A, ACCOUNT_A), (KEY_B, ACCOUNT_B))
        )
        return (
            f'data_dir = "{sd.data_dir}"\n'
            "\n[listen]\n"
            'api = "127.0.0.1:0"\n'
            'agent = "127.0.0.1:0"\n'
            f"{creds}\n"
            "[gamesparks]\n"
            "keepalive_interval_seconds = 5\n"
            f"{extra}\n"
        )

    return build


def start(name: str, extra: str = "") -> SessiondProcess:
    sd = SessiondProcess(name, gamesparks_config(extra))
    try:
        return sd.start()
    except LaunchError as e:
        pytest.fail(str(e))


def client(sd: SessiondProcess, key=KEY_A):
    return boto3.client(
        "gamesparks",
        region_name=REGION,
        endpoint_url=sd.api_url,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


class GameClient:
    """A player connection: hello with the GameKey (and the token when returning)."""

    def __init__(self, sd: SessiondProcess, game_key: str, token: str | None = None):
        self.ws = ws_connect(f"ws://{sd.endpoint}{RUNTIME_PATH}", open_timeout=10, close_timeout=2)
        hello = {"type": "hello", "gameKey": game_key}
        if token:
            hello["playerToken"] = token
        self.ws.send(json.dumps(hello))
        self.welcome = json.loads(self.ws.recv(timeout=10))
        assert self.welcome["type"] == "welcome", self.welcome
        self.player_id = self.welcome["playerId"]
        self.token = self.welcome["playerToken"]
        self.connection_id = self.welcome["connectionId"]

    def ping(self) -> dict:
        self.ws.send(json.dumps({"type": "ping", "id": "x"}))
        return json.loads(self.ws.recv(timeout=5))

    def wait_close(self, timeout: float = 5.0):
        """(code, reason) of the server's close frame."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                self.ws.recv(timeout=timeout)
        except ConnectionClosed as e:
            assert e.rcvd is not None, "closed without a close frame"
            return e.rcvd.code, e.rcvd.reason

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


@pytest.fixture(scope="module")
def sessiond(request):
    sd = start(request.module.__name__.rsplit(".", 1)[-1])
    yield sd
    sd.stop()


@pytest.fixture
def gs(sessiond):
    return client(sessiond)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for sd in list(RUNNING):
            sd.keep = True
            rep.sections.append((f"sessiond [{sd.name}] log tail ({sd.log_path})", sd.log_tail()))
