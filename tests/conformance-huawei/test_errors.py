"""DCS error cases as the official SDK sees them: ClientRequestException (4xx) or
ServerResponseException (5xx) with status_code, error_code, error_msg and request_id."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcore.signer import signer as sdk_signer
from huaweicloudsdkdcs.v2 import (
    HangUpClientsRequest,
    HangUpClientsRequestBody,
    ListClientsRequest,
    ShowInstanceRequest,
    ShowJobInfoRequest,
)

from conftest import CRED_A, CRED_B, INSTANCE, INSTANCE_B, new_uuid


def expect(code: str, status: int, fn, *args, **kwargs):
    with pytest.raises(exceptions.ServiceResponseException) as ei:
        fn(*args, **kwargs)
    e = ei.value
    assert (e.status_code, e.error_code) == (status, code), f"{e.status_code} {e.error_code}: {e.error_msg}"
    assert e.request_id, "no X-Request-Id"
    if status < 500:
        assert isinstance(e, exceptions.ClientRequestException)
    else:
        assert isinstance(e, exceptions.ServerResponseException)
    return e


def kill(client, node_id="node-master", addrs=("10.0.0.1:1",), instance=INSTANCE):
    return client.hang_up_clients(HangUpClientsRequest(
        instance_id=instance, body=HangUpClientsRequestBody(node_id=node_id, client_addrs=list(addrs))))


def test_signature_failures(sessiond):
    e = expect("APIGW.0301", 401, kill, sessiond.client(sk="wrong-secret"))
    assert "signature" in e.error_msg
    stranger = sessiond.client(CRED_A.__class__("HWAKnobody", "x", CRED_A.project))
    expect("APIGW.0301", 401, stranger.show_instance, ShowInstanceRequest(instance_id=INSTANCE))


@pytest.mark.parametrize("skew_minutes", [16, -16])
def test_expired_sdk_date(sessiond, monkeypatch, skew_minutes):
    real = dt.datetime

    class Skewed(dt.datetime):
        @classmethod
        def utcnow(cls):
            return real.utcnow() + dt.timedelta(minutes=skew_minutes)

    monkeypatch.setattr(sdk_signer, "datetime", Skewed)
    e = expect("APIGW.0301", 401, sessiond.client().show_instance, ShowInstanceRequest(instance_id=INSTANCE))
    assert "expired" in e.error_msg


def test_within_the_window_is_fine(sessiond, monkeypatch):
    real = dt.datetime

    class Skewed(dt.datetime):
        @classmethod
        def utcnow(cls):
            return real.utcnow() + dt.timedelta(minutes=14)

    monkeypatch.setattr(sdk_signer, "datetime", Skewed)
    assert sessiond.client().show_instance(ShowInstanceRequest(instance_id=INSTANCE)).status == "RUNNING"


def test_projects(sessiond):
    # B's key naming A's project; A's key without a project id (literal {project_id} path).
    expect("DCS.1004", 401, sessiond.client(CRED_B, project=CRED_A.project).show_instance,
           ShowInstanceRequest(instance_id=INSTANCE))
    e = expect("DCS.1004", 401, sessiond.client(project=None).show_instance,
               ShowInstanceRequest(instance_id=INSTANCE))
    assert "{project_id}" in e.error_msg
    # Another project's instance is simply not there.
    expect("DCS.3022", 404, sessiond.client().show_instance, ShowInstanceRequest(instance_id=INSTANCE_B))
    expect("DCS.3022", 404, sessiond.client(CRED_B).show_instance, ShowInstanceRequest(instance_id=INSTANCE))
    assert sessiond.client(CRED_B).show_instance(ShowInstanceRequest(instance_id=INSTANCE_B)).name == "other"


def test_resources_and_parameters(dcs):
    expect("DCS.3022", 404, kill, dcs, instance=new_uuid())
    expect("DCS.3022", 404, dcs.show_instance, ShowInstanceRequest(instance_id="nope"))
    e = expect("DCS.3053", 400, kill, dcs, node_id="node-unknown")
    assert "node-unknown" in e.error_msg
    e = expect("DCS.4800", 400, kill, dcs, addrs=["127.0.0.1:1", "not-an-address"])
    assert "client_addrs[1]" in e.error_msg
    expect("DCS.4800", 400, kill, dcs, addrs=[])
    expect("DCS.4800", 400, kill, dcs, addrs=[f"10.0.0.1:{p}" for p in range(1, 1002)])
    expect("DCS.4800", 400, dcs.list_clients, ListClientsRequest(instance_id=INSTANCE, node_id="node-master", limit=1001))
    expect("DCS.4800", 400, dcs.list_clients, ListClientsRequest(instance_id=INSTANCE, node_id="node-master", sort="color"))
    expect("DCS.4001", 404, dcs.show_job_info, ShowJobInfoRequest(job_id=new_uuid()))


def test_a_hung_node_is_answered_within_the_timeout(dcs, redis_nodes):
    _, replica = redis_nodes
    replica.pause()
    try:
        started = time.monotonic()
        e = expect("DCS.5000", 500, dcs.list_clients, ListClientsRequest(instance_id=INSTANCE, node_id="node-replica"))
        assert time.monotonic() - started < 5
        assert "node-replica" in e.error_msg
    finally:
        replica.resume()
