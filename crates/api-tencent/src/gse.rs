//! GSE 2019-11-12 on the wire: one method per action, typed requests (decoded from the
//! schema-checked parameter tree), wire-level validation, typed responses.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sessiond_core::gse::{self, search, GseError, GseService};
use sessiond_core::Caller;

use crate::error::TencentError;

/// The GSE actions sessiond implements; every other action of the schema is UnsupportedOperation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GseAction {
    CreateAsset,
    DescribeAsset,
    DescribeAssets,
    DeleteAsset,
    CreateFleet,
    DescribeFleetAttributes,
    ListFleets,
    DeleteFleet,
    DescribeRuntimeConfiguration,
    UpdateRuntimeConfiguration,
    DescribeInstances,
    CreateGameServerSession,
    DescribeGameServerSessions,
    DescribeGameServerSessionDetails,
    SearchGameServerSessions,
    UpdateGameServerSession,
    JoinGameServerSession,
    JoinGameServerSessionBatch,
    DescribePlayerSessions,
    EndGameServerSessionAndProcess,
}

impl GseAction {
    pub const ALL: [GseAction; 20] = [
        Self::CreateAsset,
        Self::DescribeAsset,
        Self::DescribeAssets,
        Self::DeleteAsset,
        Self::CreateFleet,
        Self::DescribeFleetAttributes,
        Self::ListFleets,
        Self::DeleteFleet,
        Self::DescribeRuntimeConfiguration,
        Self::UpdateRuntimeConfiguration,
        Self::DescribeInstances,
        Self::CreateGameServerSession,
        Self::DescribeGameServerSessions,
        Self::DescribeGameServerSessionDetails,
        Self::SearchGameServerSessions,
        Self::UpdateGameServerSession,
        Self::JoinGameServerSession,
        Self::JoinGameServerSessionBatch,
        Self::DescribePlayerSessions,
        Self::EndGameServerSessionAndProcess,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CreateAsset => "CreateAsset",
            Self::DescribeAsset => "DescribeAsset",
            Self::DescribeAssets => "DescribeAssets",
            Self::DeleteAsset => "DeleteAsset",
            Self::CreateFleet => "CreateFleet",
            Self::DescribeFleetAttributes => "DescribeFleetAttributes",
            Self::ListFleets => "ListFleets",
            Self::DeleteFleet => "DeleteFleet",
            Self::DescribeRuntimeConfiguration => "DescribeRuntimeConfiguration",
            Self::UpdateRuntimeConfiguration => "UpdateRuntimeConfiguration",
            Self::DescribeInstances => "DescribeInstances",
            Self::CreateGameServerSession => "CreateGameServerSession",
            Self::DescribeGameServerSessions => "DescribeGameServerSessions",
            Self::DescribeGameServerSessionDetails => "DescribeGameServerSessionDetails",
            Self::SearchGameServerSessions => "SearchGameServerSessions",
            Self::UpdateGameServerSession => "UpdateGameServerSession",
            Self::JoinGameServerSession => "JoinGameServerSession",
            Self::JoinGameServerSessionBatch => "JoinGameServerSessionBatch",
            Self::DescribePlayerSessions => "DescribePlayerSessions",
            Self::EndGameServerSessionAndProcess => "EndGameServerSessionAndProcess",
        }
    }

    pub fn parse(name: &str) -> Option<GseAction> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Documented requests per second per credential.
    pub fn default_rate_limit(self) -> u32 {
        match self {
            Self::JoinGameServerSession | Self::JoinGameServerSessionBatch => 1000,
            _ => 20,
        }
    }
}

// ---- wire helpers -------------------------------------------------------------------------

fn invalid(message: impl Into<String>) -> TencentError {
    TencentError::new("InvalidParameterValue", message)
}

fn check_len(name: &str, value: &str, min: usize, max: usize) -> Result<(), TencentError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(invalid(format!(
            "{name} must be {min} to {max} characters long; got {len}"
        )));
    }
    Ok(())
}

fn check_opt_len(
    name: &str,
    value: &Option<String>,
    min: usize,
    max: usize,
) -> Result<(), TencentError> {
    match value {
        Some(v) => check_len(name, v, min, max),
        None => Ok(()),
    }
}

fn check_session_id(value: &str) -> Result<(), TencentError> {
    check_len("GameServerSessionId", value, 1, 256)?;
    if !value.is_ascii() {
        return Err(invalid("GameServerSessionId must be ASCII"));
    }
    Ok(())
}

fn check_limit(limit: Option<u64>, max: u64) -> Result<Option<u32>, TencentError> {
    match limit {
        None => Ok(None),
        Some(n) if n == 0 || n > max => Err(invalid(format!("Limit must be 1 to {max}; got {n}"))),
        Some(n) => Ok(Some(n as u32)),
    }
}

fn check_offset(offset: Option<i64>) -> Result<u32, TencentError> {
    match offset {
        None => Ok(0),
        Some(n) if !(0..=i64::from(u32::MAX)).contains(&n) => {
            Err(invalid(format!("Offset must be 0 or more; got {n}")))
        }
        Some(n) => Ok(n as u32),
    }
}

fn check_token(token: &Option<String>) -> Result<(), TencentError> {
    check_opt_len("NextToken", token, 1, 1024)
}

