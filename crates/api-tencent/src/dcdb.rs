//! DCDB 2018-04-11 on the wire: KillSession, DescribeFlow and the inventory listings
//! (DescribeDCDBInstances, DescribeDCDBShards, DescribeDCDBInstanceNodeInfo). One method per
//! action: typed requests from the schema-checked parameter tree, wire validation, domain
//! call, typed response; domain errors mapped to each action's documented codes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sessiond_core::dcdb::{
    self, ids, DcdbError, DcdbService, Instance, InstanceQuery, InstanceSort, KillRequest,
    KillTask, Node, NodeRole, Shard, TaskState, MAX_KILL_SESSIONS,
};
use sessiond_core::Caller;

use crate::error::TencentError;
use crate::params::ParamError;

/// The DCDB actions sessiond implements; every other action of the schema is UnsupportedOperation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcdbAction {
    KillSession,
    DescribeFlow,
    DescribeDCDBInstances,
    DescribeDCDBShards,
    DescribeDCDBInstanceNodeInfo,
}

impl DcdbAction {
    pub const ALL: [DcdbAction; 5] = [
        Self::KillSession,
        Self::DescribeFlow,
        Self::DescribeDCDBInstances,
        Self::DescribeDCDBShards,
        Self::DescribeDCDBInstanceNodeInfo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::KillSession => "KillSession",
            Self::DescribeFlow => "DescribeFlow",
            Self::DescribeDCDBInstances => "DescribeDCDBInstances",
            Self::DescribeDCDBShards => "DescribeDCDBShards",
            Self::DescribeDCDBInstanceNodeInfo => "DescribeDCDBInstanceNodeInfo",
        }
    }

    pub fn parse(name: &str) -> Option<DcdbAction> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Documented requests per second per credential (KillSession: 20; the others are not
    /// documented and get the same).
    pub fn default_rate_limit(self) -> u32 {
        20
    }
}

/// Maps a parameter-decoding error. KillSession's SessionId is a list of integers: anything
/// that is not one (a string, a fraction, a number beyond 64 bits, too many elements) is
/// `InvalidParameter`, as for negative ids and empty or over-long lists (dcdb.md §9).
pub fn param_error(action: DcdbAction, err: ParamError) -> TencentError {
    let code = match (&err, action) {
        (ParamError::InvalidParameterValue { path, .. }, DcdbAction::KillSession)
            if path == "SessionId" || path.starts_with("SessionId.") =>
        {
            "InvalidParameter"
        }
        _ => err.code(),
    };
    TencentError::new(code, err.to_string())
}

/// Output fields of a successful call, serialised as a JSON object.
pub type Output = Result<Vec<u8>, TencentError>;

