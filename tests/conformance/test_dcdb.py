"""DCDB (2018-04-11) through the official ``tencentcloud-sdk-python-dcdb`` 3.0.1416: KillSession
on two private MariaDB servers (two shards of one instance), DescribeFlow, the inventory
listings, the documented error codes and the 20/s limit; TC3 POST and GET (and the v1
signatures the SDK also offers)."""

from __future__ import annotations

import json
import re
import time
import warnings

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.dcdb.v20180411 import dcdb_client, models

from conftest import (
    ACCOUNT_A,
    ACCOUNT_B,
    CRED_A,
    CRED_A2,
    CRED_B,
    SIGN_MODES,
    SIGN_MODES_HTTP_ENDPOINT,
    Sessiond,
    expect_error,
)
from mariadb_server import (
    INSTANCE,
    INSTANCE_B,
    REPL,
    MariaDBServer,
    client_dead,
    dcdb_toml,
)

DCDB_REGION = "ap-guangzhou"
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def shards():
    a = MariaDBServer(event_scheduler=True).start()
    try:
        b = MariaDBServer().start()
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


class DcdbSessiond(Sessiond):
    """The suite's sessiond with the DCDB limits raised (polling must never be throttled);
    the limit itself is tested on a sessiond with the documented defaults."""

    def _gse_config(self, reservation_seconds, extra):
        # [rate_limits] is the config's last table: these keys land in it.
        return super()._gse_config(reservation_seconds, extra) + "".join(
            f'"dcdb.{a}" = 1000\n'
            for a in ("KillSession", "DescribeFlow", "DescribeDCDBInstances", "DescribeDCDBShards",
                      "DescribeDCDBInstanceNodeInfo")
        )


@pytest.fixture(scope="module")
def sd(shards):
    a, b = shards
    s = DcdbSessiond("dcdb", extra_toml=dcdb_toml(a, b, ACCOUNT_A, ACCOUNT_B)).start()
    yield s
    s.stop()


class Dcdb:
    """Typed calls: ``dcdb.KillSession(InstanceId=..., ...)`` builds ``models.KillSessionRequest``
    and returns the response model as a dict."""

    def __init__(self, client: dcdb_client.DcdbClient):
        self.client = client

    def __getattr__(self, action: str):
        if not action[:1].isupper():
            raise AttributeError(action)

        def call(**params):
            req = getattr(models, action + "Request")()
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                req._deserialize(params)
            bad = [str(x.message) for x in w if "useless" in str(x.message)]
            assert not bad, f"test bug: {action} has fields the model does not know: {bad}"
            out = json.loads(getattr(self.client, action)(req).to_json_string())
            assert out.get("RequestId"), f"{action}: no RequestId: {out}"
            return out

        return call

    def call_json(self, action: str, params: dict) -> dict:
        out = self.client.call_json(action, params)
        assert out["Response"].get("RequestId"), out
        return out["Response"]


def dcdb(sd, cred=CRED_A, sign=SIGN_MODES[0]) -> Dcdb:
    endpoint = f"http://{sd.endpoint}" if sign.scheme_in_endpoint else sd.endpoint
    hp = HttpProfile(endpoint=endpoint, protocol="http", reqMethod=sign.req_method, reqTimeout=30)
    cp = ClientProfile(httpProfile=hp, signMethod=sign.sign_method)
    cred_obj = credential.Credential(cred.secret_id, cred.secret_key)
    return Dcdb(dcdb_client.DcdbClient(cred_obj, DCDB_REGION, cp))


