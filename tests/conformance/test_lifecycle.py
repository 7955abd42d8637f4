"""The whole GSE lifecycle through the official Python SDK, once per signing mode.

asset -> fleet (2 processes) -> game server sessions -> players (real TCP clients of
the example game server) -> End (by id, by IpAddress+Port) -> process replacement ->
DeleteFleet -> DeleteAsset. Each run gets its own sessiond so that every example game
server process under it belongs to the fleet of that run.
"""

from __future__ import annotations

from conftest import (
    ACCOUNT_A,
    ASSET_ID_RE,
    CRED_A,
    FLEET_ID_RE,
    INSTANCE_ID_RE,
    LAUNCH_PATH,
    PROCESS_EXIT_DEADLINE,
    PSESS_ID_RE,
    PUBLIC_IP,
    REGION,
    TIME_RE,
    Player,
    create_gss,
    describe_gss,
    example_runtime,
    gss_id_re,
    pid_alive,
    pid_listening_on,
    player_session,
    player_sessions_of,
    port_accepts,
    sign_modes,
    wait_gss_status,
    wait_pid_exit,
    wait_ps_status,
    wait_until,
)


# values that need escaping in a query / form and in the v1 sign string
ALICE_DATA = "lvl=1&hp=100 +a/b?c%d é 房间 😀"
GSS_DATA = '{"map": "de_dust2", "rules": "a=b&c=d", "note": "ünïcødé + spaces"}'


def _ids(sessions):
    return [s["GameServerSessionId"] for s in sessions or []]


