//! The agent: sessiond's side of `GseGrpcSdkService`, called by game server processes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sessiond_core::gse::{
    GseError, GseService, PlayerSessionCreationPolicy, PlayerSessionQuery, PlayerSessionStatus,
};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::metadata::{KeyAndValueRef, MetadataMap};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::proto::gse_grpc_sdk_service_server::{GseGrpcSdkService, GseGrpcSdkServiceServer};
use crate::proto::{
    AcceptPlayerSessionRequest, ActivateGameServerSessionRequest, DescribePlayerSessionsRequest,
    DescribePlayerSessionsResponse, GseResponse, PlayerSession, ProcessEndingRequest,
    ProcessReadyRequest, RemovePlayerSessionRequest, ReportCustomDataRequest,
    TerminateGameServerSessionRequest, UpdatePlayerSessionCreationPolicyRequest,
};
use crate::{procfs, Supervisor};

/// How long a call from a pid the service does not know yet is retried: a process may call
/// ProcessReady before the supervisor has finished recording its launch.
const UNKNOWN_PID_WAIT: Duration = Duration::from_secs(3);
/// Longest parent chain walked to find the launched process (wrapper scripts).
const MAX_ANCESTORS: usize = 32;

/// Serves `GseGrpcSdkService` on `listener` until `shutdown` completes. `supervisor`, when
/// given, learns each process's gRPC port from ProcessReady at once.
pub async fn serve_agent<F>(
    listener: TcpListener,
    service: Arc<GseService>,
    supervisor: Option<Supervisor>,
    shutdown: F,
) -> Result<(), tonic::transport::Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let agent = Agent::new(service, supervisor);
    tonic::transport::Server::builder()
        .add_service(GseGrpcSdkServiceServer::new(agent))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// The `GseGrpcSdkService` implementation. Use [`serve_agent`], or mount
/// `GseGrpcSdkServiceServer::new(agent)` on a tonic server of your own.
pub struct Agent {
    service: Arc<GseService>,
    supervisor: Option<Supervisor>,
}

impl Agent {
    pub fn new(service: Arc<GseService>, supervisor: Option<Supervisor>) -> Agent {
        Agent {
            service,
            supervisor,
        }
    }