/// An optional enum-valued parameter: `None` if absent, an error naming the allowed values.
fn enum_param<T>(
    name: &str,
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<Option<T>, TencentError> {
    value
        .map(|v| parse(v).ok_or_else(|| invalid(format!("{name} must be {allowed}; got {v:?}"))))
        .transpose()
}

const PROTECTION_POLICIES: &str = "NoProtection, TimeLimitProtection or FullProtection";

fn to_u32(name: &str, value: u64) -> Result<u32, TencentError> {
    u32::try_from(value).map_err(|_| invalid(format!("{name} is too large: {value}")))
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, seconds).
pub fn format_time(ms: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn tags_in(tags: Option<Vec<WireTag>>) -> Result<Vec<gse::Tag>, TencentError> {
    let tags = tags.unwrap_or_default();
    if tags.len() > 50 {
        return Err(invalid(format!(
            "Tags takes at most 50 tags; got {}",
            tags.len()
        )));
    }
    tags.into_iter()
        .map(|t| {
            let key = t.key.unwrap_or_default();
            let value = t.value.unwrap_or_default();
            if key.is_empty() || key.len() > 127 {
                return Err(invalid("a tag Key must be 1 to 127 bytes"));
            }
            if value.len() > 255 {
                return Err(invalid("a tag Value must be at most 255 bytes"));
            }
            Ok(gse::Tag { key, value })
        })
        .collect()
}

fn tags_out(tags: &[gse::Tag]) -> Vec<WireTag> {
    tags.iter()
        .map(|t| WireTag {
            key: Some(t.key.clone()),
            value: Some(t.value.clone()),
        })
        .collect()
}

/// Filters `{Key, Values[]}` with keys `resource:name`, `resource:resourceId`, `tag:key`, `tag:key-value`.
fn resource_filters(
    filters: Option<Vec<WireFilter>>,
    allow_ids: bool,
) -> Result<gse::ResourceFilter, TencentError> {
    let mut out = gse::ResourceFilter::default();
    let filters = filters.unwrap_or_default();
    if filters.len() > 20 {
        return Err(invalid("Filters takes at most 20 filters"));
    }
    for filter in filters {
        let key = filter.key.unwrap_or_default();
        let values = filter.values.unwrap_or_default();
        if values.len() > 100 {
            return Err(invalid(format!("filter {key} takes at most 100 values")));
        }
        match key.as_str() {
            "resource:name" => out.names.extend(values),
            "resource:resourceId" if allow_ids => out.ids.extend(values),
            "tag:key" => out.tag_keys.extend(values),
            "tag:key-value" => {
                for v in values {
                    let (k, val) = v.split_once(':').ok_or_else(|| {
                        invalid(format!("tag:key-value values are \"key:value\"; got {v:?}"))
                    })?;
                    out.tag_key_values.push((k.to_string(), val.to_string()));
                }
            }
            other => {
                return Err(invalid(format!(
                    "unknown filter key {other:?}; use resource:name{}, tag:key or tag:key-value",
                    if allow_ids {
                        ", resource:resourceId"
                    } else {
                        ""
                    }
                )))
            }
        }
    }
    Ok(out)
}

// ---- wire shapes --------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireTag {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireFilter {
    key: Option<String>,
    values: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct WireGameProperty {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireServerProcess {
    concurrent_executions: Option<u64>,
    launch_path: Option<String>,
    parameters: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireRuntimeConfiguration {
    game_server_session_activation_timeout_seconds: Option<u64>,
    max_concurrent_game_server_session_activations: Option<u64>,
    server_processes: Option<Vec<WireServerProcess>>,
}

#[derive(Debug, Default, Deserialize, Serialize, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
pub struct WireResourceCreationLimitPolicy {
    new_game_server_sessions_per_creator: Option<u64>,
    policy_period_in_minutes: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireInboundPermission {
    from_port: Option<u64>,
    ip_range: Option<String>,
    protocol: Option<String>,
    to_port: Option<u64>,
}

fn runtime_in(wire: WireRuntimeConfiguration) -> Result<gse::RuntimeConfiguration, TencentError> {
    let processes = wire.server_processes.unwrap_or_default();
    if processes.is_empty() || processes.len() > 50 {
        return Err(invalid(
            "RuntimeConfiguration.ServerProcesses needs 1 to 50 entries",
        ));
    }
    let server_processes = processes
        .into_iter()
        .map(|p| {
            let launch_path = p.launch_path.unwrap_or_default();
            check_len("ServerProcesses.LaunchPath", &launch_path, 1, 1024)?;
            let parameters = p.parameters.unwrap_or_default();
            check_len("ServerProcesses.Parameters", &parameters, 0, 1024)?;
            Ok(gse::ServerProcess {
                launch_path,
                parameters,
                concurrent_executions: to_u32(
                    "ConcurrentExecutions",
                    p.concurrent_executions.unwrap_or(1),
                )?,
            })
        })
        .collect::<Result<Vec<_>, TencentError>>()?;
    Ok(gse::RuntimeConfiguration {
        server_processes,
        activation_timeout_seconds: to_u32(
            "GameServerSessionActivationTimeoutSeconds",
            wire.game_server_session_activation_timeout_seconds
                .unwrap_or(600),
        )?,
        max_concurrent_activations: to_u32(
            "MaxConcurrentGameServerSessionActivations",
            wire.max_concurrent_game_server_session_activations
                .unwrap_or(i32::MAX as u64),
        )?,
    })
}

fn runtime_out(runtime: &gse::RuntimeConfiguration) -> WireRuntimeConfiguration {
    WireRuntimeConfiguration {
        game_server_session_activation_timeout_seconds: Some(u64::from(
            runtime.activation_timeout_seconds,
        )),
        max_concurrent_game_server_session_activations: Some(u64::from(
            runtime.max_concurrent_activations,
        )),
        server_processes: Some(
            runtime
                .server_processes
                .iter()
                .map(|p| WireServerProcess {
                    concurrent_executions: Some(u64::from(p.concurrent_executions)),
                    launch_path: Some(p.launch_path.clone()),
                    parameters: Some(p.parameters.clone()),
                })
                .collect(),
        ),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireGameServerSession {
    creation_time: String,
    creator_id: Option<String>,
    current_player_session_count: u32,
    dns_name: Option<String>,
    fleet_id: String,
    game_properties: Option<Vec<WireGameProperty>>,
    game_server_session_data: Option<String>,
    game_server_session_id: String,
    ip_address: String,
    matchmaker_data: Option<String>,
    maximum_player_session_count: u32,
    name: Option<String>,
    player_session_creation_policy: Option<&'static str>,
    port: u16,
    status: &'static str,
    status_reason: Option<String>,
    termination_time: Option<String>,
    instance_type: Option<String>,
    current_custom_count: Option<i64>,
    max_custom_count: Option<i64>,
    weight: Option<i64>,
    availability_status: Option<&'static str>,
}

fn session_out(s: &gse::GameServerSession) -> WireGameServerSession {
    WireGameServerSession {
        creation_time: format_time(s.created_ms),
        creator_id: s.creator_id.clone(),
        current_player_session_count: s.current_players,
        dns_name: Some(String::new()),
        fleet_id: s.fleet_id.to_string(),
        game_properties: Some(
            s.game_properties
                .iter()
                .map(|p| WireGameProperty {
                    key: Some(p.key.clone()),
                    value: Some(p.value.clone()),
                })
                .collect(),
        ),
        game_server_session_data: s.data.clone(),
        game_server_session_id: s.id.to_string(),
        ip_address: s.ip_address.to_string(),
        matchmaker_data: s.matchmaker_data.clone(),
        maximum_player_session_count: s.max_players,
        name: s.name.clone(),
        player_session_creation_policy: Some(s.creation_policy.name()),
        port: s.port,
        status: s.status.name(),
        status_reason: s.status_reason.clone(),
        termination_time: s.terminated_ms.map(format_time),
        instance_type: s.instance_type.clone(),
        current_custom_count: s.current_custom_count,
        max_custom_count: s.max_custom_count,
        weight: Some(10),
        availability_status: Some("Enable"),
    }
}

/// Borrows from the player session: the join answers are the hot path.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WirePlayerSession<'a> {
    creation_time: String,
    dns_name: &'static str,
    fleet_id: &'a str,
    game_server_session_id: &'a str,
    ip_address: &'a str,
    player_data: Option<&'a str>,
    player_id: &'a str,
    player_session_id: &'a str,
    port: u16,
    status: &'static str,
    termination_time: Option<String>,
}

fn player_out(p: &gse::PlayerSession) -> WirePlayerSession<'_> {
    WirePlayerSession {
        creation_time: format_time(p.created_ms),
        dns_name: "",
        fleet_id: &p.fleet_id,
        game_server_session_id: &p.game_server_session_id,
        ip_address: &p.ip_address,
        player_data: p.player_data.as_deref(),
        player_id: &p.player_id,
        player_session_id: &p.id,
        port: p.port,
        status: p.status.name(),
        termination_time: p.terminated_ms.map(format_time),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireFleetAttributes {
    asset_id: String,
    creation_time: String,
    description: Option<String>,
    fleet_arn: String,
    fleet_id: String,
    fleet_type: String,
    instance_type: Option<String>,
    name: String,
    new_game_server_session_protection_policy: &'static str,
    operating_system: String,
    resource_creation_limit_policy: Option<WireResourceCreationLimitPolicy>,
    status: &'static str,
    stopped_actions: Option<Vec<String>>,
    termination_time: Option<String>,
    game_server_session_protection_time_limit: u32,
    billing_status: Option<String>,
    tags: Vec<WireTag>,
    data_disk_info: Option<Vec<Value>>,
    system_disk_info: Option<Value>,
    related_ccn_infos: Option<Vec<Value>>,
    internet_max_bandwidth_out: Option<i64>,
}

fn fleet_out(f: &gse::Fleet) -> WireFleetAttributes {
    WireFleetAttributes {
        asset_id: f.asset_id.clone(),
        creation_time: format_time(f.created_ms),
        description: f.description.clone(),
        fleet_arn: gse::ids::fleet_arn(&f.region, &f.account.0, &f.id),
        fleet_id: f.id.clone(),
        fleet_type: f.fleet_type.clone(),
        instance_type: f.instance_type.clone(),
        name: f.name.clone(),
        new_game_server_session_protection_policy: f.protection_policy.name(),
        operating_system: f.operating_system.clone(),
        resource_creation_limit_policy: f.resource_creation_limit.map(|p| {
            WireResourceCreationLimitPolicy {
                new_game_server_sessions_per_creator: Some(u64::from(p.new_sessions_per_creator)),
                policy_period_in_minutes: Some(u64::from(p.policy_period_minutes)),
            }
        }),
        status: f.status.name(),
        stopped_actions: None,
        termination_time: f.terminated_ms.map(format_time),
        game_server_session_protection_time_limit: f.protection_time_limit_minutes,
        billing_status: None,
        tags: tags_out(&f.tags),
        data_disk_info: None,
        system_disk_info: None,
        related_ccn_infos: None,
        internet_max_bandwidth_out: None,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireAsset {
    asset_id: String,
    asset_name: String,
    asset_version: String,
    operate_system: String,
    stauts: i64,
    size: String,
    create_time: String,
    bind_fleet_num: i64,
    asset_arn: String,
    image_id: String,
    os_type: String,
    resource_type: &'static str,
    sharing_status: &'static str,
    tags: Vec<WireTag>,
}

// ---- requests -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateAssetRequest {
    bucket_key: String,
    asset_name: String,
    asset_version: String,
    #[allow(dead_code)]
    asset_region: String,
    operate_system: String,
    image_id: Option<String>,
    tags: Option<Vec<WireTag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAssetsRequest {
    #[allow(dead_code)]
    asset_region: String,
    offset: i64,
    limit: i64,
    filter: Option<String>,
    filters: Option<Vec<WireFilter>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssetIdRequest {
    asset_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateFleetRequest {
    asset_id: Option<String>,
    description: Option<String>,
    inbound_permissions: Option<Vec<WireInboundPermission>>,
    instance_type: Option<String>,
    fleet_type: Option<String>,
    name: Option<String>,
    new_game_server_session_protection_policy: Option<String>,
    resource_creation_limit_policy: Option<WireResourceCreationLimitPolicy>,
    runtime_configuration: Option<WireRuntimeConfiguration>,
    game_server_session_protection_time_limit: Option<i64>,
    tags: Option<Vec<WireTag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeFleetAttributesRequest {
    fleet_ids: Option<Vec<String>>,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListFleetsRequest {
    asset_id: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
    filters: Option<Vec<WireFilter>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FleetIdRequest {
    fleet_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateRuntimeConfigurationRequest {
    fleet_id: String,
    runtime_configuration: Option<WireRuntimeConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstancesRequest {
    fleet_id: Option<String>,
    instance_id: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
    ip_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGameServerSessionRequest {
    maximum_player_session_count: u64,
    alias_id: Option<String>,
    creator_id: Option<String>,
    fleet_id: Option<String>,
    game_properties: Option<Vec<WireGameProperty>>,
    game_server_session_data: Option<String>,
    game_server_session_id: Option<String>,
    idempotency_token: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeGameServerSessionsRequest {
    alias_id: Option<String>,
    fleet_id: Option<String>,
    game_server_session_id: Option<String>,
    limit: Option<u64>,
    next_token: Option<String>,
    status_filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SearchGameServerSessionsRequest {
    alias_id: Option<String>,
    fleet_id: Option<String>,
    limit: Option<u64>,
    next_token: Option<String>,
    filter_expression: Option<String>,
    sort_expression: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateGameServerSessionRequest {
    game_server_session_id: String,
    maximum_player_session_count: Option<u64>,
    name: Option<String>,
    player_session_creation_policy: Option<String>,
    protection_policy: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JoinGameServerSessionRequest {
    game_server_session_id: String,
    player_id: String,
    player_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlayerDataMap {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JoinGameServerSessionBatchRequest {
    game_server_session_id: String,
    player_ids: Vec<String>,
    player_data_map: Option<PlayerDataMap>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribePlayerSessionsRequest {
    game_server_session_id: Option<String>,
    limit: Option<u64>,
    next_token: Option<String>,
    player_id: Option<String>,
    player_session_id: Option<String>,
    player_session_status_filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndGameServerSessionAndProcessRequest {
    game_server_session_id: Option<String>,
    ip_address: Option<String>,
    port: Option<i64>,
}

// ---- dispatch -----------------------------------------------------------------------------

fn decode<T: for<'de> Deserialize<'de>>(params: Value) -> Result<T, TencentError> {
    serde_json::from_value(params).map_err(|e| {
        TencentError::new(
            "InvalidParameter",
            format!("the parameters do not fit the action: {e}"),
        )
    })
}

/// Output fields of a successful call, serialised as a JSON object.
pub type Output = Result<Vec<u8>, TencentError>;

fn out<T: Serialize>(value: &T) -> Output {
    serde_json::to_vec(value)
        .map_err(|e| TencentError::internal(format!("encoding the response failed: {e}")))
}

/// `{"GameServerSession": …}`, the answer of CreateGameServerSession and UpdateGameServerSession.
fn one_session(session: &gse::GameServerSession) -> Output {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        game_server_session: WireGameServerSession,
    }
    out(&Response {
        game_server_session: session_out(session),
    })
}

/// Maps a domain error to this action's code (EndGameServerSessionAndProcess does not
/// declare ResourceNotFound, so unknown targets are InvalidParameterValue there).
fn map_err(action: GseAction, err: GseError) -> TencentError {
    let code = match &err {
        GseError::NotFound { .. } if action == GseAction::EndGameServerSessionAndProcess => {
            "InvalidParameterValue"
        }
        GseError::NotFound { .. } => "ResourceNotFound",
        GseError::WrongState { .. } => "ResourceUnavailable",
        GseError::CreationDenied(_) => "UnsupportedOperation",
        GseError::NotEnoughSlots { .. } | GseError::NoCapacity(_) => "ResourceInsufficient",
        GseError::PlayerAlreadyJoined { .. } | GseError::Refused(_) => "FailedOperation",
        GseError::Missing(_) => "MissingParameter",
        GseError::InvalidValue(_) => "InvalidParameterValue",
        GseError::Conflict(_) => "InvalidParameter",
        GseError::InUse(_) => "ResourceInUse",
        GseError::LimitExceeded(_) => "LimitExceeded",
        GseError::Internal(_) => return TencentError::internal(err.to_string()),
    };
    TencentError::new(code, err.to_string())
}

pub struct GseApi {
    service: Arc<GseService>,
}

impl GseApi {
    pub fn new(service: Arc<GseService>) -> Self {
        GseApi { service }
    }

    pub async fn call(&self, action: GseAction, caller: &Caller, params: Value) -> Output {
        let result = match action {
            GseAction::CreateAsset => self.create_asset(caller, decode(params)?).await,
            GseAction::DescribeAsset => self.describe_asset(caller, decode(params)?),
            GseAction::DescribeAssets => self.describe_assets(caller, decode(params)?),
            GseAction::DeleteAsset => self.delete_asset(caller, decode(params)?).await,
            GseAction::CreateFleet => self.create_fleet(caller, decode(params)?).await,
            GseAction::DescribeFleetAttributes => {
                self.describe_fleet_attributes(caller, decode(params)?)
            }
            GseAction::ListFleets => self.list_fleets(caller, decode(params)?),
            GseAction::DeleteFleet => self.delete_fleet(caller, decode(params)?).await,
            GseAction::DescribeRuntimeConfiguration => {
                self.describe_runtime_configuration(caller, decode(params)?)
            }
            GseAction::UpdateRuntimeConfiguration => {
                self.update_runtime_configuration(caller, decode(params)?)
                    .await
            }
            GseAction::DescribeInstances => self.describe_instances(caller, decode(params)?),
            GseAction::CreateGameServerSession => {
                self.create_game_server_session(caller, decode(params)?)
                    .await
            }
            GseAction::DescribeGameServerSessions => {
                self.describe_game_server_sessions(caller, decode(params)?, false)
            }
            GseAction::DescribeGameServerSessionDetails => {
                self.describe_game_server_sessions(caller, decode(params)?, true)
            }
            GseAction::SearchGameServerSessions => {
                self.search_game_server_sessions(caller, decode(params)?)
            }
            GseAction::UpdateGameServerSession => {
                self.update_game_server_session(caller, decode(params)?)
                    .await
            }
            GseAction::JoinGameServerSession => {
                self.join_game_server_session(caller, decode(params)?).await
            }
            GseAction::JoinGameServerSessionBatch => {
                self.join_game_server_session_batch(caller, decode(params)?)
                    .await
            }
            GseAction::DescribePlayerSessions => {
                self.describe_player_sessions(caller, decode(params)?)
            }
            GseAction::EndGameServerSessionAndProcess => {
                self.end_game_server_session_and_process(caller, decode(params)?)
                    .await
            }
        };
        result.map_err(|e| match e {
            ActionError::Wire(e) => e,
            ActionError::Domain(e) => map_err(action, e),
        })
    }

    fn asset_out(&self, a: &gse::Asset) -> WireAsset {
        WireAsset {
            asset_id: a.id.clone(),
            asset_name: a.name.clone(),
            asset_version: a.version.clone(),
            operate_system: a.operating_system.clone(),
            stauts: 2,
            size: format!("{:.2}MB", a.size_bytes as f64 / 1_048_576.0),
            create_time: format_time(a.created_ms),
            bind_fleet_num: self.service.asset_fleet_count(&a.id) as i64,
            asset_arn: gse::ids::asset_arn(&a.region, &a.account.0, &a.id),
            image_id: a.image_id.clone(),
            os_type: "Linux".into(),
            resource_type: "ASSET",
            sharing_status: "UNKNOWN_SHARED",
            tags: tags_out(&a.tags),
        }
    }

    async fn create_asset(
        &self,
        caller: &Caller,
        req: CreateAssetRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_len("AssetName", &req.asset_name, 1, 64)?;
        check_len("AssetVersion", &req.asset_version, 1, 64)?;
        check_len("BucketKey", &req.bucket_key, 1, 1024)?;
        let asset = self
            .service
            .create_asset(
                caller,
                gse::CreateAsset {
                    bucket_key: Some(req.bucket_key),
                    name: req.asset_name,
                    version: req.asset_version,
                    operating_system: req.operate_system,
                    image_id: req.image_id.unwrap_or_default(),
                    tags: tags_in(req.tags)?,
                },
            )
            .await?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            asset_id: String,
            asset_arn: String,
        }
        Ok(out(&Response {
            asset_arn: gse::ids::asset_arn(&asset.region, &asset.account.0, &asset.id),
            asset_id: asset.id,
        })?)
    }

    fn describe_assets(
        &self,
        caller: &Caller,
        req: DescribeAssetsRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let limit = check_limit(Some(req.limit.max(0) as u64), 100)?;
        let offset = check_offset(Some(req.offset))?;
        let mut filters = resource_filters(req.filters, true)?;
        if let Some(filter) = req.filter.filter(|f| !f.is_empty()) {
            // Deprecated single filter: an asset id or name.
            if filter.starts_with("asset-") {
                filters.ids.push(filter);
            } else {
                filters.names.push(filter);
            }
        }
        let page = self.service.describe_assets(
            caller,
            &gse::AssetQuery {
                filter: filters,
                offset,
                limit,
            },
        );
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            total_count: usize,
            assets: Vec<WireAsset>,
        }
        Ok(out(&Response {
            total_count: page.total,
            assets: page.items.iter().map(|a| self.asset_out(a)).collect(),
        })?)
    }

    fn describe_asset(&self, caller: &Caller, req: AssetIdRequest) -> Result<Vec<u8>, ActionError> {
        let page = self.service.describe_assets(
            caller,
            &gse::AssetQuery {
                filter: gse::ResourceFilter {
                    ids: vec![req.asset_id.clone()],
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let asset = page.items.first().ok_or_else(|| GseError::NotFound {
            kind: "asset",
            id: req.asset_id.clone(),
        })?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            asset: WireAsset,
        }
        Ok(out(&Response {
            asset: self.asset_out(asset),
        })?)
    }

    async fn delete_asset(
        &self,
        caller: &Caller,
        req: AssetIdRequest,
    ) -> Result<Vec<u8>, ActionError> {
        self.service.delete_asset(caller, &req.asset_id).await?;
        Ok(b"{}".to_vec())
    }

    async fn create_fleet(
        &self,
        caller: &Caller,
        req: CreateFleetRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_opt_len("Name", &req.name, 1, 50)?;
        check_opt_len("Description", &req.description, 0, 100)?;
        let protection_policy = enum_param(
            "NewGameServerSessionProtectionPolicy",
            req.new_game_server_session_protection_policy.as_deref(),
            gse::ProtectionPolicy::parse,
            PROTECTION_POLICIES,
        )?;
        if let Some(t) = &req.fleet_type {
            if t != "ON_DEMAND" && t != "SPOT" {
                return Err(
                    invalid(format!("FleetType must be ON_DEMAND or SPOT; got {t:?}")).into(),
                );
            }
        }
        let inbound_permissions = req
            .inbound_permissions
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let from = p.from_port.unwrap_or(0);
                let to = p.to_port.unwrap_or(0);
                if from < 1025 || to > 60000 || from > to {
                    return Err(invalid(format!(
                        "InboundPermissions ports must satisfy 1025 <= FromPort <= ToPort <= 60000; got {from}-{to}"
                    )));
                }
                let protocol = p.protocol.unwrap_or_else(|| "TCP".into());
                if protocol != "TCP" && protocol != "UDP" {
                    return Err(invalid(format!("InboundPermissions Protocol must be TCP or UDP; got {protocol:?}")));
                }
                Ok(gse::InboundPermission {
                    from_port: from as u32,
                    to_port: to as u32,
                    ip_range: p.ip_range.unwrap_or_else(|| "0.0.0.0/0".into()),
                    protocol,
                })
            })
            .collect::<Result<Vec<_>, TencentError>>()?;
        let resource_creation_limit = req
            .resource_creation_limit_policy
            .map(|p| {
                let per_creator = p.new_game_server_sessions_per_creator.unwrap_or(2);
                let period = p.policy_period_in_minutes.unwrap_or(3);
                if per_creator == 0 || period == 0 {
                    return Err(invalid(
                        "ResourceCreationLimitPolicy values must be at least 1",
                    ));
                }
                Ok(gse::ResourceCreationLimitPolicy {
                    new_sessions_per_creator: to_u32(
                        "NewGameServerSessionsPerCreator",
                        per_creator,
                    )?,
                    policy_period_minutes: to_u32("PolicyPeriodInMinutes", period)?,
                })
            })
            .transpose()?;
        let time_limit = req
            .game_server_session_protection_time_limit
            .map(|t| {
                u32::try_from(t)
                    .map_err(|_| invalid("GameServerSessionProtectionTimeLimit must be 5 to 1440"))
            })
            .transpose()?;
        let fleet = self
            .service
            .create_fleet(
                caller,
                gse::CreateFleet {
                    asset_id: req.asset_id,
                    name: req.name,
                    description: req.description,
                    fleet_type: req.fleet_type,
                    instance_type: req.instance_type,
                    inbound_permissions,
                    protection_policy,
                    protection_time_limit_minutes: time_limit,
                    resource_creation_limit,
                    runtime: req.runtime_configuration.map(runtime_in).transpose()?,
                    tags: tags_in(req.tags)?,
                },
            )
            .await?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            fleet_attributes: WireFleetAttributes,
        }
        Ok(out(&Response {
            fleet_attributes: fleet_out(&fleet),
        })?)
    }

    fn describe_fleet_attributes(
        &self,
        caller: &Caller,
        req: DescribeFleetAttributesRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let limit = check_limit(Some(req.limit.unwrap_or(20)), 100)?;
        let ids = req.fleet_ids.unwrap_or_default();
        if ids.len() > 100 {
            return Err(invalid("FleetIds takes at most 100 ids").into());
        }
        let page = self.service.describe_fleets(
            caller,
            &gse::FleetQuery {
                filter: gse::ResourceFilter {
                    ids,
                    ..Default::default()
                },
                offset: check_offset(req.offset.map(|o| o.min(u64::from(u32::MAX)) as i64))?,
                limit,
                ..Default::default()
            },
        );
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            fleet_attributes: Vec<WireFleetAttributes>,
            total_count: usize,
        }
        Ok(out(&Response {
            fleet_attributes: page.items.iter().map(fleet_out).collect(),
            total_count: page.total,
        })?)
    }

    fn list_fleets(&self, caller: &Caller, req: ListFleetsRequest) -> Result<Vec<u8>, ActionError> {
        let page = self.service.describe_fleets(
            caller,
            &gse::FleetQuery {
                asset_id: req.asset_id,
                filter: resource_filters(req.filters, false)?,
                offset: check_offset(req.offset.map(|o| o.min(u64::from(u32::MAX)) as i64))?,
                limit: check_limit(req.limit, 100)?,
            },
        );
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            fleet_ids: Vec<String>,
            total_count: usize,
        }
        Ok(out(&Response {
            fleet_ids: page.items.into_iter().map(|f| f.id).collect(),
            total_count: page.total,
        })?)
    }

    async fn delete_fleet(
        &self,
        caller: &Caller,
        req: FleetIdRequest,
    ) -> Result<Vec<u8>, ActionError> {
        self.service.delete_fleet(caller, &req.fleet_id).await?;
        Ok(b"{}".to_vec())
    }

    fn describe_runtime_configuration(
        &self,
        caller: &Caller,
        req: FleetIdRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let fleet = self.service.fleet(caller, &req.fleet_id)?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            runtime_configuration: Option<WireRuntimeConfiguration>,
        }
        Ok(out(&Response {
            runtime_configuration: fleet.runtime.as_ref().map(runtime_out),
        })?)
    }

    async fn update_runtime_configuration(
        &self,
        caller: &Caller,
        req: UpdateRuntimeConfigurationRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let runtime = req.runtime_configuration.ok_or_else(|| {
            TencentError::new("MissingParameter", "RuntimeConfiguration is required")
        })?;
        let runtime = self
            .service
            .update_runtime_configuration(caller, &req.fleet_id, runtime_in(runtime)?)
            .await?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            runtime_configuration: WireRuntimeConfiguration,
        }
        Ok(out(&Response {
            runtime_configuration: runtime_out(&runtime),
        })?)
    }

    fn describe_instances(
        &self,
        caller: &Caller,
        req: DescribeInstancesRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let page = self.service.describe_instances(
            caller,
            &gse::InstanceQuery {
                fleet_id: req.fleet_id,
                instance_id: req.instance_id,
                ip_address: req.ip_address,
                offset: check_offset(req.offset.map(|o| o.min(u64::from(u32::MAX)) as i64))?,
                limit: check_limit(req.limit, 100)?,
            },
        )?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct WireInstance {
            fleet_id: String,
            instance_id: String,
            ip_address: String,
            dns_name: &'static str,
            operating_system: String,
            status: &'static str,
            #[serde(rename = "Type")]
            instance_type: Option<String>,
            create_time: String,
            weight: i64,
            reserve_value: i64,
            private_ip_address: String,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            instances: Vec<WireInstance>,
            total_count: usize,
        }
        Ok(out(&Response {
            instances: page
                .items
                .into_iter()
                .map(|i| WireInstance {
                    fleet_id: i.fleet_id,
                    instance_id: i.instance_id,
                    private_ip_address: i.ip_address.clone(),
                    ip_address: i.ip_address,
                    dns_name: "",
                    operating_system: i.operating_system,
                    status: "RUNNING",
                    instance_type: i.instance_type,
                    create_time: format_time(i.created_ms),
                    weight: 10,
                    reserve_value: 0,
                })
                .collect(),
            total_count: page.total,
        })?)
    }

    async fn create_game_server_session(
        &self,
        caller: &Caller,
        req: CreateGameServerSessionRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_opt_len("CreatorId", &req.creator_id, 1, 1024)?;
        check_opt_len(
            "GameServerSessionData",
            &req.game_server_session_data,
            0,
            4096,
        )?;
        check_opt_len("IdempotencyToken", &req.idempotency_token, 1, 48)?;
        check_opt_len("Name", &req.name, 1, 1024)?;
        if let Some(custom) = &req.game_server_session_id {
            // The custom part ends up inside the GSS id, which clients pass back (1-256 ASCII).
            check_len("GameServerSessionId", custom, 1, 48)?;
            if !custom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    "GameServerSessionId may contain only letters, digits, '-' and '_'",
                )
                .into());
            }
        }
        let props = req.game_properties.unwrap_or_default();
        if props.len() > 16 {
            return Err(invalid(format!(
                "GameProperties takes at most 16 entries; got {}",
                props.len()
            ))
            .into());
        }
        let game_properties = props
            .into_iter()
            .map(|p| {
                let key = p.key.unwrap_or_default();
                let value = p.value.unwrap_or_default();
                check_len("GameProperties.Key", &key, 1, 32)?;
                check_len("GameProperties.Value", &value, 0, 96)?;
                Ok(gse::GameProperty { key, value })
            })
            .collect::<Result<Vec<_>, TencentError>>()?;
        let session = self
            .service
            .create_game_server_session(
                caller,
                gse::CreateGameServerSession {
                    fleet_id: req.fleet_id,
                    alias_id: req.alias_id,
                    max_players: to_u32(
                        "MaximumPlayerSessionCount",
                        req.maximum_player_session_count,
                    )?,
                    creator_id: req.creator_id,
                    game_properties,
                    data: req.game_server_session_data,
                    custom_id: req.game_server_session_id,
                    idempotency_token: req.idempotency_token,
                    name: req.name,
                },
            )
            .await?;
        Ok(one_session(&session)?)
    }

    fn describe_game_server_sessions(
        &self,
        caller: &Caller,
        req: DescribeGameServerSessionsRequest,
        details: bool,
    ) -> Result<Vec<u8>, ActionError> {
        check_token(&req.next_token)?;
        if let Some(id) = &req.game_server_session_id {
            check_session_id(id)?;
        }
        let status = enum_param(
            "StatusFilter",
            req.status_filter.as_deref(),
            gse::GameServerSessionStatus::parse,
            "ACTIVATING, ACTIVE, TERMINATING, TERMINATED or ERROR",
        )?;
        let page = self.service.describe_game_server_sessions(
            caller,
            &gse::SessionQuery {
                fleet_id: req.fleet_id,
                alias_id: req.alias_id,
                session_id: req.game_server_session_id,
                status,
                limit: req.limit.map(|l| l.min(u64::from(u32::MAX)) as u32),
                next_token: req.next_token,
            },
        )?;
        if details {
            #[derive(Serialize)]
            #[serde(rename_all = "PascalCase")]
            struct Detail {
                game_server_session: WireGameServerSession,
                protection_policy: &'static str,
            }
            #[derive(Serialize)]
            #[serde(rename_all = "PascalCase")]
            struct Response {
                game_server_session_details: Vec<Detail>,
                next_token: Option<String>,
            }
            Ok(out(&Response {
                game_server_session_details: page
                    .items
                    .iter()
                    .map(|d| Detail {
                        game_server_session: session_out(&d.session),
                        protection_policy: d.protection.name(),
                    })
                    .collect(),
                next_token: page.next_token,
            })?)
        } else {
            #[derive(Serialize)]
            #[serde(rename_all = "PascalCase")]
            struct Response {
                game_server_sessions: Vec<WireGameServerSession>,
                next_token: Option<String>,
            }
            Ok(out(&Response {
                game_server_sessions: page.items.iter().map(|d| session_out(&d.session)).collect(),
                next_token: page.next_token,
            })?)
        }
    }

    fn search_game_server_sessions(
        &self,
        caller: &Caller,
        req: SearchGameServerSessionsRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_token(&req.next_token)?;
        let filter = req
            .filter_expression
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(search::Filter::parse)
            .transpose()
            .map_err(invalid)?;
        let sort = req
            .sort_expression
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(search::Sort::parse)
            .transpose()
            .map_err(invalid)?;
        let page = self.service.search_game_server_sessions(
            caller,
            &gse::SearchQuery {
                fleet_id: req.fleet_id,
                alias_id: req.alias_id,
                filter,
                sort,
                limit: req.limit.map(|l| l.min(u64::from(u32::MAX)) as u32),
                next_token: req.next_token,
            },
        )?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response {
            game_server_sessions: Vec<WireGameServerSession>,
            next_token: Option<String>,
        }
        Ok(out(&Response {
            game_server_sessions: page.items.iter().map(session_out).collect(),
            next_token: page.next_token,
        })?)
    }

    async fn update_game_server_session(
        &self,
        caller: &Caller,
        req: UpdateGameServerSessionRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_session_id(&req.game_server_session_id)?;
        check_opt_len("Name", &req.name, 1, 1024)?;
        let creation_policy = enum_param(
            "PlayerSessionCreationPolicy",
            req.player_session_creation_policy.as_deref(),
            gse::PlayerSessionCreationPolicy::parse,
            "ACCEPT_ALL or DENY_ALL",
        )?;
        let protection = enum_param(
            "ProtectionPolicy",
            req.protection_policy.as_deref(),
            gse::ProtectionPolicy::parse,
            PROTECTION_POLICIES,
        )?;
        let session = self
            .service
            .update_game_server_session(
                caller,
                gse::UpdateGameServerSession {
                    session_id: req.game_server_session_id,
                    max_players: req
                        .maximum_player_session_count
                        .map(|m| to_u32("MaximumPlayerSessionCount", m))
                        .transpose()?,
                    name: req.name,
                    creation_policy,
                    protection,
                },
            )
            .await?;
        Ok(one_session(&session)?)
    }

    async fn join_game_server_session(
        &self,
        caller: &Caller,
        req: JoinGameServerSessionRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_session_id(&req.game_server_session_id)?;
        check_len("PlayerId", &req.player_id, 1, 1024)?;
        check_opt_len("PlayerData", &req.player_data, 0, 2048)?;
        let joined = self
            .service
            .join_game_server_session(
                caller,
                &req.game_server_session_id,
                vec![(req.player_id, req.player_data)],
            )
            .await?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response<'a> {
            player_session: Option<WirePlayerSession<'a>>,
        }
        Ok(out(&Response {
            player_session: joined.first().map(player_out),
        })?)
    }

    async fn join_game_server_session_batch(
        &self,
        caller: &Caller,
        req: JoinGameServerSessionBatchRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_session_id(&req.game_server_session_id)?;
        let ids = req.player_ids;
        if ids.is_empty() || ids.len() > 25 {
            return Err(invalid(format!(
                "PlayerIds takes 1 to 25 player ids; got {}",
                ids.len()
            ))
            .into());
        }
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        for id in &ids {
            check_len("each of PlayerIds", id, 1, 1024)?;
            if !seen.insert(id.as_str()) {
                return Err(
                    invalid(format!("PlayerIds lists player {id:?} more than once")).into(),
                );
            }
        }
        let data = match req.player_data_map {
            None => None,
            Some(map) => {
                let key = map.key.unwrap_or_default();
                let value = map.value.unwrap_or_default();
                check_len("PlayerDataMap.Key", &key, 1, 1024)?;
                check_len("PlayerDataMap.Value", &value, 1, 2048)?;
                if !seen.contains(key.as_str()) {
                    return Err(invalid(format!(
                        "PlayerDataMap.Key {key:?} is not one of PlayerIds; it names the player whose PlayerData is Value"
                    ))
                    .into());
                }
                Some((key, value))
            }
        };
        let players = ids
            .into_iter()
            .map(|id| {
                let player_data = data
                    .as_ref()
                    .filter(|(k, _)| *k == id)
                    .map(|(_, v)| v.clone());
                (id, player_data)
            })
            .collect();
        let joined = self
            .service
            .join_game_server_session(caller, &req.game_server_session_id, players)
            .await?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response<'a> {
            player_sessions: Vec<WirePlayerSession<'a>>,
        }
        Ok(out(&Response {
            player_sessions: joined.iter().map(player_out).collect(),
        })?)
    }

    fn describe_player_sessions(
        &self,
        caller: &Caller,
        req: DescribePlayerSessionsRequest,
    ) -> Result<Vec<u8>, ActionError> {
        check_token(&req.next_token)?;
        if let Some(id) = &req.game_server_session_id {
            check_session_id(id)?;
        }
        check_opt_len("PlayerId", &req.player_id, 1, 1024)?;
        check_opt_len("PlayerSessionId", &req.player_session_id, 1, 1024)?;
        let status = enum_param(
            "PlayerSessionStatusFilter",
            req.player_session_status_filter.as_deref(),
            gse::PlayerSessionStatus::parse,
            "RESERVED, ACTIVE, COMPLETED or TIMEDOUT",
        )?;
        let page = self.service.describe_player_sessions(
            caller,
            &gse::PlayerSessionQuery {
                game_server_session_id: req.game_server_session_id,
                player_id: req.player_id,
                player_session_id: req.player_session_id,
                status,
                limit: req.limit.map(|l| l.min(u64::from(u32::MAX)) as u32),
                next_token: req.next_token,
            },
        )?;
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Response<'a> {
            player_sessions: Vec<WirePlayerSession<'a>>,
            next_token: Option<String>,
        }
        Ok(out(&Response {
            player_sessions: page.items.iter().map(player_out).collect(),
            next_token: page.next_token,
        })?)
    }

    async fn end_game_server_session_and_process(
        &self,
        caller: &Caller,
        req: EndGameServerSessionAndProcessRequest,
    ) -> Result<Vec<u8>, ActionError> {
        let address = match (req.ip_address, req.port) {
            (None, None) => None,
            (Some(ip), Some(port)) => {
                if ip.parse::<IpAddr>().is_err() {
                    return Err(invalid(format!("IpAddress {ip:?} is not an IP address")).into());
                }
                if !(1025..=60000).contains(&port) {
                    return Err(invalid(format!("Port must be 1025 to 60000; got {port}")).into());
                }
                Some((ip, port as u16))
            }
            _ => {
                return Err(TencentError::new(
                    "MissingParameter",
                    "IpAddress and Port are needed together to name a game server process",
                )
                .into())
            }
        };
        if let Some(id) = &req.game_server_session_id {
            check_session_id(id)?;
        }
        let target = match (req.game_server_session_id, address) {
            (Some(session), None) => gse::EndTarget::Session(session),
            (None, Some((ip, port))) => gse::EndTarget::Address { ip, port },
            (Some(session), Some((ip, port))) => gse::EndTarget::Both { session, ip, port },
            (None, None) => {
                return Err(TencentError::new(
                    "MissingParameter",
                    "give GameServerSessionId, or IpAddress and Port together",
                )
                .into())
            }
        };
        self.service
            .end_game_server_session_and_process(caller, target)
            .await?;
        Ok(b"{}".to_vec())
    }
}

/// A handler failure: already in wire terms, or a domain error to map per action.
enum ActionError {
    Wire(TencentError),
    Domain(GseError),
}

impl From<TencentError> for ActionError {
    fn from(e: TencentError) -> Self {
        ActionError::Wire(e)
    }
}

impl From<GseError> for ActionError {
    fn from(e: GseError) -> Self {
        ActionError::Domain(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_seconds_with_z() {
        assert_eq!(format_time(1_575_631_999_123), "2019-12-06T11:33:19Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn every_implemented_action_is_in_the_schema() {
        let schema = crate::params::ApiSchema::gse();
        for action in GseAction::ALL {
            assert!(schema.has_action(action.name()), "{}", action.name());
            assert_eq!(GseAction::parse(action.name()), Some(action));
        }
        assert_eq!(
            GseAction::JoinGameServerSessionBatch.default_rate_limit(),
            1000
        );
        assert_eq!(
            GseAction::EndGameServerSessionAndProcess.default_rate_limit(),
            20
        );
    }
}
