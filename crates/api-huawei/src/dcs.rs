//! DCS v2 on the wire: one method per operation, wire request decoding and validation, wire
//! responses, and the mapping of domain errors to DCS codes.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sessiond_core::dcs::{
    ClientField, ClientQuery, ClientRecord, DataError, DcsError, DcsService, InstanceStatus, Job,
    JobKind, JobStatus, NodeRole, MAX_PAGE_LIMIT,
};
use sessiond_core::AccountId;

use crate::auth::query_pairs;
use crate::endpoint::Operation;
use crate::error::{echo, HuaweiError};

/// What an operation answers on success.
#[derive(Debug)]
pub enum Reply {
    /// 204, empty body.
    NoContent,
    /// 200 with this JSON body.
    Json(Vec<u8>),
}

fn json<T: Serialize>(value: &T) -> Result<Reply, HuaweiError> {
    serde_json::to_vec(value)
        .map(Reply::Json)
        .map_err(HuaweiError::internal)
}

/// Domain errors to DCS codes. Every operation that names an instance answers DCS.3022 for a
/// missing (or another project's) instance and DCS.3053 for a node that is not one of it.
fn map_error(operation: Operation, err: DcsError) -> HuaweiError {
    match err {
        DcsError::InstanceNotFound(id) => HuaweiError::instance_not_found(&id),
        DcsError::NodeNotFound { instance, node } => HuaweiError::node_not_found(&instance, &node),
        DcsError::JobNotFound(id) => HuaweiError::url_not_found(format!(
            "job {:?} does not exist in this project",
            echo(&id)
        )),
        DcsError::InvalidValue { field, reason } => HuaweiError::invalid(&field, reason),
        DcsError::OwnConnection { node, addr } => HuaweiError::invalid(
            "client_addrs",
            format!("{addr} is sessiond's own connection to node {node}; sessiond never kills it"),
        ),
        DcsError::Node {
            node,
            address,
            error,
        } => {
            let what = operation.name();
            match error {
                DataError::Unsupported(reason) => HuaweiError::not_supported(format!(
                    "{what} is not supported on node {node} ({address}): {reason}"
                )),
                DataError::Unreachable(reason) => HuaweiError::service(format!(
                    "Redis node {node} ({address}) is unreachable: {reason}; check that it runs and that sessiond can reach it"
                )),
                DataError::Timeout(reason) => HuaweiError::service(format!(
                    "Redis node {node} ({address}) timed out: {reason}"
                )),
                DataError::AuthFailed(reason) => HuaweiError::service(format!(
                    "Redis node {node} ({address}) refused sessiond: {reason}; fix user/password of this node in the sessiond config"
                )),
                DataError::NoPermission(reason) => HuaweiError::service(format!(
                    "Redis node {node} ({address}): {reason}"
                )),
                DataError::Protocol(reason) => HuaweiError::service(format!(
                    "Redis node {node} ({address}) answered {what} unexpectedly: {reason}"
                )),
            }
        }
        DcsError::Internal(detail) => HuaweiError::internal(detail),
    }
}

/// The body of a POST: a JSON object.
fn body_object(body: &[u8]) -> Result<Map<String, Value>, HuaweiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HuaweiError::bad_json(
            "the body is empty; send a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(HuaweiError::bad_json("the body must be a JSON object")),
        Err(e) => Err(HuaweiError::bad_json(e)),
    }
}

fn opt_string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, HuaweiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(HuaweiError::invalid(name, "it must be a string")),
    }
}

fn required_string(body: &Map<String, Value>, name: &str) -> Result<String, HuaweiError> {
    opt_string(body, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| HuaweiError::invalid(name, "it is required"))
}

fn opt_bool(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, HuaweiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(HuaweiError::invalid(name, "it must be true or false")),
    }
}

