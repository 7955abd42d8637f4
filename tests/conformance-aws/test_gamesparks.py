"""sessiond's GameSparks API through boto3 1.28.66 / botocore 1.31.66, unchanged, and its player
runtime through real WebSocket clients."""

from __future__ import annotations

import datetime
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_A, KEY_A, KEY_B, REGION, ROLE, GameClient, client, start


def error_of(excinfo) -> tuple[str, str, int]:
    e = excinfo.value
    return (
        e.response["Error"]["Code"],
        e.response["Error"]["Message"],
        e.response["ResponseMetadata"]["HTTPStatusCode"],
    )


def new_game(gs, name: str | None = None) -> str:
    name = name or f"g-{uuid.uuid4().hex[:12]}"
    gs.create_game(GameName=name)
    return name


def new_stage(gs, game: str, stage: str = "Dev") -> str:
    out = gs.create_stage(GameName=game, StageName=stage, Role=ROLE)
    return out["Stage"]["GameKey"]


def test_games_stages_and_tags(gs):
    name = f"arena-{uuid.uuid4().hex[:8]}"
    out = gs.create_game(GameName=name, Description="first", Tags={"team": "red"})
    assert out["ResponseMetadata"]["RequestId"]
    game = out["Game"]
    assert game["Name"] == name
    assert game["Arn"] == f"arn:aws:gamesparks:{REGION}:{ACCOUNT_A}:game/{name}"
    assert game["State"] == "ACTIVE"
    assert game["Tags"] == {"team": "red"}
    assert isinstance(game["Created"], datetime.datetime)
    assert game["Created"].tzinfo is not None

    with pytest.raises(ClientError) as ei:
        gs.create_game(GameName=name)
    assert error_of(ei)[0] == "ConflictException"
    assert error_of(ei)[2] == 409

    assert gs.update_game(GameName=name, Description="second")["Game"]["Description"] == "second"
    assert gs.get_game(GameName=name)["Game"]["Description"] == "second"

    # Stages and the paginator.
    keys = set()
    for s in ("S1", "S2", "S3"):
        keys.add(new_stage(gs, name, s))
    assert len(keys) == 3
    pages = list(gs.get_paginator("list_stages").paginate(GameName=name, PaginationConfig={"PageSize": 2}))
    assert [len(p["Stages"]) for p in pages] == [2, 1]
    assert [s["Name"] for p in pages for s in p["Stages"]] == ["S1", "S2", "S3"]
    assert {s["GameKey"] for p in pages for s in p["Stages"]} == keys
    stage = gs.get_stage(GameName=name, StageName="S1")["Stage"]
    assert stage["Role"] == ROLE
    assert stage["Arn"].endswith(f":game/{name}/stage/S1")
    other_role = "arn:aws:iam::111122223333:role/Other"
    assert gs.update_stage(GameName=name, StageName="S1", Role=other_role)["Stage"]["Role"] == other_role

    # Tags on the stage ARN (a URI label with ':' and '/').
    gs.tag_resource(ResourceArn=stage["Arn"], tags={"a": "1", "b": "2"})
    gs.untag_resource(ResourceArn=stage["Arn"], tagKeys=["a"])
    assert gs.list_tags_for_resource(ResourceArn=stage["Arn"])["tags"] == {"b": "2"}
    assert gs.list_tags_for_resource(ResourceArn=game["Arn"])["tags"] == {"team": "red"}

    games = [g["Name"] for p in gs.get_paginator("list_games").paginate(PaginationConfig={"PageSize": 1})
             for g in p["Games"]]
    assert name in games

    with pytest.raises(ClientError) as ei:
        gs.delete_game(GameName=name)
    assert error_of(ei)[0] == "ConflictException"
    for s in ("S1", "S2", "S3"):
        gs.delete_stage(GameName=name, StageName=s)
    gs.delete_game(GameName=name)
    with pytest.raises(ClientError) as ei:
        gs.get_game(GameName=name)
    assert error_of(ei)[:3:2] == ("ResourceNotFoundException", 404)


def test_isolation_between_accounts(sessiond, gs):
    name = new_game(gs)
    other = client(sessiond, KEY_B)
    with pytest.raises(ClientError) as ei:
        other.get_game(GameName=name)
    assert error_of(ei)[0] == "ResourceNotFoundException"
    arn = f"arn:aws:gamesparks:{REGION}:{ACCOUNT_A}:game/{name}"
    with pytest.raises(ClientError) as ei:
        other.list_tags_for_resource(ResourceArn=arn)
    assert error_of(ei)[0] == "ResourceNotFoundException"
    assert name not in [g["Name"] for g in other.list_games()["Games"]]


