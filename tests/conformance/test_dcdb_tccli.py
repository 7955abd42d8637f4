"""DCDB (2018-04-11) through tccli 3.1.189.1 (TC3-HMAC-SHA256 POST JSON, with
``--endpoint http://127.0.0.1:PORT`` so the Host header and the signed host carry the scheme):
KillSession on a private MariaDB shard, DescribeFlow, the inventory and error codes."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (
    ACCOUNT_A,
    ACCOUNT_B,
    CRED_A,
    CRED_B,
    REPO_ROOT,
    Sessiond,
    TccliResult,
    no_proxy_env,
)
from mariadb_server import INSTANCE, INSTANCE_B, MariaDBServer, client_dead, dcdb_toml


def tccli_dcdb_bin() -> Path:
    p = Path(os.environ.get("TCCLI_DCDB_BIN") or REPO_ROOT / ".venv-tccli-dcdb/bin/tccli")
    if not p.is_file():
        pytest.fail(f"tccli for DCDB not found at {p} (scripts/conformance installs it)")
    return p


@pytest.fixture(scope="module")
def shards():
    a = MariaDBServer().start()
    try:
        b = MariaDBServer().start()
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def sd(shards):
    a, b = shards
    s = Sessiond("dcdb-tccli", extra_toml=dcdb_toml(a, b, ACCOUNT_A, ACCOUNT_B)).start()
    yield s
    s.stop()


def tccli(sd, action: str, *args: str, cred=CRED_A, region: str | None = "ap-guangzhou") -> TccliResult:
    cmd = [str(tccli_dcdb_bin()), "dcdb", action, "--endpoint", f"http://{sd.endpoint}",
           "--secretId", cred.secret_id, "--secretKey", cred.secret_key]
    if region:
        cmd += ["--region", region]
    cmd += list(args)
    env = no_proxy_env({k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")})
    env["HOME"] = str(sd.home)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env,
                       stdin=subprocess.DEVNULL)
    return TccliResult(cmd, p.returncode, p.stdout, p.stderr)


def wait_flow(sd, task: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        r = tccli(sd, "DescribeFlow", "--FlowId", str(task))
        if r.rc == 0:
            status = r.json()["Status"]
            if status != 2:
                return status
        else:
            code, msg, _ = r.error()
            assert code == "RequestLimitExceeded", (code, msg)
        assert time.monotonic() < deadline, f"flow {task} still running"
        time.sleep(0.2)


def test_tccli_kill_session(sd, shards):
    a, b = shards
    on_a, on_b = a.clients(4), b.clients(2)
    b_before = set(b.threads())
    chosen = [on_a[1][0], on_a[3][0]]
    out = tccli(sd, "KillSession", "--InstanceId", INSTANCE, "--ShardId", "shard-aaaaaaaa",
                "--SessionId", json.dumps(chosen)).json()
    assert isinstance(out["TaskId"], int), out
    assert wait_flow(sd, out["TaskId"]) == 0
    for tid, conn in on_a:
        assert client_dead(conn) == (tid in chosen), tid
    assert set(b.threads()) == b_before
    for _, conn in on_b:
        assert not client_dead(conn)

    # Unfolded list arguments, the shard named by its serial id, no --region (not required).
    out = tccli(sd, "KillSession", "--cli-unfold-argument", "--InstanceId", INSTANCE,
                "--ShardSerialId", "set_1700000000_2", "--SessionId", str(on_b[0][0]), "424242",
                region=None).json()
    assert wait_flow(sd, out["TaskId"]) == 0
    assert client_dead(on_b[0][1]) and not client_dead(on_b[1][1])


def test_tccli_inventory(sd):
    out = tccli(sd, "DescribeDCDBInstances").json()
    assert out["TotalCount"] == 1 and out["Instances"][0]["InstanceId"] == INSTANCE, out
    out = tccli(sd, "DescribeDCDBInstances", cred=CRED_B).json()
    assert [i["InstanceId"] for i in out["Instances"]] == [INSTANCE_B]
    out = tccli(sd, "DescribeDCDBShards", "--InstanceId", INSTANCE, "--Limit", "1", "--Offset", "1").json()
    assert out["TotalCount"] == 3 and out["Shards"][0]["ShardInstanceId"] == "shard-bbbbbbbb", out
    out = tccli(sd, "DescribeDCDBInstanceNodeInfo", "--InstanceId", INSTANCE).json()
    assert out["TotalCount"] == 4 and out["NodesInfo"][0]["Role"] == "master", out


def test_tccli_errors(sd):
    def code(*args, cred=CRED_A):
        return tccli(sd, *args, cred=cred).error()[0]

    assert code("KillSession", "--InstanceId", INSTANCE_B, "--ShardId", "shard-otherbbb",
                "--SessionId", "[1]") == "InvalidParameter.InstanceNotFound"
    assert code("KillSession", "--InstanceId", INSTANCE, "--SessionId", "[1]") == "MissingParameter"
    assert code("KillSession", "--InstanceId", INSTANCE, "--ShardId", "shard-zzzzzzzz",
                "--SessionId", "[1]") == "InvalidParameterValue.ShardNotExist"
    assert code("KillSession", "--InstanceId", INSTANCE, "--ShardId", "shard-aaaaaaaa",
                "--SessionId", "[-1]") == "InvalidParameter"
    # tccli 3.1.x knows NodeId (a node of the shard, as DescribeDCDBInstanceNodeInfo lists).
    assert code("KillSession", "--InstanceId", INSTANCE, "--ShardId", "shard-aaaaaaaa",
                "--NodeId", "nosuchnode", "--SessionId", "[1]") == "InvalidParameterValue"
    assert code("DescribeFlow", "--FlowId", "987654321") == "InvalidParameter.FlowNotFound"
    # A wrong secret fails the TC3 signature (the signed host is the literal http://… value).
    assert code("DescribeFlow", "--FlowId", "1",
                cred=type(CRED_A)(CRED_A.secret_id, "wrong-secret", CRED_A.account)) == \
        "AuthFailure.SignatureFailure"
