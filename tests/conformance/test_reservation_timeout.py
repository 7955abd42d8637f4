"""RESERVED player sessions time out (gse.md §5.2, §7) — with the reservation shortened
to SESSIOND_RESERVATION_SECONDS by this module's sessiond config."""

from __future__ import annotations

import time

from conftest import (
    CRED_A,
    TIME_RE,
    Player,
    active_gss,
    create_asset,
    create_fleet,
    describe_gss,
    expect_error,
    player_session,
    player_sessions_of,
    wait_ps_status,
    wait_until,
)

SESSIOND_RESERVATION_SECONDS = 2


def test_reserved_player_session_times_out(sessiond):
    gse = sessiond.gse(CRED_A)
    asset_id = create_asset(gse, "timeout-example")
    fleet_id = create_fleet(gse, asset_id, "timeout-fleet", concurrent=1)["FleetId"]
    g = active_gss(gse, fleet_id, max_players=1)
    gid = g["GameServerSessionId"]

    joined_at = time.monotonic()
    late = gse.JoinGameServerSession(GameServerSessionId=gid, PlayerId="late")["PlayerSession"]
    assert late["Status"] == "RESERVED", late
    # the reservation holds the only slot while it lasts
    expect_error("ResourceInsufficient", gse.JoinGameServerSession, GameServerSessionId=gid,
                 PlayerId="other")

    timed_out = wait_ps_status(gse, late["PlayerSessionId"], "TIMEDOUT",
                               timeout=SESSIOND_RESERVATION_SECONDS + 8)
    waited = time.monotonic() - joined_at
    assert waited >= SESSIOND_RESERVATION_SECONDS - 0.5, f"timed out after only {waited:.1f}s"
    assert TIME_RE.match(timed_out["TerminationTime"] or ""), timed_out
    timedout = player_sessions_of(gse, gid, PlayerSessionStatusFilter="TIMEDOUT")
    assert [p["PlayerSessionId"] for p in timedout] == [late["PlayerSessionId"]], timedout
    # the slot is free at once
    assert describe_gss(gse, gid)["CurrentPlayerSessionCount"] == 0

    # a timed-out reservation cannot be used to get in any more
    p = Player(g["IpAddress"], g["Port"], late["PlayerSessionId"])
    try:
        assert p.reply.startswith("ERR"), p.reply
    finally:
        p.close()
    assert player_session(gse, late["PlayerSessionId"])["Status"] == "TIMEDOUT"

    # a player who connects in time is ACTIVE and stays so past the reservation window
    other = gse.JoinGameServerSession(GameServerSessionId=gid, PlayerId="other")["PlayerSession"]
    p = Player(g["IpAddress"], g["Port"], other["PlayerSessionId"])
    try:
        assert p.reply == "OK", p.reply
        wait_ps_status(gse, other["PlayerSessionId"], "ACTIVE", timeout=5)
        accepted_at = time.monotonic()
        while time.monotonic() - accepted_at < SESSIOND_RESERVATION_SECONDS + 1.5:
            ps = player_session(gse, other["PlayerSessionId"])
            assert ps["Status"] == "ACTIVE", (
                f"an accepted player session (connection still open) became {ps['Status']} "
                f"{time.monotonic() - accepted_at:.1f}s after it was accepted: {ps}; "
                f"its game server session: {describe_gss(gse, gid)}"
            )
            time.sleep(0.25)
        assert describe_gss(gse, gid)["CurrentPlayerSessionCount"] == 1
    finally:
        p.close()
    wait_ps_status(gse, other["PlayerSessionId"], "COMPLETED")
    wait_until(lambda: describe_gss(gse, gid)["CurrentPlayerSessionCount"] == 0, 5,
               "the slot to be freed after the player left")