/// Milliseconds since the epoch as a decimal string (job times).
fn ms_string(ms: i64) -> String {
    ms.to_string()
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-27T23:12:03.123Z`.
fn rfc3339_ms(ms: i64) -> String {
    sessiond_api_common::timefmt::rfc3339_millis(ms)
}

fn sort_field(name: &str) -> Option<ClientField> {
    use ClientField::*;
    Some(match name {
        "id" => Id,
        "addr" => Addr,
        "fd" => Fd,
        "name" => Name,
        "cmd" => Cmd,
        "age" => Age,
        "idle" => Idle,
        "db" => Db,
        "flags" => Flags,
        "sub" => Sub,
        "psub" => Psub,
        "multi" => Multi,
        "qbuf" => Qbuf,
        "qbuf_free" => QbufFree,
        "obl" => Obl,
        "oll" => Oll,
        "omem" => Omem,
        "events" => Events,
        "network" => Network,
        "peer" => Peer,
        "user" => User,
        _ => return None,
    })
}

const SORT_FIELDS: &str = "id, addr, fd, name, cmd, age, idle, db, flags, sub, psub, multi, qbuf, qbuf_free, obl, oll, omem, events, network, peer, user";

#[derive(Serialize)]
struct ClientInfo<'a> {
    id: String,
    addr: &'a str,
    fd: String,
    name: &'a str,
    cmd: &'a str,
    age: i64,
    idle: i64,
    db: String,
    flags: &'a str,
    sub: i64,
    psub: i64,
    multi: i64,
    qbuf: i64,
    qbuf_free: i64,
    obl: i64,
    oll: i64,
    omem: i64,
    events: &'a str,
    network: &'static str,
    peer: &'a str,
    user: &'a str,
}

impl<'a> From<&'a ClientRecord> for ClientInfo<'a> {
    fn from(c: &'a ClientRecord) -> Self {
        ClientInfo {
            id: c.id.to_string(),
            addr: &c.addr,
            fd: c.fd.to_string(),
            name: &c.name,
            cmd: &c.cmd,
            age: c.age,
            idle: c.idle,
            db: c.db.to_string(),
            flags: &c.flags,
            sub: c.sub,
            psub: c.psub,
            multi: c.multi,
            qbuf: c.qbuf,
            qbuf_free: c.qbuf_free,
            obl: c.obl,
            oll: c.oll,
            omem: c.omem,
            events: &c.events,
            network: c.network(),
            peer: &c.addr,
            user: &c.user,
        }
    }
}

fn job_type(kind: JobKind) -> &'static str {
    match kind {
        JobKind::KillAllClients => "HangUpKillAllClients",
        JobKind::ScanClients => "ScanClients",
    }
}

fn job_status(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Running => "RUNNING",
        JobStatus::Success => "SUCCESS",
        JobStatus::Failed => "FAILED",
    }
}

fn dimensions(instance_id: &str, node_id: &str) -> Value {
    serde_json::json!([
        {"name": "dcs_instance_id", "value": instance_id},
        {"name": "dcs_cluster_redis_node", "value": node_id},
    ])
}

/// The role a node has now: INFO's `role` for data nodes that answer, else as declared.
fn live_role(
    role: NodeRole,
    info: &Result<sessiond_core::dcs::NodeInfo, DataError>,
) -> &'static str {
    if role == NodeRole::Proxy {
        return "proxy";
    }
    match info.as_ref().ok().and_then(|i| i.role.as_deref()) {
        Some("master") => "master",
        Some("slave") => "slave",
        _ => role.as_str(),
    }
}

fn node_state(info: &Result<sessiond_core::dcs::NodeInfo, DataError>) -> &'static str {
    if info.is_ok() {
        "Active"
    } else {
        "Inactive"
    }
}

pub struct DcsApi {
    service: Arc<DcsService>,
}

impl DcsApi {
    pub fn new(service: Arc<DcsService>) -> Self {
        DcsApi { service }
    }

    /// POST /v2/{project_id}/instances/{instance_id}/clients/kill -> 204.
    pub async fn hang_up_clients(
        &self,
        project: &AccountId,
        instance_id: &str,
        body: &[u8],
    ) -> Result<Reply, HuaweiError> {
        let op = Operation::HangUpClients;
        let body = body_object(body)?;
        let node_id = required_string(&body, "node_id")?;
        let addrs: Vec<String> = match body.get("client_addrs") {
            None | Some(Value::Null) => {
                return Err(HuaweiError::invalid("client_addrs", "it is required"))
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        HuaweiError::invalid(
                            &format!("client_addrs[{i}]"),
                            "it must be a string ip:port or [ipv6]:port",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(HuaweiError::invalid(
                    "client_addrs",
                    "it must be an array of strings",
                ))
            }
        };
        let report = self
            .service
            .kill_clients(project, instance_id, &node_id, &addrs)
            .await
            .map_err(|e| map_error(op, e))?;
        tracing::info!(
            instance = instance_id,
            node = node_id,
            killed = report.killed,
            already_gone = report.already_gone,
            "HangUpClients"
        );
        Ok(Reply::NoContent)
    }

    /// POST …/clients/kill-all -> 200 {"job_id"}.
    pub async fn hang_up_kill_all_clients(
        &self,
        project: &AccountId,
        instance_id: &str,
        body: &[u8],
    ) -> Result<Reply, HuaweiError> {
        let op = Operation::HangUpKillAllClients;
        let body = body_object(body)?;
        let node_id = opt_string(&body, "node_id")?;
        let all_nodes = opt_bool(&body, "kill_all_nodes")?.unwrap_or(false);
        let job = self
            .service
            .kill_all_clients(project, instance_id, node_id.as_deref(), all_nodes)
            .await
            .map_err(|e| map_error(op, e))?;
        json(&serde_json::json!({"job_id": job.id}))
    }

    /// POST …/clients -> 200 {"job_id"}.
    pub async fn scan_clients(
        &self,
        project: &AccountId,
        instance_id: &str,
        body: &[u8],
    ) -> Result<Reply, HuaweiError> {
        let op = Operation::ScanClients;
        let body = body_object(body)?;
        let node_id = required_string(&body, "node_id")?;
        let refresh = opt_bool(&body, "clean_cache")?.unwrap_or(true);
        let job = self
            .service
            .scan_clients(project, instance_id, &node_id, refresh)
            .await
            .map_err(|e| map_error(op, e))?;
        json(&serde_json::json!({"job_id": job.id}))
    }

    /// GET …/clients?node_id&offset&limit&addr&sort&order.
    pub async fn list_clients(
        &self,
        project: &AccountId,
        instance_id: &str,
        raw_query: &str,
    ) -> Result<Reply, HuaweiError> {
        let op = Operation::ListClients;
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in query_pairs(raw_query) {
            let k = String::from_utf8(k).map_err(|_| HuaweiError::invalid("query", "not UTF-8"))?;
            let v = String::from_utf8(v)
                .map_err(|_| HuaweiError::invalid(&k, "the value is not UTF-8"))?;
            if params.iter().any(|(n, _)| n == &k) {
                return Err(HuaweiError::invalid(&k, "it is given more than once"));
            }
            params.push((k, v));
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let node_id = get("node_id")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| HuaweiError::invalid("node_id", "it is required"))?
            .to_string();
        let number = |name: &str, default: u32, min: u32, max: u32| -> Result<u32, HuaweiError> {
            match get(name) {
                None | Some("") => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(n as u32),
                    _ => Err(HuaweiError::invalid(
                        name,
                        format!("{:?} must be an integer from {min} to {max}", echo(v)),
                    )),
                },
            }
        };
        let offset = number("offset", 0, 0, u32::MAX)?;
        let limit = number("limit", 10, 1, MAX_PAGE_LIMIT)?;
        let addr = get("addr").filter(|v| !v.is_empty()).map(str::to_string);
        if addr.as_ref().is_some_and(|a| a.len() > 128) {
            return Err(HuaweiError::invalid(
                "addr",
                "it is longer than 128 characters",
            ));
        }
        let sort = match get("sort").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(sort_field(v).ok_or_else(|| {
                HuaweiError::invalid(
                    "sort",
                    format!(
                        "{:?} is not a ClientInfo field; use one of {SORT_FIELDS}",
                        echo(v)
                    ),
                )
            })?),
        };
        let descending = match get("order").filter(|v| !v.is_empty()) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(v) => {
                return Err(HuaweiError::invalid(
                    "order",
                    format!("{:?} must be asc or desc", echo(v)),
                ))
            }
        };
        let page = self
            .service
            .list_clients(
                project,
                instance_id,
                ClientQuery {
                    node_id,
                    offset,
                    limit,
                    addr,
                    sort,
                    descending,
                },
            )
            .await
            .map_err(|e| map_error(op, e))?;
        #[derive(Serialize)]
        struct Out<'a> {
            time: String,
            clients: Vec<ClientInfo<'a>>,
            count: usize,
        }
        json(&Out {
            time: rfc3339_ms(page.time_ms),
            clients: page.clients.iter().map(ClientInfo::from).collect(),
            count: page.count,
        })
    }

    async fn describe(
        &self,
        op: Operation,
        project: &AccountId,
        instance_id: &str,
    ) -> Result<InstanceStatus, HuaweiError> {
        self.service
            .describe_instance(project, instance_id)
            .await
            .map_err(|e| map_error(op, e))
    }

    /// GET …/instances/{id}/logical-nodes.
    pub async fn show_nodes_information(
        &self,
        project: &AccountId,
        instance_id: &str,
    ) -> Result<Reply, HuaweiError> {
        let status = self
            .describe(Operation::ShowNodesInformation, project, instance_id)
            .await?;
        let id = &status.instance.id;
        let nodes: Vec<Value> = status
            .nodes
            .iter()
            .map(|s| {
                let n = &s.node;
                serde_json::json!({
                    "logical_node_id": n.id,
                    "name": n.name,
                    "status": node_state(&s.info),
                    "az_code": n.az_code,
                    "node_role": if n.role == NodeRole::Proxy { "redis-proxy" } else { "redis-server" },
                    "node_type": live_role(n.role, &s.info),
                    "node_ip": n.host(),
                    "node_port": n.port().to_string(),
                    "node_id": n.id,
                    "priority_weight": n.priority_weight,
                    "is_access": true,
                    "group_id": n.group_id,
                    "group_name": n.group_name,
                    "is_remove_ip": false,
                    "replication_id": n.id,
                    "dimensions": dimensions(id, &n.id),
                })
            })
            .collect();
        json(&serde_json::json!({
            "instance_id": id,
            "total": nodes.len(),
            "nodes": nodes,
        }))
    }

    /// GET …/instance/{id}/groups.
    pub async fn list_group_replication_info(
        &self,
        project: &AccountId,
        instance_id: &str,
    ) -> Result<Reply, HuaweiError> {
        let status = self
            .describe(Operation::ListGroupReplicationInfo, project, instance_id)
            .await?;
        let id = &status.instance.id;
        let mut groups: Vec<(String, String, Vec<Value>)> = Vec::new();
        for s in status
            .nodes
            .iter()
            .filter(|s| s.node.role != NodeRole::Proxy)
        {
            let n = &s.node;
            let entry = serde_json::json!({
                "replication_role": live_role(n.role, &s.info),
                "replication_ip": n.host(),
                "is_replication": false,
                "replication_id": n.id,
                "node_id": n.id,
                "status": node_state(&s.info),
                "az_code": n.az_code,
                "dimensions": dimensions(id, &n.id),
            });
            match groups.iter_mut().find(|(g, _, _)| g == &n.group_id) {
                Some((_, _, list)) => list.push(entry),
                None => groups.push((n.group_id.clone(), n.group_name.clone(), vec![entry])),
            }
        }
        let group_list: Vec<Value> = groups
            .into_iter()
            .map(|(group_id, group_name, list)| {
                serde_json::json!({
                    "group_id": group_id,
                    "group_name": group_name,
                    "replication_list": list,
                })
            })
            .collect();
        json(&serde_json::json!({
            "group_count": group_list.len(),
            "group_list": group_list,
        }))
    }

    /// GET …/instances/{id}.
    pub async fn show_instance(
        &self,
        project: &AccountId,
        instance_id: &str,
    ) -> Result<Reply, HuaweiError> {
        let status = self
            .describe(Operation::ShowInstance, project, instance_id)
            .await?;
        let instance = &status.instance;
        // The access point: the first proxy if there are proxies, else the first master.
        let entry = status
            .nodes
            .iter()
            .find(|s| s.node.role == NodeRole::Proxy)
            .or_else(|| {
                status
                    .nodes
                    .iter()
                    .find(|s| s.node.role == NodeRole::Master)
            })
            .or_else(|| status.nodes.first());
        let info = entry.and_then(|s| s.info.as_ref().ok());
        let version = status
            .nodes
            .iter()
            .filter_map(|s| s.info.as_ref().ok()?.redis_version.clone())
            .next()
            .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
            .unwrap_or_default();
        let mib = |bytes: Option<u64>| bytes.map(|b| (b / (1024 * 1024)) as i64).unwrap_or(0);
        let data_groups = instance
            .groups()
            .into_iter()
            .filter(|(_, _, nodes)| nodes.iter().any(|n| n.role != NodeRole::Proxy))
            .collect::<Vec<_>>();
        let replica_count = data_groups
            .iter()
            .map(|(_, _, nodes)| nodes.len())
            .max()
            .unwrap_or(0);
        let mut az_codes: Vec<&str> = instance.nodes.iter().map(|n| n.az_code.as_str()).collect();
        az_codes.sort();
        az_codes.dedup();
        json(&serde_json::json!({
            "instance_id": instance.id,
            "name": instance.name,
            "description": instance.description,
            "engine": "Redis",
            "engine_version": version,
            "status": if status.running() { "RUNNING" } else { "ERROR" },
            "ip": entry.map(|s| s.node.host()).unwrap_or(""),
            "port": entry.map(|s| s.node.port()).unwrap_or(0),
            "domain_name": "",
            "cache_mode": instance.cache_mode(),
            "sharding_count": data_groups.len(),
            "replica_count": replica_count,
            "max_memory": mib(info.and_then(|i| i.maxmemory)),
            "used_memory": mib(info.and_then(|i| i.used_memory)),
            "no_password_access": entry.map(|s| s.node.password.is_none()).unwrap_or(true).to_string(),
            "access_user": entry.and_then(|s| s.node.user.clone()).unwrap_or_default(),
            "az_codes": az_codes,
            "user_id": project.0,
            "enable_ssl": false,
        }))
    }

    /// GET /v2/{project_id}/jobs/{job_id}.
    pub fn show_job_info(&self, project: &AccountId, job_id: &str) -> Result<Reply, HuaweiError> {
        let job: Job = self
            .service
            .job(project, job_id)
            .map_err(|e| map_error(Operation::ShowJobInfo, e))?;
        json(&serde_json::json!({
            "job_id": job.id,
            "job_type": job_type(job.kind),
            "status": job_status(job.status),
            "begin_time": ms_string(job.begin_ms),
            "end_time": job.end_ms.map(ms_string).unwrap_or_default(),
            "fail_reason": job.fail_reason.unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339_ms(1_795_821_123_045), "2026-11-27T23:12:03.045Z");
        assert_eq!(ms_string(12), "12");
    }

    #[test]
    fn client_info_has_every_documented_field_with_its_type() {
        let c = ClientRecord {
            id: 7,
            addr: "[::1]:5".into(),
            fd: 9,
            age: 3,
            multi: -1,
            ..Default::default()
        };
        let v = serde_json::to_value(ClientInfo::from(&c)).unwrap();
        let obj = v.as_object().unwrap();
        for field in SORT_FIELDS.split(", ") {
            assert!(obj.contains_key(field), "{field}");
            assert!(sort_field(field).is_some(), "{field}");
        }
        assert_eq!(obj.len(), 21);
        assert_eq!(v["id"], "7");
        assert_eq!(v["fd"], "9");
        assert_eq!(v["db"], "0");
        assert_eq!(v["age"], 3);
        assert_eq!(v["multi"], -1);
        assert_eq!(v["network"], "ipv6");
        assert_eq!(v["peer"], "[::1]:5");
    }

    #[test]
    fn errors_map_to_dcs_codes() {
        let code = |e: DcsError| {
            let h = map_error(Operation::HangUpClients, e);
            (h.status.as_u16(), h.code)
        };
        assert_eq!(
            code(DcsError::InstanceNotFound("i".into())),
            (404, "DCS.3022")
        );
        assert_eq!(
            code(DcsError::NodeNotFound {
                instance: "i".into(),
                node: "n".into()
            }),
            (400, "DCS.3053")
        );
        assert_eq!(
            code(DcsError::invalid("client_addrs[0]", "x")),
            (400, "DCS.4800")
        );
        assert_eq!(code(DcsError::JobNotFound("j".into())), (404, "DCS.4001"));
        let node = |error| DcsError::Node {
            node: "n".into(),
            address: "a".into(),
            error,
        };
        assert_eq!(
            code(node(DataError::Unreachable("x".into()))),
            (500, "DCS.5000")
        );
        assert_eq!(
            code(node(DataError::Timeout("x".into()))),
            (500, "DCS.5000")
        );
        assert_eq!(
            code(node(DataError::AuthFailed("x".into()))),
            (500, "DCS.5000")
        );
        assert_eq!(
            code(node(DataError::Unsupported("x".into()))),
            (400, "DCS.4027")
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(body_object(b"").unwrap_err().code, "DCS.4005");
        assert_eq!(body_object(b"{").unwrap_err().code, "DCS.4005");
        assert_eq!(body_object(b"[]").unwrap_err().code, "DCS.4005");
        let b = body_object(br#"{"node_id": 5, "kill_all_nodes": "yes"}"#).unwrap();
        assert_eq!(required_string(&b, "node_id").unwrap_err().code, "DCS.4800");
        assert_eq!(opt_bool(&b, "kill_all_nodes").unwrap_err().code, "DCS.4800");
        assert_eq!(required_string(&b, "other").unwrap_err().code, "DCS.4800");
    }
}
