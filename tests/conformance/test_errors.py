"""Error codes of gse.md §7 (decisions) and tencent-api3.md, as the official SDK sees them
(TencentCloudSDKException.get_code()), through every signing mode where the request
encoding matters."""

from __future__ import annotations

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.gse.v20191112 import models

from conftest import (
    ACCOUNT_A,
    CRED_A,
    CRED_A2,
    CRED_B,
    REGION,
    SIGN_MODES,
    SIGN_MODES_HTTP_ENDPOINT,
    active_gss,
    create_asset,
    create_fleet,
    describe_gss,
    end_gss,
    expect_error,
    fake_gss_id,
    player_sessions_of,
    sign_modes,
    wait_gss_status,
)

# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def gse(sessiond):
    return sessiond.gse(CRED_A)


@pytest.fixture(scope="module")
def fleet_id(sessiond, gse):
    asset_id = create_asset(gse, "errors-example")
    fid = create_fleet(gse, asset_id, "errors-fleet", concurrent=4)["FleetId"]
    return fid


@pytest.fixture(scope="module")
def shared_gss(gse, fleet_id):
    """An ACTIVE session (max 20 players) that tests only fail to join or read."""
    g = active_gss(gse, fleet_id, max_players=20, Name="shared")
    yield g
    end_gss(gse, g["GameServerSessionId"])


@pytest.fixture
def new_gss(gse, fleet_id):
    """Factory for ACTIVE sessions owned by one test; they are ended afterwards so their
    processes are replaced for the next test."""
    made = []

    def make(max_players=10, **params):
        g = active_gss(gse, fleet_id, max_players=max_players, **params)
        made.append(g["GameServerSessionId"])
        return g

    yield make
    for gid in made:
        end_gss(gse, gid)


def _batch(gse, gss_id, player_ids, data_map=None):
    req = models.JoinGameServerSessionBatchRequest()
    req.GameServerSessionId = gss_id
    req.PlayerIds = player_ids
    if data_map is not None:
        req.PlayerDataMap = models.PlayerDataMap()
        req.PlayerDataMap.Key, req.PlayerDataMap.Value = data_map
    return gse.send("JoinGameServerSessionBatch", req)


def _join(gse, gss_id, player_id, data=None):
    params = dict(GameServerSessionId=gss_id, PlayerId=player_id)
    if data is not None:
        params["PlayerData"] = data
    return gse.JoinGameServerSession(**params)


# ------------------------------------------------------------------------------ joins


@sign_modes
def test_join_unknown_session_is_resource_not_found(sessiond, fleet_id, sign):
    gse = sessiond.gse(CRED_A, sign)
    gid = fake_gss_id(ACCOUNT_A, fleet_id)
    expect_error("ResourceNotFound", _join, gse, gid, "p1")
    expect_error("ResourceNotFound", _batch, gse, gid, ["p1", "p2"])


@sign_modes
def test_batch_player_id_validation(sessiond, shared_gss, sign):
    gse = sessiond.gse(CRED_A, sign)
    gid = shared_gss["GameServerSessionId"]
    # 26 ids
    expect_error("InvalidParameterValue", _batch, gse, gid, [f"p{i}" for i in range(26)])
    # duplicate ids inside one batch
    expect_error("InvalidParameterValue", _batch, gse, gid, ["dup", "x1", "dup"])
    # PlayerDataMap.Key not one of PlayerIds
    expect_error("InvalidParameterValue", _batch, gse, gid, ["k1", "k2"], ("k3", "v"))
    # an id longer than 1024
    expect_error("InvalidParameterValue", _batch, gse, gid, ["a" * 1025])
    # nothing was created by any of the above
    assert player_sessions_of(gse, gid) == []
    assert describe_gss(gse, gid)["CurrentPlayerSessionCount"] == 0