@sign_modes
def test_full_lifecycle(fresh_sessiond, sign):
    sd = fresh_sessiond
    gse = sd.gse(CRED_A, sign)
    tag = sign.id

    # ---------------------------------------------------------------- assets
    asset_name = f"example-{tag}"
    out = gse.CreateAsset(
        BucketKey="example.zip",
        AssetName=asset_name,
        AssetVersion="1.0",
        AssetRegion=REGION,
        OperateSystem="CentOS7.16",
    )
    asset_id = out["AssetId"]
    assert ASSET_ID_RE.match(asset_id or ""), out
    assert out["AssetArn"], out

    out = gse.DescribeAssets(AssetRegion=REGION, Offset=0, Limit=100)
    assert asset_id in [a["AssetId"] for a in out["Assets"] or []], out
    assert out["TotalCount"] >= 1, out
    out = gse.DescribeAssets(
        AssetRegion=REGION, Offset=0, Limit=100,
        Filters=[{"Key": "resource:name", "Values": [asset_name]}],
    )
    assert [a["AssetId"] for a in out["Assets"]] == [asset_id], out
    assert out["TotalCount"] == 1, out
    out = gse.DescribeAssets(
        AssetRegion=REGION, Offset=0, Limit=100,
        Filters=[{"Key": "resource:resourceId", "Values": [asset_id]}],
    )
    [asset] = out["Assets"]
    assert asset["AssetId"] == asset_id
    assert asset["AssetName"] == asset_name
    assert asset["AssetVersion"] == "1.0"
    assert asset["Stauts"] == 2, f"a directory asset is 'uploaded' (Stauts 2): {asset}"
    assert asset["BindFleetNum"] == 0, asset
    assert TIME_RE.match(asset["CreateTime"] or ""), asset

    # ---------------------------------------------------------------- fleet
    fleet_name = f"fleet-{tag}"
    fa = gse.CreateFleet(
        AssetId=asset_id,
        Name=fleet_name,
        Description="conformance lifecycle",
        FleetType="ON_DEMAND",
        NewGameServerSessionProtectionPolicy="NoProtection",
        RuntimeConfiguration=example_runtime(
            2,
            GameServerSessionActivationTimeoutSeconds=120,
            MaxConcurrentGameServerSessionActivations=2,
        ),
        Tags=[{"Key": "suite", "Value": "conformance"}],
    )["FleetAttributes"]
    fleet_id = fa["FleetId"]
    assert FLEET_ID_RE.match(fleet_id or ""), fa
    assert fa["FleetArn"] == f"qcs::gse:{REGION}:uin/{ACCOUNT_A}:fleet/{fleet_id}", fa
    assert fa["AssetId"] == asset_id, fa
    assert fa["Name"] == fleet_name, fa
    assert fa["Description"] == "conformance lifecycle", fa
    assert fa["NewGameServerSessionProtectionPolicy"] == "NoProtection", fa
    assert TIME_RE.match(fa["CreationTime"] or ""), fa
    assert {"Key": "suite", "Value": "conformance"} in (fa["Tags"] or []), fa

    # the runtime configuration is honoured: two example game server processes run
    wait_until(lambda: len(sd.game_server_pids()) == 2, 15,
               "2 game server processes (ConcurrentExecutions 2)")

    out = gse.DescribeFleetAttributes(FleetIds=[fleet_id])
    assert [f["FleetId"] for f in out["FleetAttributes"]] == [fleet_id], out
    assert out["TotalCount"] == 1, out
    [asset] = gse.DescribeAssets(
        AssetRegion=REGION, Offset=0, Limit=100,
        Filters=[{"Key": "resource:resourceId", "Values": [asset_id]}],
    )["Assets"]
    assert asset["BindFleetNum"] == 1, asset

    out = gse.ListFleets()
    assert fleet_id in out["FleetIds"], out
    assert out["TotalCount"] >= 1, out
    out = gse.ListFleets(AssetId=asset_id)
    assert out["FleetIds"] == [fleet_id], out
    out = gse.ListFleets(Filters=[{"Key": "resource:name", "Values": [fleet_name]}])
    assert out["FleetIds"] == [fleet_id], out
    assert out["TotalCount"] == 1, out
    out = gse.ListFleets(Filters=[{"Key": "tag:key", "Values": ["suite"]}])
    assert out["FleetIds"] == [fleet_id], out
    out = gse.ListFleets(Filters=[{"Key": "tag:key-value", "Values": ["suite:conformance"]}])
    assert out["FleetIds"] == [fleet_id], out
    out = gse.ListFleets(Filters=[{"Key": "tag:key-value", "Values": ["suite:other"]}])
    assert out["FleetIds"] in ([], None), out
    out = gse.ListFleets(Filters=[{"Key": "resource:name", "Values": ["no-such-fleet"]}])
    assert out["FleetIds"] in ([], None) and out["TotalCount"] == 0, out

    rc = gse.DescribeRuntimeConfiguration(FleetId=fleet_id)["RuntimeConfiguration"]
    assert rc["ServerProcesses"] == [
        {"LaunchPath": LAUNCH_PATH, "Parameters": "", "ConcurrentExecutions": 2}
    ], rc
    assert rc["GameServerSessionActivationTimeoutSeconds"] == 120, rc
    new_rc = example_runtime(
        2, GameServerSessionActivationTimeoutSeconds=300, MaxConcurrentGameServerSessionActivations=1
    )
    rc = gse.UpdateRuntimeConfiguration(FleetId=fleet_id, RuntimeConfiguration=new_rc)[
        "RuntimeConfiguration"
    ]
    assert rc["GameServerSessionActivationTimeoutSeconds"] == 300, rc
    assert rc["MaxConcurrentGameServerSessionActivations"] == 1, rc
    rc = gse.DescribeRuntimeConfiguration(FleetId=fleet_id)["RuntimeConfiguration"]
    assert rc["GameServerSessionActivationTimeoutSeconds"] == 300, rc
    assert rc["MaxConcurrentGameServerSessionActivations"] == 1, rc
    assert rc["ServerProcesses"][0]["ConcurrentExecutions"] == 2, rc

    out = gse.DescribeInstances(FleetId=fleet_id, Offset=0, Limit=10)
    assert out["Instances"], out
    assert out["TotalCount"] == len(out["Instances"]), out
    for ins in out["Instances"]:
        assert ins["FleetId"] == fleet_id, ins
        assert INSTANCE_ID_RE.match(ins["InstanceId"] or ""), ins
        assert ins["IpAddress"] == PUBLIC_IP, ins
    first = out["Instances"][0]
    out = gse.DescribeInstances(FleetId=fleet_id, InstanceId=first["InstanceId"])
    assert [i["InstanceId"] for i in out["Instances"]] == [first["InstanceId"]], out
    out = gse.DescribeInstances(FleetId=fleet_id, IpAddress=PUBLIC_IP)
    assert first["InstanceId"] in [i["InstanceId"] for i in out["Instances"]], out

    # ---------------------------------------------------------------- game server sessions
    gss_re = gss_id_re(ACCOUNT_A, fleet_id)
    g1 = create_gss(
        gse,
        FleetId=fleet_id,
        MaximumPlayerSessionCount=4,
        Name=f"room-a-{tag}",
        CreatorId="creator-1",
        GameProperties=[{"Key": "mode", "Value": "duel"}],
        GameServerSessionData=GSS_DATA,
    )
    g1_id = g1["GameServerSessionId"]
    assert gss_re.match(g1_id or ""), g1
    assert g1["Status"] in ("ACTIVATING", "ACTIVE"), g1
    assert g1["FleetId"] == fleet_id, g1
    assert g1["MaximumPlayerSessionCount"] == 4, g1
    assert g1["CurrentPlayerSessionCount"] == 0, g1
    assert g1["Name"] == f"room-a-{tag}", g1
    assert g1["CreatorId"] == "creator-1", g1
    assert g1["GameProperties"] == [{"Key": "mode", "Value": "duel"}], g1
    assert g1["GameServerSessionData"] == GSS_DATA, g1
    assert g1["IpAddress"] == PUBLIC_IP, g1
    assert isinstance(g1["Port"], int) and 1 <= g1["Port"] <= 60000, g1
    assert TIME_RE.match(g1["CreationTime"] or ""), g1
    assert g1["TerminationTime"] is None, g1
    assert g1["PlayerSessionCreationPolicy"] in (None, "ACCEPT_ALL"), g1

    g1 = wait_gss_status(gse, g1_id, "ACTIVE")
    assert g1["PlayerSessionCreationPolicy"] == "ACCEPT_ALL", g1
    # raw wire shape: numbers are JSON numbers, times UTC seconds, unset = null
    raw = gse.call_json("DescribeGameServerSessions", {"GameServerSessionId": g1_id})
    rg = raw["GameServerSessions"][0]
    assert type(rg["Port"]) is int and type(rg["MaximumPlayerSessionCount"]) is int, rg
    assert type(rg["CurrentPlayerSessionCount"]) is int, rg
    assert TIME_RE.match(rg["CreationTime"]) and rg["TerminationTime"] is None, rg

    # the fleet is ACTIVE once its processes are ready
    fa = gse.DescribeFleetAttributes(FleetIds=[fleet_id])["FleetAttributes"][0]
    assert fa["Status"] == "ACTIVE", fa

    g2 = create_gss(
        gse,
        FleetId=fleet_id,
        MaximumPlayerSessionCount=10,
        Name=f"room-b-{tag}",
        GameProperties=[{"Key": "mode", "Value": "ffa"}],
    )
    g2_id = g2["GameServerSessionId"]
    g2 = wait_gss_status(gse, g2_id, "ACTIVE")
    assert g2["Port"] != g1["Port"], "two sessions on one process port"

    out = gse.DescribeGameServerSessions(FleetId=fleet_id)
    assert sorted(_ids(out["GameServerSessions"])) == sorted([g1_id, g2_id]), out
    out = gse.DescribeGameServerSessions(FleetId=fleet_id, StatusFilter="ACTIVE")
    assert sorted(_ids(out["GameServerSessions"])) == sorted([g1_id, g2_id]), out
    out = gse.DescribeGameServerSessions(FleetId=fleet_id, StatusFilter="TERMINATED")
    assert _ids(out["GameServerSessions"]) == [], out
    out = gse.DescribeGameServerSessions(FleetId=fleet_id, Limit=1)
    assert len(out["GameServerSessions"]) == 1 and out["NextToken"], out
    page2 = gse.DescribeGameServerSessions(FleetId=fleet_id, Limit=1, NextToken=out["NextToken"])
    assert sorted(_ids(out["GameServerSessions"]) + _ids(page2["GameServerSessions"])) == sorted(
        [g1_id, g2_id]
    ), (out, page2)
    assert not page2["NextToken"], page2

    details = gse.DescribeGameServerSessionDetails(GameServerSessionId=g1_id)
    [d] = details["GameServerSessionDetails"]
    assert d["GameServerSession"]["GameServerSessionId"] == g1_id, d
    assert d["GameServerSession"]["Status"] == "ACTIVE", d
    assert d["ProtectionPolicy"] == "NoProtection", d

    # ---------------------------------------------------------------- search
    def search(**kw):
        return _ids(gse.SearchGameServerSessions(FleetId=fleet_id, **kw)["GameServerSessions"])

    assert search(FilterExpression="gameServerSessionProperties.mode = 'duel'") == [g1_id]
    assert search(FilterExpression="gameServerSessionProperties.mode=ffa") == [g2_id]
    assert search(FilterExpression="maximumSessions>=5 AND hasAvailablePlayerSessions=true") == [g2_id]
    assert search(FilterExpression="NOT (maximumSessions > 4)") == [g1_id]
    assert search(FilterExpression=f"gameServerSessionName = 'room-b-{tag}' OR maximumSessions < 0") == [g2_id]
    assert search(FilterExpression="playerSessionCount=0", SortExpression="maximumSessions DESC") == [g2_id, g1_id]
    assert search(FilterExpression="playerSessionCount=0", SortExpression="maximumSessions ASC") == [g1_id, g2_id]
    assert search(SortExpression="creationTimeMillis ASC") == [g1_id, g2_id]
    assert search(FilterExpression="creationTimeMillis > 0 AND maximumSessions <> 4") == [g2_id]
    assert search(FilterExpression="gameServerSessionProperties.mode = 'none'") == []
    # precedence (gse.md §3.6, as GameLift): NOT, then AND, then OR
    assert search(FilterExpression=(
        "maximumSessions>=10 OR maximumSessions<=4 AND gameServerSessionName='nomatch'"
    )) == [g2_id]
    assert search(FilterExpression=(
        "NOT maximumSessions>=10 AND playerSessionCount=0"
    )) == [g1_id]
    # the documented example parses
    documented = (
        "(maximumSessions>=10 OR playerSessionCount=0) OR NOT (creationTimeMillis>1575518668000) "
        "OR (maximumSessions>=10 AND hasAvailablePlayerSessions=true)"
    )
    assert sorted(search(FilterExpression=documented)) == sorted([g1_id, g2_id])
    page = gse.SearchGameServerSessions(FleetId=fleet_id, SortExpression="maximumSessions DESC", Limit=1)
    assert _ids(page["GameServerSessions"]) == [g2_id] and page["NextToken"], page
    page = gse.SearchGameServerSessions(FleetId=fleet_id, SortExpression="maximumSessions DESC", Limit=1,
                                        NextToken=page["NextToken"])
    assert _ids(page["GameServerSessions"]) == [g1_id] and not page["NextToken"], page

    # ---------------------------------------------------------------- update
    upd = gse.UpdateGameServerSession(
        GameServerSessionId=g1_id,
        Name=f"room-a2-{tag}",
        MaximumPlayerSessionCount=5,
        PlayerSessionCreationPolicy="ACCEPT_ALL",
        ProtectionPolicy="TimeLimitProtection",
    )["GameServerSession"]
    assert upd["GameServerSessionId"] == g1_id, upd
    assert upd["Name"] == f"room-a2-{tag}", upd
    assert upd["MaximumPlayerSessionCount"] == 5, upd
    [d] = gse.DescribeGameServerSessionDetails(GameServerSessionId=g1_id)["GameServerSessionDetails"]
    assert d["ProtectionPolicy"] == "TimeLimitProtection", d
    assert d["GameServerSession"]["Name"] == f"room-a2-{tag}", d
    assert search(FilterExpression=f"gameServerSessionName = 'room-a2-{tag}'") == [g1_id]

    # ---------------------------------------------------------------- players
    ps = gse.JoinGameServerSession(
        GameServerSessionId=g1_id, PlayerId="alice", PlayerData=ALICE_DATA
    )["PlayerSession"]
    alice = ps["PlayerSessionId"]
    assert PSESS_ID_RE.match(alice or ""), ps
    assert ps["Status"] == "RESERVED", ps
    assert ps["PlayerId"] == "alice" and ps["PlayerData"] == ALICE_DATA, ps
    assert player_session(gse, alice)["PlayerData"] == ALICE_DATA
    assert ps["GameServerSessionId"] == g1_id and ps["FleetId"] == fleet_id, ps
    assert ps["IpAddress"] == g1["IpAddress"] and ps["Port"] == g1["Port"], ps
    assert TIME_RE.match(ps["CreationTime"] or "") and ps["TerminationTime"] is None, ps

    from tencentcloud.gse.v20191112 import models

    req = models.JoinGameServerSessionBatchRequest()
    req.GameServerSessionId = g1_id
    req.PlayerIds = ["bob", "carol"]
    req.PlayerDataMap = models.PlayerDataMap()
    req.PlayerDataMap.Key = "bob"
    req.PlayerDataMap.Value = "team=red"
    batch = gse.send("JoinGameServerSessionBatch", req)["PlayerSessions"]
    assert sorted(p["PlayerId"] for p in batch) == ["bob", "carol"], batch
    by_player = {p["PlayerId"]: p for p in batch}
    assert all(p["Status"] == "RESERVED" for p in batch), batch
    assert all(PSESS_ID_RE.match(p["PlayerSessionId"] or "") for p in batch), batch
    assert by_player["bob"]["PlayerData"] == "team=red", batch
    assert by_player["carol"]["PlayerData"] in (None, ""), batch
    bob, carol = by_player["bob"]["PlayerSessionId"], by_player["carol"]["PlayerSessionId"]
    assert describe_gss(gse, g1_id)["CurrentPlayerSessionCount"] == 3

    ip, port = g1["IpAddress"], g1["Port"]
    # a stranger with an unknown player session id is turned away
    stranger = Player(ip, port, "psess-00000000-0000-0000-0000-000000000000")
    assert stranger.reply.startswith("ERR"), stranger.reply
    stranger.close()

    p_alice = Player(ip, port, alice)
    try:
        assert p_alice.reply == "OK", p_alice.reply
        wait_ps_status(gse, alice, "ACTIVE")
        assert describe_gss(gse, g1_id)["CurrentPlayerSessionCount"] == 3
    finally:
        p_alice.close()
    done = wait_ps_status(gse, alice, "COMPLETED")
    assert TIME_RE.match(done["TerminationTime"] or ""), done
    # a completed player session does not get in again
    again = Player(ip, port, alice)
    assert again.reply.startswith("ERR"), again.reply
    again.close()
    assert player_session(gse, alice)["Status"] == "COMPLETED"
    # a player session of another game server session is refused on this one
    zed = gse.JoinGameServerSession(GameServerSessionId=g2_id, PlayerId="zed")["PlayerSession"]
    wrong = Player(ip, port, zed["PlayerSessionId"])
    assert wrong.reply.startswith("ERR"), wrong.reply
    wrong.close()
    assert player_session(gse, zed["PlayerSessionId"])["Status"] == "RESERVED"
    wait_until(lambda: describe_gss(gse, g1_id)["CurrentPlayerSessionCount"] == 2, 5,
               "CurrentPlayerSessionCount 2 after alice left")

    # paging and filters
    seen, token, pages = [], None, 0
    while True:
        params = dict(GameServerSessionId=g1_id, Limit=1)
        if token:
            params["NextToken"] = token
        page = gse.DescribePlayerSessions(**params)
        assert len(page["PlayerSessions"] or []) <= 1, page
        seen += [p["PlayerSessionId"] for p in page["PlayerSessions"] or []]
        token = page["NextToken"]
        pages += 1
        assert pages <= 5, "paging with Limit=1 over 3 sessions does not end"
        if not token:
            break
    assert sorted(seen) == sorted([alice, bob, carol]), seen
    assert len(seen) == 3, f"duplicates across pages: {seen}"
    page = gse.DescribePlayerSessions(GameServerSessionId=g1_id, Limit=2)
    assert len(page["PlayerSessions"]) == 2 and page["NextToken"], page
    rest = gse.DescribePlayerSessions(GameServerSessionId=g1_id, Limit=2, NextToken=page["NextToken"])
    assert len(rest["PlayerSessions"]) == 1 and not rest["NextToken"], rest
    reserved = player_sessions_of(gse, g1_id, PlayerSessionStatusFilter="RESERVED")
    assert sorted(p["PlayerSessionId"] for p in reserved) == sorted([bob, carol]), reserved
    out = gse.DescribePlayerSessions(PlayerId="bob")
    assert [p["PlayerSessionId"] for p in out["PlayerSessions"]] == [bob], out

    # ---------------------------------------------------------------- End by id
    p_bob = Player(ip, port, bob)
    assert p_bob.reply == "OK", p_bob.reply
    wait_ps_status(gse, bob, "ACTIVE")
    g1_pid = pid_listening_on(port)
    assert g1_pid and pid_alive(g1_pid), f"no process listens on the session port {port}"
    sd.remember_pid(g1_pid)
    try:
        gse.EndGameServerSessionAndProcess(GameServerSessionId=g1_id)
        ended = wait_gss_status(gse, g1_id, "TERMINATED")
        assert TIME_RE.match(ended["TerminationTime"] or ""), ended
        assert ended["CurrentPlayerSessionCount"] == 0, ended
        for psid in (bob, carol):
            p = wait_ps_status(gse, psid, "COMPLETED")
            assert TIME_RE.match(p["TerminationTime"] or ""), p
        assert player_session(gse, alice)["Status"] == "COMPLETED"
        wait_pid_exit(g1_pid, PROCESS_EXIT_DEADLINE, "game server of the ended session")
        assert p_bob.wait_closed_by_server(3), "player connection still open after its process exited"
    finally:
        p_bob.close()
    assert not port_accepts(ip, port), f"session port {port} still accepts connections"
    # idempotent on a TERMINATED session
    gse.EndGameServerSessionAndProcess(GameServerSessionId=g1_id)
    assert describe_gss(gse, g1_id)["Status"] == "TERMINATED"

    # ---------------------------------------------------------------- End by IpAddress + Port
    ps = gse.JoinGameServerSession(GameServerSessionId=g2_id, PlayerId="dave")["PlayerSession"]
    g2_pid = pid_listening_on(g2["Port"])
    assert g2_pid and pid_alive(g2_pid), f"no process listens on the session port {g2['Port']}"
    sd.remember_pid(g2_pid)
    gse.EndGameServerSessionAndProcess(IpAddress=g2["IpAddress"], Port=g2["Port"])
    ended = wait_gss_status(gse, g2_id, "TERMINATED")
    assert TIME_RE.match(ended["TerminationTime"] or ""), ended
    wait_ps_status(gse, ps["PlayerSessionId"], "COMPLETED")
    wait_ps_status(gse, zed["PlayerSessionId"], "COMPLETED")
    wait_pid_exit(g2_pid, PROCESS_EXIT_DEADLINE, "game server ended by IpAddress+Port")

    # ---------------------------------------------------------------- replacement processes
    wait_until(lambda: len(sd.game_server_pids()) == 2, 15,
               "2 new game server processes replacing the ended ones")
    g3 = create_gss(gse, FleetId=fleet_id, MaximumPlayerSessionCount=2, Name=f"room-c-{tag}")
    g3_id = g3["GameServerSessionId"]
    g3 = wait_gss_status(gse, g3_id, "ACTIVE")
    g3_pid = pid_listening_on(g3["Port"])
    assert g3_pid and g3_pid not in (g1_pid, g2_pid), (g3_pid, g1_pid, g2_pid)
    gse.EndGameServerSessionAndProcess(GameServerSessionId=g3_id)
    wait_gss_status(gse, g3_id, "TERMINATED")

    # ---------------------------------------------------------------- teardown via the API
    gse.DeleteFleet(FleetId=fleet_id)

    def fleet_gone():
        out = gse.DescribeFleetAttributes(FleetIds=[fleet_id])
        attrs = [f for f in out["FleetAttributes"] or [] if f["FleetId"] == fleet_id]
        return not attrs or attrs[0]["Status"] in ("DELETING", "TERMINATED")

    wait_until(fleet_gone, 15, f"fleet {fleet_id} to be deleted")
    wait_until(lambda: not sd.game_server_pids(), PROCESS_EXIT_DEADLINE,
               "every game server process of the deleted fleet to exit")

    gse.DeleteAsset(AssetId=asset_id)
    out = gse.DescribeAssets(AssetRegion=REGION, Offset=0, Limit=100)
    assert asset_id not in [a["AssetId"] for a in out["Assets"] or []], out