def wait_flow(d: Dcdb, task: int, timeout: float = 20.0) -> dict:
    """DescribeFlow (raw, to see Message too) until Status is not 2; stays within 20/s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            out = d.call_json("DescribeFlow", {"FlowId": task})
            if out["Status"] != 2:
                return out
        except TencentCloudSDKException as e:
            if e.get_code() != "RequestLimitExceeded":
                raise
        assert time.monotonic() < deadline, f"flow {task} still running"
        time.sleep(0.1)


ALL_SIGN_MODES = SIGN_MODES + SIGN_MODES_HTTP_ENDPOINT


@pytest.mark.parametrize("sign", ALL_SIGN_MODES, ids=lambda s: s.id)
def test_kill_session_kills_exactly_the_listed_sessions(sd, shards, sign):
    a, b = shards
    d = dcdb(sd, sign=sign)
    on_a = a.clients(5)
    on_b = b.clients(3)
    try:
        a_before, b_before = set(a.threads()), set(b.threads())
        chosen = [on_a[0][0], on_a[2][0], on_a[4][0]]
        out = d.KillSession(InstanceId=INSTANCE, ShardId="shard-aaaaaaaa", SessionId=chosen)
        task = out["TaskId"]
        assert isinstance(task, int) and task > 0, out
        # The typed DescribeFlow model: Status 0 = every listed session is gone.
        deadline = time.monotonic() + 20
        while True:
            status = d.DescribeFlow(FlowId=task)["Status"]
            if status != 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 0
        assert set(a.threads()) == a_before - set(chosen)
        assert set(b.threads()) == b_before, "the other shard is untouched"
        for tid, conn in on_a:
            assert client_dead(conn) == (tid in chosen), tid
        for tid, conn in on_b:
            assert not client_dead(conn), tid
    finally:
        for _, conn in on_a + on_b:
            try:
                conn.close()
            except Exception:
                pass


def test_kill_by_serial_id_and_the_flow_message(sd, shards):
    a, b = shards
    d = dcdb(sd)
    on_b = b.clients(2)
    out = d.call_json("KillSession", {"InstanceId": INSTANCE, "ShardSerialId": "set_1700000000_2",
                                      "SessionId": [on_b[0][0], 99999999]})
    flow = wait_flow(d, out["TaskId"])
    assert flow["Status"] == 0, flow
    assert "1 killed, 1 already absent" in flow["Message"], flow
    assert client_dead(on_b[0][1]) and not client_dead(on_b[1][1])
    on_b[1][1].close()


def test_protected_sessions_fail_the_task(sd, shards):
    a, _ = shards
    d = dcdb(sd)
    repl_id, repl = a.client(REPL)
    app_id, app = a.client()
    scheduler = next(i for i, (user, _) in a.threads().items() if user == "event_scheduler")
    out = d.KillSession(InstanceId=INSTANCE, ShardId="shard-aaaaaaaa",
                        SessionId=[repl_id, scheduler, app_id])
    flow = wait_flow(d, out["TaskId"])
    assert flow["Status"] == 1, flow
    assert "its user 'repl' is protected" in flow["Message"], flow
    assert "event scheduler" in flow["Message"], flow
    assert client_dead(app) and not client_dead(repl)
    assert scheduler in a.threads()
    repl.close()


def test_a_down_shard_fails_its_task_quickly(sd):
    d = dcdb(sd)
    started = time.monotonic()
    out = d.KillSession(InstanceId=INSTANCE, ShardId="shard-cccccccc", SessionId=[5])
    flow = wait_flow(d, out["TaskId"], timeout=10)
    assert flow["Status"] == 1 and "cannot connect" in flow["Message"], flow
    assert time.monotonic() - started < 8
    # A replica chosen by NodeId (newer clients send it; this SDK's model has no NodeId).
    out = d.call_json("KillSession", {"InstanceId": INSTANCE, "ShardId": "shard-cccccccc",
                                      "NodeId": "4ddc0ea18433", "SessionId": [5]})
    assert wait_flow(d, out["TaskId"])["Status"] == 1


@pytest.mark.parametrize("sign", [SIGN_MODES[0], SIGN_MODES[1]], ids=lambda s: s.id)
def test_errors(sd, sign):
    d = dcdb(sd, sign=sign)
    kill = lambda **p: d.KillSession(**{"InstanceId": INSTANCE, "ShardId": "shard-aaaaaaaa",  # noqa: E731
                                         "SessionId": [1], **p})
    expect_error("InvalidParameter.InstanceNotFound", kill, InstanceId="tdsqlshard-nosuch00")
    expect_error("InvalidParameter.InstanceNotFound", kill, InstanceId=INSTANCE_B)
    expect_error("MissingParameter", kill, ShardId=None)
    expect_error("InvalidParameterValue.ShardNotExist", kill, ShardId="shard-otherbbb")
    expect_error("InvalidParameterValue.ShardNotExist", kill, ShardId=None, ShardSerialId="set_1700000000_9")
    expect_error("InvalidParameter", kill, ShardSerialId="set_1700000000_2")
    expect_error("InvalidParameter", kill, SessionId=[-5])
    expect_error("InvalidParameter", kill, SessionId=list(range(1, 1002)))
    expect_error("InvalidParameter.FlowNotFound", d.DescribeFlow, FlowId=987654321)
    expect_error("InvalidParameter.InstanceNotFound", d.DescribeDCDBShards, InstanceId=INSTANCE_B)
    expect_error("UnsupportedOperation", d.call_json, "DescribeDCDBPrice", {})
    expect_error("InvalidAction", d.call_json, "NoSuchAction", {})
    # Another account does not see A's flows.
    task = kill(SessionId=[987654])["TaskId"]
    expect_error("InvalidParameter.FlowNotFound", dcdb(sd, CRED_B, sign).DescribeFlow, FlowId=task)


def test_inventory(sd):
    d = dcdb(sd)
    out = d.DescribeDCDBInstances()
    assert out["TotalCount"] == 1, out
    inst = out["Instances"][0]
    assert inst["InstanceId"] == INSTANCE and inst["InstanceName"] == "conformance"
    assert inst["Uin"] == ACCOUNT_A and inst["Status"] == 2 and inst["Vip"] == "10.0.0.10"
    assert inst["ShardCount"] == 3 and TIME_RE.match(inst["CreateTime"]), inst
    assert [s["ShardInstanceId"] for s in inst["ShardDetail"]] == [
        "shard-aaaaaaaa", "shard-bbbbbbbb", "shard-cccccccc"]
    assert d.DescribeDCDBInstances(InstanceIds=[INSTANCE_B])["TotalCount"] == 0
    assert d.DescribeDCDBInstances(SearchName="instancename", SearchKey="CONFORM")["TotalCount"] == 1
    assert dcdb(sd, CRED_B).DescribeDCDBInstances()["Instances"][0]["InstanceId"] == INSTANCE_B

    out = d.DescribeDCDBShards(InstanceId=INSTANCE, Limit=2)
    assert out["TotalCount"] == 3 and len(out["Shards"]) == 2, out
    assert out["Shards"][0]["ShardSerialId"] == "set_1700000000_1"
    assert out["Shards"][0]["Range"] == "0-20"
    out = d.DescribeDCDBShards(InstanceId=INSTANCE, Offset=2)
    assert [s["ShardInstanceId"] for s in out["Shards"]] == ["shard-cccccccc"]
    assert out["Shards"][0]["ShardSlaveZones"] == ["ap-guangzhou-1"]

    out = d.DescribeDCDBInstanceNodeInfo(InstanceId=INSTANCE)
    assert out["TotalCount"] == 4, out
    roles = [(n["ShardId"], n["Role"]) for n in out["NodesInfo"]]
    assert roles == [("shard-aaaaaaaa", "master"), ("shard-bbbbbbbb", "master"),
                     ("shard-cccccccc", "master"), ("shard-cccccccc", "slave")]
    assert out["NodesInfo"][3]["NodeId"] == "4ddc0ea18433"
    assert len(d.DescribeDCDBInstanceNodeInfo(InstanceId=INSTANCE, Offset=1, Limit=2)["NodesInfo"]) == 2


def test_kill_session_is_limited_to_20_per_second_per_credential(shards):
    a, b = shards
    sd = Sessiond("dcdb-limits", extra_toml=dcdb_toml(a, b, ACCOUNT_A, ACCOUNT_B)).start()
    try:
        d = dcdb(sd, CRED_A2)
        limited, started = 0, time.monotonic()
        for _ in range(30):
            try:
                d.KillSession(InstanceId=INSTANCE, ShardId="shard-cccccccc", SessionId=[1])
            except TencentCloudSDKException as e:
                assert e.get_code() == "RequestLimitExceeded", e
                assert e.get_request_id()
                limited += 1
        elapsed = time.monotonic() - started
        assert limited >= 1, f"30 calls in {elapsed:.2f} s, none limited"
        assert 30 - limited <= 20 + elapsed * 20 + 1
        # Per credential: the same account's other key still gets through.
        dcdb(sd).KillSession(InstanceId=INSTANCE, ShardId="shard-cccccccc", SessionId=[1])
    finally:
        sd.stop()
