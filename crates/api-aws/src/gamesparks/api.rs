//! The GameSparks endpoint: the typed route (before authentication), the body (bounded),
//! SigV4, the rate limit, the input decoded and validated from the model, then one method per
//! operation, each mapping the domain's errors to the exceptions the operation declares.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use sessiond_api_common::server::HandlerFuture;
use sessiond_api_common::{
    read_body, request_id, unix_now, BodyError, Credentials, Dialect, HttpResponse, Metrics,
    RateLimiter,
};
use sessiond_core::gamesparks::{
    CreateGame, CreateStage, GameSparksError, GameSparksService, ResourceRef, UpdateGame,
    UpdateStage,
};
use sessiond_core::Caller;

use super::generated::{Operation, SIGNING_NAME};
use super::routes::{self, NoRoute};
use super::shapes::*;
use super::validate::{decode_input, RawInput};
use crate::error::AwsError;
use crate::sigv4::{self, SignedRequest};

/// Request bodies are tiny in this API (50 tags at most); 1 MiB is plenty.
const MAX_BODY: usize = 1024 * 1024;
const MAX_QUERY: usize = 32 * 1024;

/// Requests per second per credential (access key) and operation.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Games, stages and tags.
    pub control_plane: u32,
    /// DisconnectPlayer and GetPlayerConnectionStatus.
    pub runtime: u32,
    /// Per operation, keyed `"gamesparks.<Operation>"` (the `[rate_limits]` table).
    pub overrides: HashMap<String, u32>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            control_plane: 50,
            runtime: 1000,
            overrides: HashMap::new(),
        }
    }
}

impl RateLimits {
    pub fn limit(&self, op: Operation) -> u32 {
        if let Some(n) = self.overrides.get(&format!("gamesparks.{}", op.name())) {
            return *n;
        }
        match op {
            Operation::DisconnectPlayer | Operation::GetPlayerConnectionStatus => self.runtime,
            _ => self.control_plane,
        }
    }
}

/// The operations sessiond serves; the others answer 501 NotImplementedException.
pub fn is_implemented(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        CreateGame
            | GetGame
            | ListGames
            | UpdateGame
            | DeleteGame
            | CreateStage
            | GetStage
            | ListStages
            | UpdateStage
            | DeleteStage
            | TagResource
            | UntagResource
            | ListTagsForResource
            | GetPlayerConnectionStatus
            | DisconnectPlayer
    )
}

pub struct GameSparksApi {
    service: Arc<GameSparksService>,
    credentials: Arc<Credentials>,
    limiter: RateLimiter,
    limits: RateLimits,
    metrics: Arc<Metrics>,
    region: String,
}

/// `Date` header value (IMF-fixdate), as clients use it to correct clock skew.
pub fn http_date(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn respond(
    status: u16,
    body: Vec<u8>,
    request_id: &str,
    error_type: Option<&'static str>,
) -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&http_date(unix_now())) {
        headers.insert(http::header::DATE, v);
    }
    if let Some(code) = error_type {
        headers.insert("x-amzn-errortype", http::HeaderValue::from_static(code));
    }
    response
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, AwsError> {
    serde_json::to_vec(value).map_err(|e| AwsError::internal(format!("encoding output: {e}")))
}

fn typed<T: DeserializeOwned>(input: Map<String, Value>) -> Result<T, AwsError> {
    serde_json::from_value(Value::Object(input))
        .map_err(|e| AwsError::serialization(format!("the request cannot be read: {e}")))
}