@sign_modes
def test_batch_player_ids_missing_or_empty(sessiond, shared_gss, sign):
    gse = sessiond.gse(CRED_A, sign)
    gid = shared_gss["GameServerSessionId"]
    expect_error("MissingParameter", gse.call_json, "JoinGameServerSessionBatch",
                 {"GameServerSessionId": gid})
    # an empty list survives only in a TC3 JSON body; GET query and v1 form drop it
    # (tencent-api3.md §5), so there it is a missing parameter
    empty_code = "InvalidParameterValue" if sign.id == "tc3-post" else "MissingParameter"
    expect_error(empty_code, gse.call_json, "JoinGameServerSessionBatch",
                 {"GameServerSessionId": gid, "PlayerIds": []})
    expect_error("InvalidParameterValue", _batch, gse, gid, [""])
    expect_error("MissingParameter", gse.call_json, "JoinGameServerSession",
                 {"GameServerSessionId": gid})
    # PlayerDataMap: Key 1-1024, Value 1-2048
    expect_error("InvalidParameterValue", _batch, gse, gid, ["v1"], ("v1", "x" * 2049))
    # single join: PlayerId <= 1024, PlayerData <= 2048
    expect_error("InvalidParameterValue", _join, gse, gid, "p" * 1025)
    expect_error("InvalidParameterValue", _join, gse, gid, "p1", "x" * 2049)
    assert player_sessions_of(gse, gid) == []


def test_batch_player_data_map_empty_value(sessiond, shared_gss, gse):
    gid = shared_gss["GameServerSessionId"]
    expect_error("InvalidParameterValue", _batch, gse, gid, ["v1"], ("v1", ""))
    expect_error("InvalidParameterValue", _batch, gse, gid, ["v1"], ("", "x"))
    assert player_sessions_of(gse, gid) == []


def test_session_parameter_validation(sessiond, gse, fleet_id, shared_gss):
    gid = shared_gss["GameServerSessionId"]
    expect_error("MissingParameter", gse.call_json, "CreateGameServerSession", {"FleetId": fleet_id})
    expect_error("InvalidParameterValue", gse.UpdateGameServerSession, GameServerSessionId=gid,
                 PlayerSessionCreationPolicy="SOMETIMES")
    expect_error("InvalidParameterValue", gse.UpdateGameServerSession, GameServerSessionId=gid,
                 ProtectionPolicy="MaybeProtection")
    expect_error("ResourceNotFound", gse.UpdateGameServerSession,
                 GameServerSessionId=fake_gss_id(ACCOUNT_A, fleet_id), Name="x")
    after = describe_gss(gse, gid)
    assert after["PlayerSessionCreationPolicy"] == "ACCEPT_ALL" and after["Name"] == "shared", after


def test_player_already_joined_is_failed_operation(sessiond, gse, new_gss):
    g = new_gss(max_players=10)
    gid = g["GameServerSessionId"]
    _join(gse, gid, "dave")
    e = expect_error("FailedOperation", _join, gse, gid, "dave")
    assert "dave" in (e.get_message() or ""), f"message should name the player: {e.get_message()!r}"
    e = expect_error("FailedOperation", _batch, gse, gid, ["erin", "dave"])
    assert "dave" in (e.get_message() or ""), f"message should name the player: {e.get_message()!r}"
    assert [p["PlayerId"] for p in player_sessions_of(gse, gid)] == ["dave"], "batch was not all-or-nothing"
    assert describe_gss(gse, gid)["CurrentPlayerSessionCount"] == 1


@sign_modes
def test_batch_larger_than_free_slots(sessiond, gse, new_gss, sign):
    client = sessiond.gse(CRED_A, sign)
    g = new_gss(max_players=3)
    gid = g["GameServerSessionId"]
    expect_error("ResourceInsufficient", _batch, client, gid, ["a", "b", "c", "d"])
    assert player_sessions_of(gse, gid) == [], "a refused batch created player sessions"
    _batch(client, gid, ["a", "b"])
    expect_error("ResourceInsufficient", _batch, client, gid, ["c", "d"])
    assert sorted(p["PlayerId"] for p in player_sessions_of(gse, gid)) == ["a", "b"]
    assert describe_gss(gse, gid)["CurrentPlayerSessionCount"] == 2
    _join(client, gid, "c")  # exactly the last slot
    expect_error("ResourceInsufficient", _join, client, gid, "d")
    assert describe_gss(gse, gid)["CurrentPlayerSessionCount"] == 3


def test_join_terminated_session_is_resource_unavailable(sessiond, gse, new_gss):
    g = new_gss()
    gid = g["GameServerSessionId"]
    gse.EndGameServerSessionAndProcess(GameServerSessionId=gid)
    wait_gss_status(gse, gid, "TERMINATED")
    expect_error("ResourceUnavailable", _join, gse, gid, "late")
    expect_error("ResourceUnavailable", _batch, gse, gid, ["late1", "late2"])