    /// The launched process a call comes from: the `pid` metadata, or the nearest ancestor of
    /// it that sessiond launched.
    async fn caller(&self, rpc: &str, metadata: &MetadataMap) -> Result<u32, Status> {
        let raw = metadata_value(metadata, "pid").ok_or_else(|| {
            Status::invalid_argument(
                "missing metadata \"pid\": every call must carry the caller's OS pid",
            )
        })?;
        let pid: u32 = raw.trim().parse().map_err(|_| {
            Status::invalid_argument(format!("metadata \"pid\" is not a process id: {raw:?}"))
        })?;
        let request_id = metadata_value(metadata, "requestId").unwrap_or_default();
        tracing::debug!(rpc, pid, request_id, "agent call");
        let deadline = Instant::now() + UNKNOWN_PID_WAIT;
        loop {
            if let Some(known) = self.launched_ancestor(pid) {
                return Ok(known);
            }
            if Instant::now() >= deadline {
                return Err(Status::failed_precondition(format!(
                    "unknown process {pid}: only processes launched by sessiond can call the agent"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn launched_ancestor(&self, pid: u32) -> Option<u32> {
        let mut current = pid;
        for _ in 0..MAX_ANCESTORS {
            if self.service.has_process(current) {
                return Some(current);
            }
            match procfs::parent_pid(current) {
                Some(parent) if parent > 1 && parent != current => current = parent,
                _ => return None,
            }
        }
        None
    }
}

/// A metadata value by key, compared case-insensitively (tonic lower-cases keys).
fn metadata_value(metadata: &MetadataMap, key: &str) -> Option<String> {
    metadata.iter().find_map(|entry| match entry {
        KeyAndValueRef::Ascii(k, v) if k.as_str().eq_ignore_ascii_case(key) => {
            v.to_str().ok().map(str::to_string)
        }
        _ => None,
    })
}

/// The gRPC status for a service error; its text is the error's message.
pub fn status_of(err: GseError) -> Status {
    let message = err.to_string();
    match err {
        GseError::NotFound { .. } => Status::not_found(message),
        GseError::WrongState { .. }
        | GseError::CreationDenied(_)
        | GseError::NotEnoughSlots { .. } => Status::failed_precondition(message),
        GseError::InvalidValue(_) | GseError::Missing(_) | GseError::Conflict(_) => {
            Status::invalid_argument(message)
        }
        _ => Status::internal(message),
    }
}

fn done(result: Result<(), GseError>) -> Result<Response<GseResponse>, Status> {
    result
        .map(|()| Response::new(GseResponse::default()))
        .map_err(status_of)
}

fn port(name: &str, value: i32) -> Result<u16, Status> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            Status::invalid_argument(format!("{name} {value} is not a TCP port (1-65535)"))
        })
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

fn required(name: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{name} is required")))
    } else {
        Ok(())
    }
}

fn ms_to_s(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

#[tonic::async_trait]
impl GseGrpcSdkService for Agent {
    async fn process_ready(
        &self,
        request: Request<ProcessReadyRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self.caller("ProcessReady", request.metadata()).await?;
        let req = request.into_inner();
        let client_port = port("clientPort", req.client_port)?;
        let grpc_port = port("grpcPort", req.grpc_port)?;
        self.service
            .process_ready(pid, client_port, grpc_port, req.log_paths_to_upload)
            .await
            .map_err(status_of)?;
        if let Some(supervisor) = &self.supervisor {
            supervisor.process_ready(pid, grpc_port);
        }
        tracing::info!(pid, client_port, grpc_port, "game server process ready");
        Ok(Response::new(GseResponse::default()))
    }

    async fn activate_game_server_session(
        &self,
        request: Request<ActivateGameServerSessionRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self
            .caller("ActivateGameServerSession", request.metadata())
            .await?;
        let req = request.into_inner();
        required("gameServerSessionId", &req.game_server_session_id)?;
        done(
            self.service
                .activate_game_server_session(pid, &req.game_server_session_id, req.max_players)
                .await,
        )
    }

    async fn accept_player_session(
        &self,
        request: Request<AcceptPlayerSessionRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self
            .caller("AcceptPlayerSession", request.metadata())
            .await?;
        let req = request.into_inner();
        required("gameServerSessionId", &req.game_server_session_id)?;
        required("playerSessionId", &req.player_session_id)?;
        done(
            self.service
                .accept_player_session(pid, &req.game_server_session_id, &req.player_session_id)
                .await,
        )
    }

    async fn remove_player_session(
        &self,
        request: Request<RemovePlayerSessionRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self
            .caller("RemovePlayerSession", request.metadata())
            .await?;
        let req = request.into_inner();
        required("gameServerSessionId", &req.game_server_session_id)?;
        required("playerSessionId", &req.player_session_id)?;
        done(
            self.service
                .remove_player_session(pid, &req.game_server_session_id, &req.player_session_id)
                .await,
        )
    }

    async fn describe_player_sessions(
        &self,
        request: Request<DescribePlayerSessionsRequest>,
    ) -> Result<Response<DescribePlayerSessionsResponse>, Status> {
        let pid = self
            .caller("DescribePlayerSessions", request.metadata())
            .await?;
        let req = request.into_inner();
        let status = match non_empty(req.player_session_status_filter) {
            None => None,
            Some(s) => Some(PlayerSessionStatus::parse(&s).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "playerSessionStatusFilter {s:?} is not one of RESERVED, ACTIVE, COMPLETED, TIMEDOUT"
                ))
            })?),
        };
        let limit = match req.limit {
            0 => None,
            n if n < 0 => {
                return Err(Status::invalid_argument(format!(
                    "limit {n} must not be negative"
                )))
            }
            n => Some(n as u32),
        };
        let query = PlayerSessionQuery {
            game_server_session_id: non_empty(req.game_server_session_id),
            player_id: non_empty(req.player_id),
            player_session_id: non_empty(req.player_session_id),
            status,
            limit,
            next_token: non_empty(req.next_token),
        };
        let page = self
            .service
            .describe_player_sessions_for_process(pid, query)
            .await
            .map_err(status_of)?;
        Ok(Response::new(DescribePlayerSessionsResponse {
            next_token: page.next_token.unwrap_or_default(),
            player_sessions: page
                .items
                .into_iter()
                .map(|ps| PlayerSession {
                    player_session_id: ps.id.to_string(),
                    player_id: ps.player_id,
                    game_server_session_id: ps.game_server_session_id.to_string(),
                    fleet_id: ps.fleet_id.to_string(),
                    ip_address: ps.ip_address.to_string(),
                    status: ps.status.name().to_string(),
                    creation_time: ms_to_s(ps.created_ms),
                    termination_time: ps.terminated_ms.map(ms_to_s).unwrap_or(0),
                    port: i32::from(ps.port),
                    player_data: ps.player_data.unwrap_or_default(),
                    dns_name: String::new(),
                })
                .collect(),
        }))
    }