/// Maps a domain error to the exceptions `op` declares.
fn domain_error(op: Operation, err: GameSparksError) -> AwsError {
    match err {
        GameSparksError::NotFound { kind, name } => {
            AwsError::not_found(format!("{} {name} does not exist", capitalize(kind)))
        }
        GameSparksError::AlreadyExists { kind, name } => {
            AwsError::conflict(format!("{} {name} already exists", capitalize(kind)))
        }
        GameSparksError::InUse(m) => AwsError::conflict(m),
        GameSparksError::LimitExceeded(m) => {
            if op.errors().contains(&"ServiceQuotaExceededException") {
                AwsError::quota(m)
            } else {
                AwsError::conflict(m)
            }
        }
        GameSparksError::InvalidValue(m) => AwsError::validation(m),
        GameSparksError::Internal(m) => AwsError::internal(m),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Query pairs, percent-decoded (`+` stays a plus, as AWS clients encode spaces as `%20`).
fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

impl GameSparksApi {
    pub fn new(
        service: Arc<GameSparksService>,
        credentials: Arc<Credentials>,
        limits: RateLimits,
        metrics: Arc<Metrics>,
        region: String,
    ) -> Self {
        GameSparksApi {
            service,
            credentials,
            limiter: RateLimiter::default(),
            limits,
            metrics,
            region,
        }
    }

    async fn answer(&self, head: http::request::Parts, body: Incoming) -> HttpResponse {
        let started = Instant::now();
        let request_id = request_id();
        let mut operation = "-";
        let result = self.process(head, body, &mut operation).await;
        let (outcome, response) = match result {
            Ok(output) => ("Success", respond(200, output, &request_id, None)),
            Err(error) => {
                tracing::debug!(%request_id, operation, code = error.code, message = %error.message, "request refused");
                (
                    error.code,
                    respond(error.status, error.body(), &request_id, Some(error.code)),
                )
            }
        };
        self.metrics.record(
            "aws",
            operation,
            outcome,
            started.elapsed().as_micros() as u64,
        );
        response
    }

    async fn process(
        &self,
        head: http::request::Parts,
        body: Incoming,
        operation: &mut &'static str,
    ) -> Result<Vec<u8>, AwsError> {
        let raw_path = head.uri.path();
        let raw_query = head.uri.query().unwrap_or("");
        // 1. The typed endpoint, from method and raw path alone.
        let endpoint = routes::route(head.method.as_str(), raw_path).map_err(|e| match e {
            NoRoute::Method { allowed } => AwsError::new(
                405,
                "MethodNotAllowedException",
                format!(
                    "{} is not allowed on {raw_path}; use {}",
                    head.method,
                    allowed.join(" or ")
                ),
            ),
            NoRoute::Path => AwsError::new(
                404,
                "UnknownOperationException",
                format!(
                    "no GameSparks operation is served at {} {raw_path}",
                    head.method
                ),
            ),
        })?;
        let op = endpoint.operation;
        *operation = op.name();
        if raw_query.len() > MAX_QUERY {
            return Err(AwsError::validation(format!(
                "the query string is longer than {MAX_QUERY} bytes"
            )));
        }

        // 2. The body (hashed for the signature).
        let body = read_body(&head, body, MAX_BODY)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(limit) => AwsError::new(
                    413,
                    "RequestEntityTooLargeException",
                    format!("the request body is larger than {limit} bytes"),
                ),
                BodyError::Read(reason) => {
                    AwsError::serialization(format!("the request body could not be read: {reason}"))
                }
            })?;

        // 3. SigV4.
        let signed = SignedRequest {
            method: head.method.as_str(),
            raw_path,
            raw_query,
            headers: &head.headers,
            body: &body,
        };
        let credentials = &self.credentials;
        let verified = sigv4::verify(&signed, unix_now(), &self.region, SIGNING_NAME, |id| {
            credentials.get(id).map(|c| c.secret.expose().to_vec())
        })
        .map_err(|e| AwsError::new(403, e.code(), e.message()))?;
        let credential = self
            .credentials
            .get(&verified.access_key_id)
            .ok_or_else(|| {
                AwsError::new(
                    403,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                )
            })?;

        // 4. Rate limit per credential and operation.
        let limit = self.limits.limit(op);
        if !self
            .limiter
            .allow(&verified.access_key_id, op.name(), limit)
        {
            return Err(AwsError::throttling(format!(
                "Rate exceeded: {} allows {limit} requests per second per access key",
                op.name()
            )));
        }
        if !is_implemented(op) {
            return Err(AwsError::new(
                501,
                "NotImplementedException",
                format!(
                    "sessiond does not implement the GameSparks operation {}",
                    op.name()
                ),
            ));
        }

        // 5. Input: labels decoded after routing, query, body; validated from the model.
        let mut labels = Vec::with_capacity(endpoint.labels.len());
        for (name, raw) in endpoint.labels {
            let value = routes::decode_label(&raw).ok_or_else(|| {
                AwsError::validation(format!(
                    "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must be UTF-8 text",
                    super::validate::member_path(name)
                ))
            })?;
            labels.push((name, value));
        }
        let input = decode_input(
            op.input(),
            RawInput {
                labels,
                query: query_pairs(raw_query),
                body: &body,
            },
        )?;
        let caller = Caller {
            account: credential.account.clone(),
            region: verified.region,
        };
        self.call(op, &caller, input).await
    }

    async fn call(
        &self,
        op: Operation,
        caller: &Caller,
        input: Map<String, Value>,
    ) -> Result<Vec<u8>, AwsError> {
        let result = match op {
            Operation::CreateGame => self.create_game(caller, typed(input)?).await,
            Operation::GetGame => self.get_game(caller, typed(input)?),
            Operation::ListGames => self.list_games(caller, typed(input)?),
            Operation::UpdateGame => self.update_game(caller, typed(input)?).await,
            Operation::DeleteGame => self.delete_game(caller, typed(input)?).await,
            Operation::CreateStage => self.create_stage(caller, typed(input)?).await,
            Operation::GetStage => self.get_stage(caller, typed(input)?),
            Operation::ListStages => self.list_stages(caller, typed(input)?),
            Operation::UpdateStage => self.update_stage(caller, typed(input)?).await,
            Operation::DeleteStage => self.delete_stage(caller, typed(input)?).await,
            Operation::TagResource => self.tag_resource(caller, typed(input)?).await,
            Operation::UntagResource => self.untag_resource(caller, typed(input)?).await,
            Operation::ListTagsForResource => self.list_tags_for_resource(caller, typed(input)?),
            Operation::GetPlayerConnectionStatus => {
                self.get_player_connection_status(caller, typed(input)?)
                    .await
            }
            Operation::DisconnectPlayer => self.disconnect_player(caller, typed(input)?).await,
            other => {
                return Err(AwsError::new(
                    501,
                    "NotImplementedException",
                    format!(
                        "sessiond does not implement the GameSparks operation {}",
                        other.name()
                    ),
                ))
            }
        };
        result.map_err(|e| match e {
            Failure::Domain(err) => domain_error(op, err),
            Failure::Wire(err) => err,
        })
    }

    // ---- one method per operation ----------------------------------------------------------

    async fn create_game(&self, caller: &Caller, i: CreateGameInput) -> Outcome {
        let game = self
            .service
            .create_game(
                caller,
                CreateGame {
                    name: i.game_name,
                    description: i.description,
                    client_token: i.client_token,
                    tags: i.tags.unwrap_or_default(),
                },
            )
            .await?;
        ok(&GameOutput {
            game: GameDetails::from(&game),
        })
    }

    fn get_game(&self, caller: &Caller, i: GameNameInput) -> Outcome {
        let game = self.service.game(caller, &i.game_name)?;
        ok(&GameOutput {
            game: GameDetails::from(&game),
        })
    }

    fn list_games(&self, caller: &Caller, i: PagedInput) -> Outcome {
        let page = self
            .service
            .list_games(caller, i.max_results, &i.next_token)?;
        ok(&ListGamesOutput {
            games: page.items.iter().map(GameSummary::from).collect(),
            next_token: page.next_token,
        })
    }

    async fn update_game(&self, caller: &Caller, i: UpdateGameInput) -> Outcome {
        let game = self
            .service
            .update_game(
                caller,
                &i.game_name,
                UpdateGame {
                    description: i.description,
                },
            )
            .await?;
        ok(&GameOutput {
            game: GameDetails::from(&game),
        })
    }

    /// Idempotent: deleting a game that does not exist succeeds (the model declares no
    /// ResourceNotFoundException for DeleteGame).
    async fn delete_game(&self, caller: &Caller, i: GameNameInput) -> Outcome {
        match self.service.delete_game(caller, &i.game_name).await {
            Ok(()) | Err(GameSparksError::NotFound { .. }) => Ok(b"{}".to_vec()),
            Err(e) => Err(e.into()),
        }
    }

    async fn create_stage(&self, caller: &Caller, i: CreateStageInput) -> Outcome {
        let stage = self
            .service
            .create_stage(
                caller,
                &i.game_name,
                CreateStage {
                    name: i.stage_name,
                    role: i.role,
                    description: i.description,
                    client_token: i.client_token,
                    tags: i.tags.unwrap_or_default(),
                },
            )
            .await?;
        ok(&StageOutput {
            stage: StageDetails::from(&stage),
        })
    }

    fn get_stage(&self, caller: &Caller, i: StageNameInput) -> Outcome {
        let stage = self.service.stage(caller, &i.game_name, &i.stage_name)?;
        ok(&StageOutput {
            stage: StageDetails::from(&stage),
        })
    }

    fn list_stages(&self, caller: &Caller, i: PagedInput) -> Outcome {
        let game = i.game_name.unwrap_or_default();
        let page = self
            .service
            .list_stages(caller, &game, i.max_results, &i.next_token)?;
        ok(&ListStagesOutput {
            stages: page.items.iter().map(StageSummary::from).collect(),
            next_token: page.next_token,
        })
    }

    async fn update_stage(&self, caller: &Caller, i: UpdateStageInput) -> Outcome {
        let stage = self
            .service
            .update_stage(
                caller,
                &i.game_name,
                &i.stage_name,
                UpdateStage {
                    description: i.description,
                    role: i.role,
                },
            )
            .await?;
        ok(&StageOutput {
            stage: StageDetails::from(&stage),
        })
    }

    async fn delete_stage(&self, caller: &Caller, i: StageNameInput) -> Outcome {
        self.service
            .delete_stage(caller, &i.game_name, &i.stage_name)
            .await?;
        Ok(b"{}".to_vec())
    }

    /// `arn:aws:gamesparks:<region>:<account>:game/<GameName>[/stage/<StageName>]`; another
    /// account's or region's resource answers like a missing one.
    fn resource(&self, caller: &Caller, arn: &str) -> Result<ResourceRef, Failure> {
        let malformed = || {
            Failure::Wire(AwsError::validation(format!(
                "ResourceArn {arn} is not the ARN of a GameSparks game or stage (arn:aws:gamesparks:<region>:<account>:game/<GameName>[/stage/<StageName>])"
            )))
        };
        let rest = arn
            .strip_prefix("arn:aws:gamesparks:")
            .ok_or_else(malformed)?;
        let mut parts = rest.splitn(3, ':');
        let (region, account, resource) = match (parts.next(), parts.next(), parts.next()) {
            (Some(r), Some(a), Some(res)) => (r, a, res),
            _ => return Err(malformed()),
        };
        let segments: Vec<&str> = resource.split('/').collect();
        let target = match segments.as_slice() {
            ["game", game] if !game.is_empty() => ResourceRef::Game {
                game: game.to_string(),
            },
            ["game", game, "stage", stage] if !game.is_empty() && !stage.is_empty() => {
                ResourceRef::Stage {
                    game: game.to_string(),
                    stage: stage.to_string(),
                }
            }
            _ => return Err(malformed()),
        };
        if region != caller.region || account != caller.account.0 {
            return Err(Failure::Wire(AwsError::not_found(format!(
                "Resource {arn} does not exist"
            ))));
        }
        Ok(target)
    }

    async fn tag_resource(&self, caller: &Caller, i: TagResourceInput) -> Outcome {
        let target = self.resource(caller, &i.resource_arn)?;
        self.service.tag_resource(caller, &target, i.tags).await?;
        Ok(b"{}".to_vec())
    }

    async fn untag_resource(&self, caller: &Caller, i: UntagResourceInput) -> Outcome {
        let target = self.resource(caller, &i.resource_arn)?;
        self.service
            .untag_resource(caller, &target, i.tag_keys)
            .await?;
        Ok(b"{}".to_vec())
    }

    fn list_tags_for_resource(&self, caller: &Caller, i: ResourceArnInput) -> Outcome {
        let target = self.resource(caller, &i.resource_arn)?;
        let tags = self.service.tags(caller, &target)?;
        ok(&TagsOutput { tags })
    }

    async fn get_player_connection_status(&self, caller: &Caller, i: PlayerInput) -> Outcome {
        let connections = self
            .service
            .player_connections(caller, &i.game_name, &i.stage_name, &i.player_id)
            .await?;
        ok(&ConnectionsOutput {
            connections: connections.iter().map(ConnectionShape::from).collect(),
        })
    }

    async fn disconnect_player(&self, caller: &Caller, i: PlayerInput) -> Outcome {
        let outcome = self
            .service
            .disconnect_player(caller, &i.game_name, &i.stage_name, &i.player_id)
            .await?;
        ok(&DisconnectOutput {
            disconnect_failures: outcome.failures,
            disconnect_successes: outcome.successes,
        })
    }
}