def test_deny_all_is_unsupported_operation(sessiond, gse, new_gss):
    g = new_gss()
    gid = g["GameServerSessionId"]
    out = gse.UpdateGameServerSession(GameServerSessionId=gid, PlayerSessionCreationPolicy="DENY_ALL")
    assert out["GameServerSession"]["PlayerSessionCreationPolicy"] == "DENY_ALL", out
    expect_error("UnsupportedOperation", _join, gse, gid, "p1")
    expect_error("UnsupportedOperation", _batch, gse, gid, ["p1", "p2"])
    assert player_sessions_of(gse, gid) == []
    # hasAvailablePlayerSessions: count < max and policy ACCEPT_ALL (gse.md §3.6)
    def search(expr):
        out = gse.SearchGameServerSessions(FleetId=g["FleetId"], FilterExpression=expr)
        return [s["GameServerSessionId"] for s in out["GameServerSessions"] or []]
    assert gid in search("hasAvailablePlayerSessions=false")
    assert gid not in search("hasAvailablePlayerSessions=true")
    gse.UpdateGameServerSession(GameServerSessionId=gid, PlayerSessionCreationPolicy="ACCEPT_ALL")
    _join(gse, gid, "p1")


# ------------------------------------------------------------------------------ End


@sign_modes
def test_end_parameter_errors(sessiond, shared_gss, fleet_id, sign):
    gse = sessiond.gse(CRED_A, sign)
    ip = shared_gss["IpAddress"]
    expect_error("InvalidParameterValue", gse.EndGameServerSessionAndProcess, IpAddress=ip, Port=80)
    expect_error("InvalidParameterValue", gse.EndGameServerSessionAndProcess, IpAddress=ip, Port=60001)
    e = expect_error("MissingParameter", gse.EndGameServerSessionAndProcess, IpAddress=ip)
    msg = e.get_message() or ""
    assert "IpAddress" in msg and "Port" in msg, f"message should say both are needed: {msg!r}"
    expect_error("MissingParameter", gse.EndGameServerSessionAndProcess, Port=shared_gss["Port"])
    expect_error("MissingParameter", gse.EndGameServerSessionAndProcess)
    expect_error("InvalidParameterValue", gse.EndGameServerSessionAndProcess,
                 IpAddress="not-an-ip", Port=7777)
    # unknown session / nothing bound to ip:port (ResourceNotFound is not declared here)
    expect_error("InvalidParameterValue", gse.EndGameServerSessionAndProcess,
                 GameServerSessionId=fake_gss_id(ACCOUNT_A, fleet_id))
    expect_error("InvalidParameterValue", gse.EndGameServerSessionAndProcess, IpAddress=ip, Port=1025)
    assert describe_gss(gse, shared_gss["GameServerSessionId"])["Status"] == "ACTIVE"


def test_end_id_and_address_of_different_processes(sessiond, gse, shared_gss, new_gss):
    other = new_gss()
    expect_error(
        "InvalidParameter",
        gse.EndGameServerSessionAndProcess,
        GameServerSessionId=shared_gss["GameServerSessionId"],
        IpAddress=other["IpAddress"],
        Port=other["Port"],
    )
    assert describe_gss(gse, shared_gss["GameServerSessionId"])["Status"] == "ACTIVE"
    assert describe_gss(gse, other["GameServerSessionId"])["Status"] == "ACTIVE"


def test_end_full_protection_is_failed_operation(sessiond, gse, new_gss):
    g = new_gss()
    gid = g["GameServerSessionId"]
    gse.UpdateGameServerSession(GameServerSessionId=gid, ProtectionPolicy="FullProtection")
    ps = _join(gse, gid, "guarded")["PlayerSession"]
    expect_error("FailedOperation", gse.EndGameServerSessionAndProcess, GameServerSessionId=gid)
    expect_error("FailedOperation", gse.EndGameServerSessionAndProcess,
                 IpAddress=g["IpAddress"], Port=g["Port"])
    after = describe_gss(gse, gid)
    assert after["Status"] == "ACTIVE" and after["TerminationTime"] is None, after
    [p] = player_sessions_of(gse, gid)
    assert p["PlayerSessionId"] == ps["PlayerSessionId"] and p["Status"] == "RESERVED", p
    gse.UpdateGameServerSession(GameServerSessionId=gid, ProtectionPolicy="NoProtection")
    gse.EndGameServerSessionAndProcess(GameServerSessionId=gid)
    wait_gss_status(gse, gid, "TERMINATED")


