"""Client sessions through huaweicloudsdkdcs: HangUpClients, ListClients, ScanClients,
HangUpKillAllClients, ShowJobInfo, and the node inventory, against real Redis servers."""

from __future__ import annotations

import socket

from huaweicloudsdkdcs.v2 import (
    HangUpClientsRequest,
    HangUpClientsRequestBody,
    HangUpKillAllClientsRequest,
    HangUpKillAllClientsRequestBody,
    ListClientsRequest,
    ListGroupReplicationInfoRequest,
    ScanClientsRequest,
    ScanClientsRequestBody,
    ShowInstanceRequest,
    ShowJobInfoRequest,
    ShowNodesInformationRequest,
)

from conftest import INSTANCE, wait_job


def list_all(dcs, node_id, **params):
    out, offset = [], 0
    while True:
        r = dcs.list_clients(ListClientsRequest(instance_id=INSTANCE, node_id=node_id, offset=offset,
                                                limit=50, **params))
        assert r.status_code == 200
        out += r.clients or []
        offset += len(r.clients or [])
        if not r.clients or offset >= r.count:
            return out, r


def test_hang_up_clients_kills_exactly_the_named_connections(dcs, redis_nodes, app_clients):
    master, replica = redis_nodes
    on_master = app_clients(master, 12) + app_clients(master, 12, socket.AF_INET6)
    on_replica = app_clients(replica, 6) + app_clients(replica, 6, socket.AF_INET6)
    victims = [c for i, c in enumerate(on_master) if i % 4 == 1]
    assert any(v.addr.startswith("[::1]") for v in victims)
    addrs = [v.addr for v in victims] + [on_replica[0].addr]  # not a client of the master

    resp = dcs.hang_up_clients(HangUpClientsRequest(
        instance_id=INSTANCE,
        body=HangUpClientsRequestBody(node_id="node-master", client_addrs=addrs)))
    assert resp.status_code == 204
    assert resp.raw_content == b""

    listed = master.addrs()
    for c in on_master:
        dead = c in victims
        assert (c.addr in listed) != dead, c.addr
        assert c.alive() != dead, c.addr
    assert all(c.alive() for c in on_replica)


def test_list_clients_fields_paging_and_sorting(dcs, redis_nodes, app_clients):
    master, replica = redis_nodes
    mine = app_clients(replica, 8) + app_clients(replica, 8, socket.AF_INET6)
    clients, last = list_all(dcs, "node-replica")
    addrs = {c.addr for c in clients}
    assert all(c.addr in addrs for c in mine)
    assert last.time and last.time.endswith("Z")
    one = next(c for c in clients if c.addr == mine[-1].addr)
    assert isinstance(one.id, str) and isinstance(one.fd, str) and isinstance(one.db, str)
    assert isinstance(one.age, int) and isinstance(one.idle, int) and isinstance(one.qbuf_free, int)
    assert one.multi == -1 and one.flags == "N" and one.network == "ipv6" and one.peer == one.addr
    assert one.user == "default"

    r = dcs.list_clients(ListClientsRequest(instance_id=INSTANCE, node_id="node-replica",
                                            addr=mine[0].addr))
    assert r.count == 1 and r.clients[0].addr == mine[0].addr

    r = dcs.list_clients(ListClientsRequest(instance_id=INSTANCE, node_id="node-replica",
                                            sort="id", order="desc", limit=100))
    ids = [int(c.id) for c in r.clients]
    assert ids == sorted(ids, reverse=True)
    r = dcs.list_clients(ListClientsRequest(instance_id=INSTANCE, node_id="node-replica"))
    assert len(r.clients) == 10  # the documented default limit


def test_scan_clients_snapshot_and_job(dcs, redis_nodes, app_clients):
    master, _ = redis_nodes
    app_clients(master, 3)
    resp = dcs.scan_clients(ScanClientsRequest(
        instance_id=INSTANCE, body=ScanClientsRequestBody(node_id="node-master", clean_cache=True)))
    job_id = resp.body["job_id"]
    job = wait_job(dcs, job_id)
    assert (job.status, job.job_type) == ("SUCCESS", "ScanClients")
    assert int(job.begin_time) <= int(job.end_time)
    before = dcs.list_clients(ListClientsRequest(instance_id=INSTANCE, node_id="node-master")).count
    late = app_clients(master, 1)[0]
    r = dcs.list_clients(ListClientsRequest(instance_id=INSTANCE, node_id="node-master", addr=late.addr))
    assert r.count == 0  # listed from the snapshot
    dcs.scan_clients(ScanClientsRequest(
        instance_id=INSTANCE, body=ScanClientsRequestBody(node_id="node-master", clean_cache=True)))
    r = dcs.list_clients(ListClientsRequest(instance_id=INSTANCE, node_id="node-master", addr=late.addr))
    assert r.count == 1
    assert before >= 3


def test_kill_all_clients_job(dcs, redis_nodes, app_clients):
    _, replica = redis_nodes
    victims = app_clients(replica, 5) + app_clients(replica, 5, socket.AF_INET6)
    resp = dcs.hang_up_kill_all_clients(HangUpKillAllClientsRequest(
        instance_id=INSTANCE,
        body=HangUpKillAllClientsRequestBody(node_id="node-replica", kill_all_nodes=False)))
    job = wait_job(dcs, resp.body["job_id"])
    assert (job.status, job.job_type, job.fail_reason) == ("SUCCESS", "HangUpKillAllClients", "")
    assert not any(c.alive() for c in victims)
    again = dcs.show_job_info(ShowJobInfoRequest(job_id=job.job_id))
    assert again.status == "SUCCESS"


def test_inventory(dcs, redis_nodes):
    master, replica = redis_nodes
    nodes = dcs.show_nodes_information(ShowNodesInformationRequest(instance_id=INSTANCE))
    assert nodes.instance_id == INSTANCE and nodes.total == 2
    by_id = {n.node_id: n for n in nodes.nodes}
    m, r = by_id["node-master"], by_id["node-replica"]
    assert (m.node_type, m.node_role, m.status, m.node_ip, m.node_port) == (
        "master", "redis-server", "Active", "127.0.0.1", str(master.port))
    assert (r.node_ip, r.node_port, r.group_id) == ("::1", str(replica.port), "group-0")
    assert {d.name for d in m.dimensions} == {"dcs_instance_id", "dcs_cluster_redis_node"}

    groups = dcs.list_group_replication_info(ListGroupReplicationInfoRequest(instance_id=INSTANCE))
    assert groups.group_count == 1
    assert [x.node_id for x in groups.group_list[0].replication_list] == ["node-master", "node-replica"]

    inst = dcs.show_instance(ShowInstanceRequest(instance_id=INSTANCE))
    assert (inst.instance_id, inst.name, inst.engine, inst.status, inst.port, inst.cache_mode) == (
        INSTANCE, "conformance", "Redis", "RUNNING", master.port, "ha")
    assert inst.engine_version.count(".") == 1
    assert inst.no_password_access == "false"
