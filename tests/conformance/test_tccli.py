"""The lifecycle core through tccli 3.0.1348.1 (v1 HmacSHA256, POST form, with
``--endpoint http://127.0.0.1:PORT`` so Host and the signed host carry the scheme)."""

from __future__ import annotations

import json
import time

from conftest import (
    ACCOUNT_A,
    ASSET_ID_RE,
    FLEET_ID_RE,
    PSESS_ID_RE,
    REGION,
    fake_gss_id,
    gss_id_re,
    example_runtime,
    wait_until,
)


def _tccli_ok(sd, action, *args):
    return sd.tccli(action, *args).json()


def test_tccli_lifecycle(sessiond):
    sd = sessiond
    out = _tccli_ok(sd, "CreateAsset", "--BucketKey", "example.zip", "--AssetName", "tccli-example",
                    "--AssetVersion", "1.0", "--AssetRegion", REGION, "--OperateSystem", "CentOS7.16")
    asset_id = out["AssetId"]
    assert ASSET_ID_RE.match(asset_id), out

    out = _tccli_ok(sd, "CreateFleet", "--AssetId", asset_id, "--Name", "tccli-fleet",
                    "--FleetType", "ON_DEMAND",
                    "--NewGameServerSessionProtectionPolicy", "NoProtection",
                    "--RuntimeConfiguration", json.dumps(example_runtime(1)))
    fleet_id = out["FleetAttributes"]["FleetId"]
    assert FLEET_ID_RE.match(fleet_id), out
    assert fleet_id in _tccli_ok(sd, "ListFleets")["FleetIds"]

    # CreateGameServerSession: the process needs a moment to call ProcessReady
    deadline = time.monotonic() + 20
    while True:
        r = sd.tccli("CreateGameServerSession", "--FleetId", fleet_id,
                     "--MaximumPlayerSessionCount", "4", "--Name", "tccli-room",
                     "--GameProperties", '[{"Key":"mode","Value":"cli"}]')
        if r.rc == 0:
            gss = r.json()["GameServerSession"]
            break
        code, msg, _ = r.error()
        assert code == "ResourceInsufficient" and time.monotonic() < deadline, (code, msg)
        time.sleep(0.3)
    gid = gss["GameServerSessionId"]
    assert gss_id_re(ACCOUNT_A, fleet_id).match(gid), gss
    assert gss["MaximumPlayerSessionCount"] == 4 and gss["Name"] == "tccli-room", gss

    def status():
        out = _tccli_ok(sd, "DescribeGameServerSessions", "--GameServerSessionId", gid)
        return out["GameServerSessions"][0]["Status"]

    wait_until(lambda: status() == "ACTIVE", 20, "tccli: session ACTIVE", interval=0.2)

    out = _tccli_ok(sd, "JoinGameServerSessionBatch", "--GameServerSessionId", gid,
                    "--PlayerIds", '["p1","p2"]',
                    "--PlayerDataMap", '{"Key":"p1","Value":"lvl=3"}')
    joined = {p["PlayerId"]: p for p in out["PlayerSessions"]}
    assert sorted(joined) == ["p1", "p2"], out
    assert all(p["Status"] == "RESERVED" and PSESS_ID_RE.match(p["PlayerSessionId"])
               for p in joined.values()), out
    assert joined["p1"]["PlayerData"] == "lvl=3", out

    out = _tccli_ok(sd, "DescribePlayerSessions", "--GameServerSessionId", gid)
    assert sorted(p["PlayerSessionId"] for p in out["PlayerSessions"]) == sorted(
        p["PlayerSessionId"] for p in joined.values()), out
    out = _tccli_ok(sd, "DescribePlayerSessions", "--PlayerSessionId", joined["p2"]["PlayerSessionId"])
    assert [p["PlayerId"] for p in out["PlayerSessions"]] == ["p2"], out

    # an error through tccli: the player is already in
    r = sd.tccli("JoinGameServerSession", "--GameServerSessionId", gid, "--PlayerId", "p1")
    code, msg, request_id = r.error()
    assert code == "FailedOperation" and "p1" in msg and request_id, (code, msg, request_id)

    _tccli_ok(sd, "EndGameServerSessionAndProcess", "--GameServerSessionId", gid)
    wait_until(lambda: status() == "TERMINATED", 20, "tccli: session TERMINATED", interval=0.2)
    out = _tccli_ok(sd, "DescribePlayerSessions", "--GameServerSessionId", gid)
    assert {p["Status"] for p in out["PlayerSessions"]} == {"COMPLETED"}, out

    # End by IpAddress + Port on the replacement process's next session
    deadline = time.monotonic() + 20
    while True:
        r = sd.tccli("CreateGameServerSession", "--FleetId", fleet_id, "--MaximumPlayerSessionCount", "2")
        if r.rc == 0:
            g2 = r.json()["GameServerSession"]
            break
        code, msg, _ = r.error()
        assert code == "ResourceInsufficient" and time.monotonic() < deadline, (code, msg)
        time.sleep(0.3)
    gid = g2["GameServerSessionId"]
    wait_until(lambda: status() == "ACTIVE", 20, "tccli: second session ACTIVE", interval=0.2)
    _tccli_ok(sd, "EndGameServerSessionAndProcess", "--IpAddress", g2["IpAddress"],
              "--Port", str(g2["Port"]))
    wait_until(lambda: status() == "TERMINATED", 20, "tccli: second session TERMINATED", interval=0.2)

    _tccli_ok(sd, "DeleteFleet", "--FleetId", fleet_id)
    _tccli_ok(sd, "DeleteAsset", "--AssetId", asset_id)


def test_tccli_errors(sessiond):
    sd = sessiond
    fleet_id = "fleet-00000000-00000000"
    r = sd.tccli("JoinGameServerSessionBatch", "--GameServerSessionId", fake_gss_id(ACCOUNT_A, fleet_id),
                 "--PlayerIds", '["p1","p2"]')
    code, msg, request_id = r.error()
    assert r.rc == 255, r.rc
    assert code == "ResourceNotFound" and request_id, (code, msg, request_id)

    r = sd.tccli("ListFleets", secret_key="definitely-not-the-secret-0123456789")
    code, msg, request_id = r.error()
    assert code == "AuthFailure.SignatureFailure" and request_id, (code, msg, request_id)

    r = sd.tccli("EndGameServerSessionAndProcess", "--IpAddress", "127.0.0.1")
    code, msg, _ = r.error()
    assert code == "MissingParameter", (code, msg)