# ------------------------------------------------------------------------------ actions


@sign_modes
def test_unimplemented_and_unknown_actions(sessiond, fleet_id, sign):
    gse = sessiond.gse(CRED_A, sign)
    req = models.CreateAliasRequest()
    req.Name = "alias-1"
    req.RoutingStrategy = models.RoutingStrategy()
    req.RoutingStrategy.Type = "SIMPLE"
    req.RoutingStrategy.FleetId = fleet_id
    e = expect_error("UnsupportedOperation", gse.client.CreateAlias, req)
    assert "CreateAlias" in (e.get_message() or ""), f"message should name the action: {e.get_message()!r}"
    e = expect_error("UnsupportedOperation", gse.call_json, "DescribeFleetUtilization", {})
    assert "DescribeFleetUtilization" in (e.get_message() or ""), e.get_message()
    expect_error("InvalidAction", gse.call_json, "NoSuchGseAction", {})


def test_unknown_parameter(sessiond, gse):
    expect_error("UnknownParameter", gse.call_json, "ListFleets", {"NoSuchParameter": "x"})


# ------------------------------------------------------------------------------ auth


@pytest.mark.parametrize("sign", SIGN_MODES + SIGN_MODES_HTTP_ENDPOINT, ids=lambda s: s.id)
def test_auth_failures(sessiond, fleet_id, sign):
    ok = sessiond.gse(CRED_A, sign)
    assert fleet_id in ok.ListFleets()["FleetIds"]
    wrong_secret = sessiond.gse(CRED_A, sign, secret_key="not-the-secret-key-0123456789")
    expect_error("AuthFailure.SignatureFailure", wrong_secret.ListFleets)
    expect_error("AuthFailure.SignatureFailure", wrong_secret.JoinGameServerSession,
                 GameServerSessionId=fake_gss_id(ACCOUNT_A, fleet_id), PlayerId="p")
    # the key of another credential does not sign for this one
    other_key = sessiond.gse(CRED_A, sign, secret_key=CRED_A2.secret_key)
    expect_error("AuthFailure.SignatureFailure", other_key.ListFleets)
    unknown = sessiond.gse(CRED_A, sign, secret_id="AKIDdoesnotexist000000000")
    expect_error("AuthFailure.SecretIdNotFound", unknown.ListFleets)


@pytest.mark.parametrize("sign", SIGN_MODES, ids=lambda s: s.id)
def test_raw_envelope(sessiond, fleet_id, sign):
    """Tencent quirks 1-2: HTTP 200 and Content-Type exactly application/json, for
    successes and errors alike, and a RequestId in both."""
    gse = sessiond.gse(CRED_A, sign)
    ok = gse.raw("ListFleets", {})
    err = gse.raw("JoinGameServerSession",
                  {"GameServerSessionId": fake_gss_id(ACCOUNT_A, fleet_id), "PlayerId": "p"})
    for resp in (ok, err):
        assert resp.status_code == 200, (resp.status_code, resp.text)
        assert resp.headers.get("Content-Type") == "application/json", resp.headers
        body = resp.json()
        assert set(body) == {"Response"}, body
        assert body["Response"].get("RequestId"), body
    assert "Error" not in ok.json()["Response"]
    error = err.json()["Response"]
    assert set(error) == {"Error", "RequestId"}, error
    assert error["Error"]["Code"] == "ResourceNotFound" and error["Error"]["Message"], error
    assert ok.json()["Response"]["RequestId"] != error["RequestId"]


# ------------------------------------------------------------------------------ accounts