/// An operation's failure: a domain error (mapped per operation) or a wire error.
enum Failure {
    Domain(GameSparksError),
    Wire(AwsError),
}

impl From<GameSparksError> for Failure {
    fn from(e: GameSparksError) -> Self {
        Failure::Domain(e)
    }
}

impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure::Wire(e)
    }
}

type Outcome = Result<Vec<u8>, Failure>;

fn ok<T: Serialize>(value: &T) -> Outcome {
    Ok(to_json(value)?)
}

impl Dialect for GameSparksApi {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn claims(&self, head: &http::request::Parts) -> bool {
        routes::claims_path(head.uri.path())
    }

    fn handle(&self, head: http::request::Parts, body: Incoming) -> HandlerFuture<'_> {
        Box::pin(self.answer(head, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_648_036_800), "Wed, 23 Mar 2022 12:00:00 GMT");
    }

    #[test]
    fn rate_limits_default_and_override() {
        let mut limits = RateLimits::default();
        assert_eq!(limits.limit(Operation::CreateGame), 50);
        assert_eq!(limits.limit(Operation::DisconnectPlayer), 1000);
        limits
            .overrides
            .insert("gamesparks.DisconnectPlayer".into(), 3);
        assert_eq!(limits.limit(Operation::DisconnectPlayer), 3);
        assert_eq!(limits.limit(Operation::GetPlayerConnectionStatus), 1000);
    }

    #[test]
    fn error_mapping_follows_the_declared_errors() {
        let e = domain_error(
            Operation::CreateGame,
            GameSparksError::LimitExceeded("x".into()),
        );
        assert_eq!((e.status, e.code), (402, "ServiceQuotaExceededException"));
        let e = domain_error(
            Operation::CreateStage,
            GameSparksError::LimitExceeded("x".into()),
        );
        assert_eq!((e.status, e.code), (409, "ConflictException"));
        let e = domain_error(
            Operation::GetStage,
            GameSparksError::NotFound {
                kind: "stage",
                name: "s of game g".into(),
            },
        );
        assert_eq!((e.status, e.code), (404, "ResourceNotFoundException"));
        assert_eq!(e.message, "Stage s of game g does not exist");
        let body: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(body["__type"], "ResourceNotFoundException");
        assert_eq!(body["message"], "Stage s of game g does not exist");
    }

    #[test]
    fn queries_decode_percent_but_not_plus() {
        assert_eq!(
            query_pairs("tagKeys=a&tagKeys=b%20c&x=1+2&&flag"),
            [
                ("tagKeys".to_string(), "a".to_string()),
                ("tagKeys".to_string(), "b c".to_string()),
                ("x".to_string(), "1+2".to_string()),
                ("flag".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn implemented_set_is_the_fifteen_of_the_issue() {
        let n = Operation::ALL
            .iter()
            .filter(|o| is_implemented(**o))
            .count();
        assert_eq!(n, 15);
        assert_eq!(Operation::ALL.len(), 33);
    }
}