    async fn update_player_session_creation_policy(
        &self,
        request: Request<UpdatePlayerSessionCreationPolicyRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self
            .caller("UpdatePlayerSessionCreationPolicy", request.metadata())
            .await?;
        let req = request.into_inner();
        required("gameServerSessionId", &req.game_server_session_id)?;
        let policy = PlayerSessionCreationPolicy::parse(&req.new_player_session_creation_policy)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "newPlayerSessionCreationPolicy {:?} is not ACCEPT_ALL or DENY_ALL",
                    req.new_player_session_creation_policy
                ))
            })?;
        done(
            self.service
                .update_player_session_creation_policy(pid, &req.game_server_session_id, policy)
                .await,
        )
    }

    async fn terminate_game_server_session(
        &self,
        request: Request<TerminateGameServerSessionRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self
            .caller("TerminateGameServerSession", request.metadata())
            .await?;
        let req = request.into_inner();
        required("gameServerSessionId", &req.game_server_session_id)?;
        done(
            self.service
                .terminate_game_server_session(pid, &req.game_server_session_id)
                .await,
        )
    }

    async fn process_ending(
        &self,
        request: Request<ProcessEndingRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self.caller("ProcessEnding", request.metadata()).await?;
        tracing::info!(pid, "game server process ending");
        done(self.service.process_ending(pid).await)
    }

    async fn report_custom_data(
        &self,
        request: Request<ReportCustomDataRequest>,
    ) -> Result<Response<GseResponse>, Status> {
        let pid = self.caller("ReportCustomData", request.metadata()).await?;
        let req = request.into_inner();
        done(
            self.service
                .report_custom_data(pid, req.current_custom_count, req.max_custom_count)
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn metadata_keys_match_case_insensitively() {
        let mut map = MetadataMap::new();
        map.insert("pid", "1234".parse().expect("value"));
        map.insert("requestid", "abc".parse().expect("value"));
        assert_eq!(metadata_value(&map, "pid").as_deref(), Some("1234"));
        assert_eq!(metadata_value(&map, "requestId").as_deref(), Some("abc"));
        assert_eq!(metadata_value(&map, "missing"), None);
    }

    #[test]
    fn errors_map_to_grpc_codes() {
        let nf = status_of(GseError::NotFound {
            kind: "game server session",
            id: "x".into(),
        });
        assert_eq!(nf.code(), Code::NotFound);
        assert_eq!(nf.message(), "game server session x does not exist");
        assert_eq!(
            status_of(GseError::CreationDenied("g".into())).code(),
            Code::FailedPrecondition
        );
        assert_eq!(
            status_of(GseError::InvalidValue("v".into())).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            status_of(GseError::Missing("v".into())).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            status_of(GseError::Conflict("v".into())).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            status_of(GseError::Internal("v".into())).code(),
            Code::Internal
        );
        assert_eq!(
            status_of(GseError::NoCapacity("v".into())).code(),
            Code::Internal
        );
    }

    #[test]
    fn ports_are_checked() {
        assert_eq!(port("clientPort", 7777).ok(), Some(7777));
        assert!(port("clientPort", 0).is_err());
        assert!(port("clientPort", -1).is_err());
        assert!(port("clientPort", 70000).is_err());
    }

    #[test]
    fn milliseconds_become_unix_seconds() {
        assert_eq!(ms_to_s(1_700_000_000_999), 1_700_000_000);
        assert_eq!(ms_to_s(0), 0);
    }
}