def test_account_isolation(sessiond, gse, fleet_id, shared_gss):
    gid = shared_gss["GameServerSessionId"]
    b = sessiond.gse(CRED_B)
    a2 = sessiond.gse(CRED_A2)

    # a second key of account A sees everything of account A
    assert fleet_id in a2.ListFleets()["FleetIds"]
    assert describe_gss(a2, gid)["Status"] == "ACTIVE"

    # account B sees nothing of account A
    assert fleet_id not in (b.ListFleets()["FleetIds"] or [])
    try:
        out = b.DescribeFleetAttributes(FleetIds=[fleet_id])
        assert not [f for f in out["FleetAttributes"] or [] if f["FleetId"] == fleet_id], out
    except TencentCloudSDKException as e:
        assert e.get_code() == "ResourceNotFound", e
    assets = b.DescribeAssets(AssetRegion=REGION, Offset=0, Limit=100)
    assert not [a for a in assets["Assets"] or [] if a["AssetName"] == "errors-example"], assets
    for call in (
        lambda: b.DescribeGameServerSessions(GameServerSessionId=gid),
        lambda: b.DescribeGameServerSessions(FleetId=fleet_id),
        lambda: b.DescribePlayerSessions(GameServerSessionId=gid),
        lambda: b.SearchGameServerSessions(FleetId=fleet_id),
    ):
        try:
            out = call()
            leaked = out.get("GameServerSessions") or out.get("PlayerSessions") or []
            assert not leaked, f"account B sees account A's data: {out}"
        except TencentCloudSDKException as e:
            assert e.get_code() == "ResourceNotFound", e

    expect_error("ResourceNotFound", _join, b, gid, "intruder")
    expect_error("ResourceNotFound", _batch, b, gid, ["intruder1", "intruder2"])
    expect_error("ResourceNotFound", b.UpdateGameServerSession, GameServerSessionId=gid, Name="stolen")
    expect_error("InvalidParameterValue", b.EndGameServerSessionAndProcess, GameServerSessionId=gid)
    expect_error("ResourceNotFound", b.CreateGameServerSession, FleetId=fleet_id,
                 MaximumPlayerSessionCount=2)
    after = describe_gss(gse, gid)
    assert after["Status"] == "ACTIVE" and after["Name"] == "shared", after
    assert player_sessions_of(gse, gid) == []


# ------------------------------------------------------------------------------ clock, limits


@sign_modes
def test_signature_expired(sessiond, sign, monkeypatch):
    """A client whose clock is 400 s off (window ±300 s) -> AuthFailure.SignatureExpire."""
    import time as real_time

    from tencentcloud.common import abstract_client

    class SkewedClock:
        def __init__(self, skew):
            self.skew = skew

        def time(self):
            return real_time.time() + self.skew

        def __getattr__(self, name):
            return getattr(real_time, name)

    gse = sessiond.gse(CRED_A, sign)
    for skew in (-400, 400):
        monkeypatch.setattr(abstract_client, "time", SkewedClock(skew))
        expect_error("AuthFailure.SignatureExpire", gse.ListFleets)
    monkeypatch.setattr(abstract_client, "time", SkewedClock(-200))  # inside the window
    gse.ListFleets()


def test_rate_limit_per_credential_and_action(sessiond, fleet_id):
    """Default limit: 20 requests/s per SecretId per action (gse.md §7); excess ->
    RequestLimitExceeded. DescribeRuntimeConfiguration is used by no other test with CRED_A2.
    60 calls within one second exceed 20/s under any window or bucket scheme (a fixed
    window straddled by the burst admits at most 40)."""
    import time

    a2 = sessiond.gse(CRED_A2)
    for attempt in range(3):
        codes = []
        started = time.monotonic()
        for _ in range(60):
            try:
                a2.DescribeRuntimeConfiguration(FleetId=fleet_id)
                codes.append("ok")
            except TencentCloudSDKException as e:
                assert e.get_request_id(), "throttled response without RequestId"
                codes.append(e.get_code())
        elapsed = time.monotonic() - started
        if elapsed < 1.0:
            break
    else:
        pytest.fail(f"could not send 60 calls within 1 s (last burst {elapsed:.2f}s)")
    if attempt == 0:
        assert codes[0] == "ok", codes
    assert set(codes) <= {"ok", "RequestLimitExceeded"}, codes
    assert codes.count("ok") <= 40, f"{codes.count('ok')} of 60 calls in {elapsed:.2f}s admitted"
    assert "RequestLimitExceeded" in codes, f"60 calls in {elapsed:.2f}s were never throttled"
    # another credential (same account) and another action are not affected
    sessiond.gse(CRED_A).DescribeRuntimeConfiguration(FleetId=fleet_id)
    a2.ListFleets()
    # and the limit recovers
    time.sleep(1.1)
    a2.DescribeRuntimeConfiguration(FleetId=fleet_id)