def test_disconnect_player_closes_that_players_connections(sessiond, gs):
    game = new_game(gs)
    key = new_stage(gs, game)
    alice = GameClient(sessiond, key)
    alice2 = GameClient(sessiond, key, alice.token)
    bob = GameClient(sessiond, key)
    assert alice2.player_id == alice.player_id != bob.player_id
    try:
        conns = gs.get_player_connection_status(GameName=game, StageName="Dev", PlayerId=alice.player_id)[
            "Connections"
        ]
        assert sorted(c["Id"] for c in conns) == sorted([alice.connection_id, alice2.connection_id])
        for c in conns:
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", c["Id"])
            age = datetime.datetime.now(datetime.timezone.utc) - c["Created"]
            assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1), c["Created"]

        out = gs.disconnect_player(GameName=game, StageName="Dev", PlayerId=alice.player_id)
        assert sorted(out["DisconnectSuccesses"]) == sorted([alice.connection_id, alice2.connection_id])
        assert out["DisconnectFailures"] == []
        for p in (alice, alice2):
            code, reason = p.wait_close()
            assert code == 4000
            assert "DisconnectPlayer" in reason
        assert bob.ping()["type"] == "pong"
        assert gs.get_player_connection_status(GameName=game, StageName="Dev", PlayerId=alice.player_id)[
            "Connections"
        ] == []

        # Idempotent; a player with no connections gets two empty lists.
        for player in (alice.player_id, "nobody-here"):
            out = gs.disconnect_player(GameName=game, StageName="Dev", PlayerId=player)
            assert out["DisconnectSuccesses"] == [] and out["DisconnectFailures"] == []

        # The player reconnects with its token.
        back = GameClient(sessiond, key, alice.token)
        assert back.player_id == alice.player_id
        back.close()
    finally:
        for p in (alice, alice2, bob):
            p.close()


def test_runtime_errors(sessiond, gs):
    game = new_game(gs)
    new_stage(gs, game)
    for g, s in ((game, "Nope"), ("nope-game", "Dev")):
        for call in (gs.disconnect_player, gs.get_player_connection_status):
            with pytest.raises(ClientError) as ei:
                call(GameName=g, StageName=s, PlayerId="p1")
            code, message, status = error_of(ei)
            assert (code, status) == ("ResourceNotFoundException", 404)
            assert "does not exist" in message
    with pytest.raises(ClientError) as ei:
        gs.disconnect_player(GameName=game, StageName="Dev", PlayerId="bad id")
    assert error_of(ei) == (
        "ValidationException",
        "1 validation error detected: Value 'bad id' at 'playerId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$",
        400,
    )
    with pytest.raises(ClientError) as ei:
        gs.get_player_connection_status(GameName=game, StageName="Dev", PlayerId="p" * 45)
    assert error_of(ei)[0] == "ValidationException"
    assert "Member must have length less than or equal to 44" in error_of(ei)[1]
    with pytest.raises(ClientError) as ei:
        gs.create_game(GameName="g" * 37)
    assert "at 'gameName' failed to satisfy constraint: Member must have length less than or equal to 36" in error_of(ei)[1]


def test_signature_failures_and_unserved_operations(sessiond, gs):
    bad = client(sessiond, (KEY_A[0], "wrong-secret"))
    with pytest.raises(ClientError) as ei:
        bad.list_games()
    assert error_of(ei)[0] == "InvalidSignatureException"
    assert error_of(ei)[2] == 403
    unknown = client(sessiond, ("AKIDnobodyatall", "x"))
    with pytest.raises(ClientError) as ei:
        unknown.list_games()
    assert error_of(ei)[0] == "UnrecognizedClientException"

    with pytest.raises(ClientError) as ei:
        gs.get_game_configuration(GameName="any")
    code, message, status = error_of(ei)
    assert (code, status) == ("NotImplementedException", 501)
    assert "GetGameConfiguration" in message
    with pytest.raises(ClientError) as ei:
        gs.list_extensions()
    assert error_of(ei)[0] == "NotImplementedException"


def test_throttling_per_credential():
    # 2 requests per second per access key: a quick burst runs into the limit.
    sd = start("throttling", "control_plane_rate_limit = 2")
    try:
        gs = client(sd)
        codes = []
        for _ in range(30):
            try:
                gs.list_games()
                codes.append("ok")
            except ClientError as e:
                codes.append(e.response["Error"]["Code"])
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
                break
        assert codes[:2] == ["ok"] * 2, codes
        assert codes[-1] == "ThrottlingException", codes
        # another credential has its own budget
        client(sd, KEY_B).list_games()
    finally:
        sd.stop()