fn out<T: Serialize>(value: &T) -> Output {
    serde_json::to_vec(value)
        .map_err(|e| TencentError::internal(format!("encoding the response failed: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(params: Value) -> Result<T, TencentError> {
    serde_json::from_value(params).map_err(|e| {
        TencentError::new(
            "InvalidParameter",
            format!("the parameters do not fit the action: {e}"),
        )
    })
}

/// An optional string parameter: empty counts as absent (as the SDKs send unset strings).
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), the inventory's time format.
pub fn format_time(ms: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// "Not set" for the times sessiond has no value for (no billing period, never isolated).
const NO_TIME: &str = "0000-00-00 00:00:00";
/// What the cloud returns as StatusDesc for status 2 ("running").
const RUNNING_DESC: &str = "运行中";

fn offset_limit(
    offset: Option<i64>,
    limit: Option<i64>,
    default_limit: i64,
    code: &'static str,
) -> Result<(usize, usize), TencentError> {
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(TencentError::new(
            code,
            format!("Offset must be 0 or more; got {offset}"),
        ));
    }
    let limit = limit.unwrap_or(default_limit);
    if !(1..=100).contains(&limit) {
        return Err(TencentError::new(
            code,
            format!("Limit must be 1 to 100; got {limit}"),
        ));
    }
    Ok((
        usize::try_from(offset).unwrap_or(usize::MAX),
        limit as usize,
    ))
}

fn descending(
    value: Option<String>,
    default: bool,
    code: &'static str,
) -> Result<bool, TencentError> {
    match given(value).as_deref() {
        None => Ok(default),
        Some("desc") => Ok(true),
        Some("asc") => Ok(false),
        Some(other) => Err(TencentError::new(
            code,
            format!("OrderByType must be asc or desc; got {other:?}"),
        )),
    }
}

// ---- wire shapes --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KillSessionRequest {
    instance_id: String,
    session_id: Vec<i64>,
    shard_id: Option<String>,
    shard_serial_id: Option<String>,
    node_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeFlowRequest {
    flow_id: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct WireTag {
    #[allow(dead_code)]
    tag_key: Option<String>,
    #[allow(dead_code)]
    tag_value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstancesRequest {
    instance_ids: Option<Vec<String>>,
    search_name: Option<String>,
    search_key: Option<String>,
    project_ids: Option<Vec<i64>>,
    is_filter_vpc: Option<bool>,
    vpc_id: Option<String>,
    subnet_id: Option<String>,
    order_by: Option<String>,
    order_by_type: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
    excluster_type: Option<i64>,
    is_filter_excluster: Option<bool>,
    excluster_ids: Option<Vec<String>>,
    tag_keys: Option<Vec<String>>,
    tags: Option<Vec<WireTag>>,
    filter_instance_type: Option<String>,
    status: Option<Vec<i64>>,
    exclude_status: Option<Vec<i64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeShardsRequest {
    instance_id: String,
    shard_instance_ids: Option<Vec<String>>,
    offset: Option<i64>,
    limit: Option<i64>,
    order_by: Option<String>,
    order_by_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeNodesRequest {
    instance_id: String,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireResourceTag {
    tag_key: String,
    tag_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireShardInfo {
    shard_instance_id: String,
    shard_serial_id: String,
    status: i64,
    createtime: String,
    memory: i64,
    storage: i64,
    shard_id: i64,
    node_count: i64,
    pid: i64,
    cpu: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireInstance {
    instance_id: String,
    instance_name: String,
    app_id: i64,
    project_id: i64,
    region: String,
    zone: String,
    vpc_id: i64,
    subnet_id: i64,
    status_desc: &'static str,
    status: i64,
    vip: String,
    vport: i64,
    create_time: String,
    auto_renew_flag: i64,
    memory: i64,
    storage: i64,
    shard_count: i64,
    period_end_time: &'static str,
    isolated_timestamp: &'static str,
    uin: String,
    shard_detail: Vec<WireShardInfo>,
    node_count: i64,
    is_tmp: i64,
    excluster_id: &'static str,
    unique_vpc_id: &'static str,
    unique_subnet_id: &'static str,
    id: i64,
    wan_domain: &'static str,
    wan_vip: &'static str,
    wan_port: i64,
    pid: i64,
    update_time: String,
    db_engine: String,
    db_version: String,
    paymode: &'static str,
    locker: i64,
    wan_status: i64,
    is_audit_supported: i64,
    cpu: i64,
    ipv6_flag: i64,
    vipv6: &'static str,
    wan_vipv6: &'static str,
    wan_port_ipv6: i64,
    wan_status_ipv6: i64,
    dcn_flag: i64,
    dcn_status: i64,
    dcn_dst_num: i64,
    instance_type: i64,
    resource_tags: Vec<WireResourceTag>,
    db_version_id: String,
    protected_property: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireShard {
    instance_id: String,
    shard_serial_id: String,
    shard_instance_id: String,
    status: i64,
    status_desc: &'static str,
    create_time: String,
    vpc_id: &'static str,
    subnet_id: &'static str,
    project_id: i64,
    region: String,
    zone: String,
    memory: i64,
    storage: i64,
    period_end_time: &'static str,
    node_count: i64,
    storage_usage: f64,
    memory_usage: f64,
    shard_id: i64,
    pid: i64,
    proxy_version: &'static str,
    paymode: &'static str,
    shard_master_zone: String,
    shard_slave_zones: Vec<String>,
    cpu: i64,
    range: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireNode {
    node_id: String,
    role: &'static str,
    shard_id: String,
    zone: String,
}

/// Instance status 2 (running) and type 2 (primary, not dedicated): the only ones sessiond's
/// declared instances have.
const RUNNING: i64 = 2;
const PRIMARY: i64 = 2;
const PAYMODE: &str = "postpaid";

/// The `i`-th of `n` shards' share of the 64 shard-key hash slots, e.g. `0-31`.
fn hash_range(i: usize, n: usize) -> String {
    let n = n.max(1);
    format!("{}-{}", i * 64 / n, (i + 1) * 64 / n - 1)
}

fn shard_info(shard: &Shard) -> WireShardInfo {
    WireShardInfo {
        shard_instance_id: shard.shard_instance_id.clone(),
        shard_serial_id: shard.shard_serial_id.clone(),
        status: RUNNING,
        createtime: format_time(shard.created_ms),
        memory: shard.memory_gb,
        storage: shard.storage_gb,
        shard_id: shard.numeric_id,
        node_count: shard.nodes.len() as i64,
        pid: 0,
        cpu: shard.cpu,
    }
}

fn instance_out(i: &Instance) -> WireInstance {
    WireInstance {
        instance_id: i.id.clone(),
        instance_name: i.name.clone(),
        app_id: i.account.0.parse().unwrap_or(0),
        project_id: i.project_id,
        region: i.region.clone(),
        zone: i.zone.clone(),
        vpc_id: 0,
        subnet_id: 0,
        status_desc: RUNNING_DESC,
        status: RUNNING,
        vip: i.vip.clone(),
        vport: i64::from(i.vport),
        create_time: format_time(i.created_ms),
        auto_renew_flag: 0,
        memory: i.memory_gb,
        storage: i.storage_gb,
        shard_count: i.shards.len() as i64,
        period_end_time: NO_TIME,
        isolated_timestamp: NO_TIME,
        uin: i.account.0.clone(),
        shard_detail: i.shards.iter().map(shard_info).collect(),
        node_count: i.shards.iter().map(|s| s.nodes.len()).max().unwrap_or(0) as i64,
        is_tmp: 0,
        excluster_id: "",
        unique_vpc_id: "",
        unique_subnet_id: "",
        id: 0,
        wan_domain: "",
        wan_vip: "",
        wan_port: 0,
        pid: 0,
        update_time: format_time(i.created_ms),
        db_engine: i.db_engine.clone(),
        db_version: i.db_version.clone(),
        paymode: PAYMODE,
        locker: 0,
        wan_status: 0,
        is_audit_supported: 0,
        cpu: i.cpu,
        ipv6_flag: 0,
        vipv6: "",
        wan_vipv6: "",
        wan_port_ipv6: 0,
        wan_status_ipv6: 0,
        dcn_flag: 0,
        dcn_status: 0,
        dcn_dst_num: 0,
        instance_type: PRIMARY,
        resource_tags: Vec::new(),
        db_version_id: i.db_version.clone(),
        protected_property: 0,
    }
}

fn shard_out(instance: &Instance, shard: &Shard) -> WireShard {
    let index = instance
        .shards
        .iter()
        .position(|s| s.shard_instance_id == shard.shard_instance_id)
        .unwrap_or(0);
    let zone_of = |role: NodeRole| -> Vec<String> {
        shard
            .nodes
            .iter()
            .filter(|n| n.role == role)
            .map(|n| n.zone.clone())
            .collect()
    };
    WireShard {
        instance_id: instance.id.clone(),
        shard_serial_id: shard.shard_serial_id.clone(),
        shard_instance_id: shard.shard_instance_id.clone(),
        status: RUNNING,
        status_desc: RUNNING_DESC,
        create_time: format_time(shard.created_ms),
        vpc_id: "",
        subnet_id: "",
        project_id: instance.project_id,
        region: instance.region.clone(),
        zone: instance.zone.clone(),
        memory: shard.memory_gb,
        storage: shard.storage_gb,
        period_end_time: NO_TIME,
        node_count: shard.nodes.len() as i64,
        storage_usage: 0.0,
        memory_usage: 0.0,
        shard_id: shard.numeric_id,
        pid: 0,
        proxy_version: "",
        paymode: PAYMODE,
        shard_master_zone: zone_of(NodeRole::Master)
            .into_iter()
            .next()
            .unwrap_or_default(),
        shard_slave_zones: zone_of(NodeRole::Replica),
        cpu: shard.cpu,
        range: hash_range(index, instance.shards.len()),
    }
}

fn node_out(shard: &str, node: &Node) -> WireNode {
    WireNode {
        node_id: node.node_id.clone(),
        role: match node.role {
            NodeRole::Master => "master",
            NodeRole::Replica => "slave",
        },
        shard_id: shard.to_string(),
        zone: node.zone.clone(),
    }
}

/// DescribeFlow's `Status`: 0 success, 1 failure, 2 running.
fn flow_status(task: &KillTask) -> i64 {
    match task.state {
        TaskState::Succeeded => 0,
        TaskState::Failed => 1,
        TaskState::Running => 2,
    }
}

// ---- the API --------------------------------------------------------------------------------

pub struct DcdbApi {
    service: Arc<DcdbService>,
}

fn instance_not_found(id: &str) -> TencentError {
    TencentError::new(
        "InvalidParameter.InstanceNotFound",
        format!("instance {id} does not exist"),
    )
}

/// Maps a domain error to this action's code.
fn map_err(action: DcdbAction, err: DcdbError) -> TencentError {
    let code = match &err {
        DcdbError::InstanceNotFound(id) => return instance_not_found(id),
        DcdbError::ShardNotFound { .. } => "InvalidParameterValue.ShardNotExist",
        DcdbError::MissingShard(_) => "MissingParameter",
        DcdbError::ShardMismatch(_) | DcdbError::InvalidSessions(_) => "InvalidParameter",
        DcdbError::NodeNotFound { .. } | DcdbError::InvalidValue(_) => "InvalidParameterValue",
        DcdbError::FlowNotFound(_) => "InvalidParameter.FlowNotFound",
        DcdbError::Inventory(_) | DcdbError::Internal(_) => {
            let logged = TencentError::internal(err.to_string());
            return match action {
                DcdbAction::KillSession => TencentError::new(
                    "FailedOperation.CreateFlowFailed",
                    "sessiond could not record the task; its log has the details under this RequestId",
                ),
                DcdbAction::DescribeFlow => {
                    TencentError::new("InternalError.DbOperationFailed", logged.message)
                }
                _ => logged,
            };
        }
    };
    TencentError::new(code, err.to_string())
}

impl DcdbApi {
    pub fn new(service: Arc<DcdbService>) -> Self {
        DcdbApi { service }
    }

    pub async fn call(&self, action: DcdbAction, caller: &Caller, params: Value) -> Output {
        let result = match action {
            DcdbAction::KillSession => self.kill_session(caller, decode(params)?).await,
            DcdbAction::DescribeFlow => self.describe_flow(caller, decode(params)?),
            DcdbAction::DescribeDCDBInstances => self.describe_instances(caller, decode(params)?),
            DcdbAction::DescribeDCDBShards => self.describe_shards(caller, decode(params)?),
            DcdbAction::DescribeDCDBInstanceNodeInfo => {
                self.describe_nodes(caller, decode(params)?)
            }
        };
        result.map_err(|e| match e {
            ActionError::Wire(e) => e,
            ActionError::Domain(e) => map_err(action, e),
        })
    }

    async fn kill_session(
        &self,
        caller: &Caller,
        req: KillSessionRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let invalid = |m: String| TencentError::new("InvalidParameter", m);
        if req.session_id.is_empty() {
            return Err(
                invalid("SessionId lists no session; give 1 to 1000 session ids".into()).into(),
            );
        }
        if req.session_id.len() > MAX_KILL_SESSIONS {
            return Err(invalid(format!(
                "SessionId lists {} sessions; at most {MAX_KILL_SESSIONS} per call",
                req.session_id.len()
            ))
            .into());
        }
        let sessions = req
            .session_id
            .iter()
            .map(|&s| {
                u64::try_from(s).map_err(|_| {
                    invalid(format!(
                        "SessionId {s} is not a session id: session ids are unsigned integers (the processlist Id)"
                    ))
                })
            })
            .collect::<Result<Vec<u64>, TencentError>>()?;
        if !ids::is_instance_id(&req.instance_id) {
            return Err(TencentError::new(
                "InvalidParameter.InstanceNotFound",
                format!(
                    "InstanceId {:?} is not a DCDB instance id (tdsqlshard-<8> or dcdbt-<8>)",
                    truncate(&req.instance_id)
                ),
            )
            .into());
        }
        let shard_id = given(req.shard_id);
        let shard_serial_id = given(req.shard_serial_id);
        if shard_id.is_none() && shard_serial_id.is_none() {
            return Err(TencentError::new(
                "MissingParameter",
                "either ShardId or ShardSerialId is required",
            )
            .into());
        }
        if let Some(id) = shard_id
            .as_deref()
            .filter(|id| !ids::is_shard_instance_id(id))
        {
            return Err(TencentError::new(
                "InvalidParameterValue.ShardNotExist",
                format!("ShardId {:?} is not a shard id (shard-<8>)", truncate(id)),
            )
            .into());
        }
        if let Some(id) = shard_serial_id
            .as_deref()
            .filter(|id| !ids::is_shard_serial_id(id))
        {
            return Err(TencentError::new(
                "InvalidParameterValue.ShardNotExist",
                format!(
                    "ShardSerialId {:?} is not a shard serial id (set_<seconds>_<n>)",
                    truncate(id)
                ),
            )
            .into());
        }
        let task_id = self
            .service
            .kill_session(
                caller,
                KillRequest {
                    instance_id: req.instance_id,
                    shard_instance_id: shard_id,
                    shard_serial_id,
                    node_id: given(req.node_id),
                    sessions,
                },
            )
            .await?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            task_id: u64,
        }
        Ok(out(&Response { task_id })?)
    }

    fn describe_flow(
        &self,
        caller: &Caller,
        req: DescribeFlowRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let id = u64::try_from(req.flow_id).map_err(|_| DcdbError::FlowNotFound(0))?;
        let task = self.service.describe_flow(caller, id)?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            status: i64,
            /// Not in the vendor's model (SDKs ignore it): what happened, or why it failed.
            message: String,
        }
        Ok(out(&Response {
            status: flow_status(&task),
            message: task.message,
        })?)
    }

    fn describe_instances(
        &self,
        caller: &Caller,
        req: DescribeInstancesRequest,
    ) -> Result<Vec<u8>, ActionError> {
        const CODE: &str = "InvalidParameter.GenericParameterError";
        let bad = |m: String| TencentError::new(CODE, m);
        let (offset, limit) = offset_limit(req.offset, req.limit, 10, CODE)?;
        let search_field = match given(req.search_name).as_deref() {
            None | Some("all") => dcdb::SearchField::All,
            Some("instancename") => dcdb::SearchField::Name,
            Some("vip") => dcdb::SearchField::Vip,
            Some(other) => {
                return Err(bad(format!(
                    "SearchName must be instancename, vip or all; got {:?}",
                    truncate(other)
                ))
                .into())
            }
        };
        let sort = match given(req.order_by).as_deref() {
            None | Some("createtime") => InstanceSort::CreateTime,
            Some("instancename") => InstanceSort::Name,
            Some("projectId") => InstanceSort::ProjectId,
            Some(other) => {
                return Err(bad(format!(
                    "OrderBy must be projectId, createtime or instancename; got {:?}",
                    truncate(other)
                ))
                .into())
            }
        };
        let descending = descending(req.order_by_type, true, CODE)?;
        let excluster_type = req.excluster_type.unwrap_or(0);
        if !(0..=2).contains(&excluster_type) {
            return Err(bad(format!(
                "ExclusterType must be 0 (all), 1 (shared) or 2 (dedicated); got {excluster_type}"
            ))
            .into());
        }
        let mut types = Vec::new();
        for t in given(req.filter_instance_type)
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            match t.parse::<i64>() {
                Ok(n @ 1..=3) => types.push(n),
                _ => {
                    return Err(bad(format!(
                        "FilterInstanceType is a comma-separated list of 1 (dedicated), 2 (primary) and 3 (disaster recovery); got {:?}",
                        truncate(t)
                    ))
                    .into())
                }
            }
        }
        // Declared instances are running primary instances on shared resources, with no VPC,
        // tag or dedicated cluster: a filter asking for anything else matches none of them.
        let statuses = req.status.unwrap_or_default();
        let match_nothing = (req.is_filter_vpc == Some(true)
            && (given(req.vpc_id).is_some() || given(req.subnet_id).is_some()))
            || (req.is_filter_excluster == Some(true) && excluster_type == 2)
            || !req.excluster_ids.unwrap_or_default().is_empty()
            || !req.tag_keys.unwrap_or_default().is_empty()
            || !req.tags.unwrap_or_default().is_empty()
            || (!types.is_empty() && !types.contains(&PRIMARY))
            || (!statuses.is_empty() && !statuses.contains(&RUNNING))
            || req.exclude_status.unwrap_or_default().contains(&RUNNING);
        let page = self.service.describe_instances(
            caller,
            &InstanceQuery {
                ids: req.instance_ids.unwrap_or_default(),
                search_keys: req
                    .search_key
                    .unwrap_or_default()
                    .split('\n')
                    .map(str::to_string)
                    .collect(),
                search_field,
                project_ids: req.project_ids.unwrap_or_default(),
                match_nothing,
                sort,
                descending,
                offset,
                limit,
            },
        );
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            total_count: usize,
            instances: Vec<WireInstance>,
        }
        Ok(out(&Response {
            total_count: page.total,
            instances: page.items.iter().map(instance_out).collect(),
        })?)
    }

    fn describe_shards(
        &self,
        caller: &Caller,
        req: DescribeShardsRequest,
    ) -> Result<Vec<u8>, ActionError> {
        const CODE: &str = "InvalidParameter.GenericParameterError";
        let (offset, limit) = offset_limit(req.offset, req.limit, 20, CODE)?;
        if let Some(other) = given(req.order_by).filter(|o| o != "createtime") {
            return Err(TencentError::new(
                CODE,
                format!("OrderBy can only be createtime; got {:?}", truncate(&other)),
            )
            .into());
        }
        let descending = descending(req.order_by_type, false, CODE)?;
        let (instance, page) = self.service.describe_shards(
            caller,
            &req.instance_id,
            &req.shard_instance_ids.unwrap_or_default(),
            descending,
            offset,
            limit,
        )?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            total_count: usize,
            shards: Vec<WireShard>,
            dcn_flag: i64,
        }
        Ok(out(&Response {
            total_count: page.total,
            shards: page.items.iter().map(|s| shard_out(instance, s)).collect(),
            dcn_flag: 0,
        })?)
    }

    fn describe_nodes(
        &self,
        caller: &Caller,
        req: DescribeNodesRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let limit = req.limit.unwrap_or(100);
        if !(1..=100).contains(&limit) {
            return Err(TencentError::new(
                "InvalidParameterValue",
                format!("Limit must be 1 to 100; got {limit}"),
            )
            .into());
        }
        let offset = usize::try_from(req.offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let page = self
            .service
            .describe_nodes(caller, &req.instance_id, offset, limit as usize)?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            total_count: usize,
            nodes_info: Vec<WireNode>,
        }
        Ok(out(&Response {
            total_count: page.total,
            nodes_info: page.items.iter().map(|(s, n)| node_out(s, n)).collect(),
        })?)
    }
}

/// An untrusted value echoed in a message, cut to 64 characters.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

enum ActionError {
    Wire(TencentError),
    Domain(DcdbError),
}

impl From<TencentError> for ActionError {
    fn from(e: TencentError) -> Self {
        ActionError::Wire(e)
    }
}

impl From<DcdbError> for ActionError {
    fn from(e: DcdbError) -> Self {
        ActionError::Domain(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ApiSchema;

    #[test]
    fn schema_has_every_dcdb_action_and_ours() {
        let schema = ApiSchema::dcdb();
        assert_eq!(schema.service(), "dcdb");
        assert_eq!(schema.version(), "2018-04-11");
        assert!(schema.actions().count() >= 74);
        for a in DcdbAction::ALL {
            assert!(schema.has_action(a.name()), "{}", a.name());
            assert_eq!(DcdbAction::parse(a.name()), Some(a));
        }
        assert!(schema.has_action("DescribeDCDBPrice"));
        assert_eq!(DcdbAction::parse("DescribeDCDBPrice"), None);
    }

    #[test]
    fn session_ids_that_are_not_integers_are_invalid_parameter() {
        let schema = ApiSchema::dcdb();
        let kill = |body: &str| {
            schema
                .decode_json("KillSession", body.as_bytes())
                .map_err(|e| param_error(DcdbAction::KillSession, e).code)
        };
        assert!(kill(r#"{"InstanceId": "tdsqlshard-2gk4nxyz", "SessionId": [1111, "2222"], "ShardId": "shard-ljilb4st"}"#).is_ok());
        for body in [
            r#"{"InstanceId": "i", "SessionId": ["abc"]}"#,
            r#"{"InstanceId": "i", "SessionId": [1.5]}"#,
            r#"{"InstanceId": "i", "SessionId": [99999999999999999999999]}"#,
            r#"{"InstanceId": "i", "SessionId": "1"}"#,
        ] {
            assert_eq!(kill(body).unwrap_err(), "InvalidParameter", "{body}");
        }
        let flat = |pairs: &[(&str, &str)]| {
            let params: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            schema
                .decode_flat("KillSession", &params)
                .map_err(|e| param_error(DcdbAction::KillSession, e).code)
        };
        let v = flat(&[
            ("InstanceId", "tdsqlshard-2gk4nxyz"),
            ("SessionId.0", "1111"),
            ("SessionId.1", "2222"),
            ("ShardId", "shard-ljilb4st"),
        ])
        .unwrap();
        assert_eq!(v["SessionId"], serde_json::json!([1111, 2222]));
        assert_eq!(
            flat(&[("InstanceId", "i"), ("SessionId.0", "x")]).unwrap_err(),
            "InvalidParameter"
        );
        assert_eq!(
            flat(&[("InstanceId", "i")]).unwrap_err(),
            "MissingParameter"
        );
        // Other actions keep the generic codes.
        let e = schema
            .decode_json("DescribeFlow", br#"{"FlowId": "x"}"#)
            .unwrap_err();
        assert_eq!(
            param_error(DcdbAction::DescribeFlow, e).code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn times_and_ranges() {
        assert_eq!(format_time(1_732_072_710_000), "2024-11-20 03:18:30");
        assert_eq!(hash_range(0, 2), "0-31");
        assert_eq!(hash_range(1, 2), "32-63");
        assert_eq!(hash_range(0, 1), "0-63");
        assert_eq!(hash_range(2, 3), "42-63");
    }
}
