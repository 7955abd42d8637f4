//! DCDB (Tencent, 2018-04-11): a signed client for the DCDB actions (TC3 POST JSON and TC3 GET
//! query, as the official SDK sends them) and the `dcdb-kill` benchmark: N client connections to
//! a MariaDB shard, one KillSession for all of them, DescribeFlow until it reports 0, and every
//! client connection seen closed.

use crate::sign::hmac;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use serde_json::{json, Value};
use sessiond_backends::mariadb::mysql_async::{self, prelude::Queryable};
use sha2::{Digest, Sha256};

use crate::client::{connect, round_trip, unix_now, ApiError, Sender, Target};
use crate::sign::{utc_date, Signer};

pub const DCDB_VERSION: &str = "2018-04-11";
const FORM: &str = "application/x-www-form-urlencoded";

/// The TC3 `Authorization` of a GET request: the raw query is signed, the payload is empty.
pub fn tc3_get_authorization(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    timestamp: i64,
    host: &str,
    query: &str,
) -> String {
    let date = utc_date(timestamp);
    let canonical = format!(
        "GET\n/\n{query}\ncontent-type:{FORM}\nhost:{host}\n\ncontent-type;host\n{}",
        hex::encode(Sha256::digest(b""))
    );
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
    )
}

/// A sequential DCDB client on one keep-alive connection.
pub struct DcdbClient {
    pub target: Target,
    secret_id: String,
    secret_key: String,
    signer: Signer,
    /// `X-TC-Region`; None sends none (DCDB does not require it).
    pub region: Option<String>,
    sender: Option<Sender>,
    timeout: Duration,
}

impl DcdbClient {
    pub async fn new(
        endpoint: &str,
        secret_id: &str,
        secret_key: &str,
        timeout: Duration,
    ) -> anyhow::Result<DcdbClient> {
        Ok(DcdbClient {
            target: Target::from_endpoint(endpoint, "ap-guangzhou").await?,
            secret_id: secret_id.to_string(),
            secret_key: secret_key.to_string(),
            signer: Signer::new(secret_id, secret_key, "dcdb"),
            region: Some("ap-guangzhou".to_string()),
            sender: None,
            timeout,
        })
    }

    async fn send(&mut self, action: &str, req: Request<Full<Bytes>>) -> anyhow::Result<Value> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => connect(self.target.addr).await?,
        };
        let (status, body) = tokio::time::timeout(self.timeout, round_trip(&mut sender, req))
            .await
            .map_err(|_| anyhow!("{action}: timed out after {:?}", self.timeout))?
            .with_context(|| format!("{action}: HTTP error"))?;
        self.sender = Some(sender);
        if status != 200 {
            bail!(
                "{action}: HTTP status {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let mut v: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{action}: response is not JSON"))?;
        let mut response = v
            .get_mut("Response")
            .map(Value::take)
            .ok_or_else(|| anyhow!("{action}: no Response in {v}"))?;
        if response["RequestId"].as_str().unwrap_or("").is_empty() {
            bail!("{action}: no RequestId in {response}");
        }
        if let Some(err) = response.get("Error") {
            return Err(anyhow::Error::new(ApiError {
                code: err["Code"].as_str().unwrap_or("?").to_string(),
                message: err["Message"].as_str().unwrap_or("").to_string(),
            })
            .context(action.to_string()));
        }
        Ok(response.take())
    }

    fn common(
        &self,
        builder: hyper::http::request::Builder,
        action: &str,
        timestamp: i64,
    ) -> anyhow::Result<hyper::http::request::Builder> {
        let mut builder = builder
            .header(HOST, HeaderValue::from_str(&self.target.host)?)
            .header("X-TC-Action", HeaderValue::from_str(action)?)
            .header("X-TC-Version", HeaderValue::from_static(DCDB_VERSION))
            .header("X-TC-Timestamp", HeaderValue::from(timestamp));
        if let Some(region) = &self.region {
            builder = builder.header("X-TC-Region", HeaderValue::from_str(region)?);
        }
        Ok(builder)
    }

    /// TC3-signed POST with a JSON body (what the SDK and tccli send by default).
    pub async fn call(&mut self, action: &str, params: &Value) -> anyhow::Result<Value> {
        let body = Bytes::from(serde_json::to_vec(params)?);
        let timestamp = unix_now();
        let authorization =
            self.signer
                .authorization(timestamp, "application/json", &self.target.host, &body);
        let req = self
            .common(
                Request::builder().method(Method::POST).uri("/"),
                action,
                timestamp,
            )?
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, HeaderValue::from_str(&authorization)?)
            .body(Full::new(body))?;
        self.send(action, req).await
    }

    /// TC3-signed GET with flattened parameters (`SessionId.0=1111&...`), as the SDK sends with
    /// `reqMethod="GET"`.
    pub async fn call_get(
        &mut self,
        action: &str,
        params: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let timestamp = unix_now();
        let authorization = tc3_get_authorization(
            &self.secret_id,
            &self.secret_key,
            "dcdb",
            timestamp,
            &self.target.host,
            &query,
        );
        let req = self
            .common(
                Request::builder()
                    .method(Method::GET)
                    .uri(format!("/?{query}")),
                action,
                timestamp,
            )?
            .header(CONTENT_TYPE, HeaderValue::from_static(FORM))
            .header(AUTHORIZATION, HeaderValue::from_str(&authorization)?)
            .body(Full::new(Bytes::new()))?;
        self.send(action, req).await
    }

    /// DescribeFlow until the status is no longer 2 (running); retries RequestLimitExceeded.
    /// Returns the final Response.
    pub async fn wait_flow(
        &mut self,
        flow_id: u64,
        poll: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .call("DescribeFlow", &json!({ "FlowId": flow_id }))
                .await
            {
                Ok(v) if v["Status"] != 2 => return Ok(v),
                Ok(_) => {}
                Err(e) if crate::client::api_error_code(&e) == Some("RequestLimitExceeded") => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                bail!("flow {flow_id} still running after {timeout:?}");
            }
            tokio::time::sleep(poll).await;
        }
    }
}

// ---- the dcdb-kill benchmark -----------------------------------------------------------------

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// sessiond API endpoint (http://host:port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub endpoint: String,
    #[arg(long)]
    pub secret_id: String,
    #[arg(long)]
    pub secret_key: String,
    /// The DCDB instance declared in sessiond's config.
    #[arg(long)]
    pub instance_id: String,
    /// The shard (shard-…) whose master is the MariaDB below.
    #[arg(long)]
    pub shard_id: String,
    /// The shard master's address: the client connections go there.
    #[arg(long, default_value = "127.0.0.1")]
    pub mariadb_host: String,
    #[arg(long)]
    pub mariadb_port: u16,
    /// User (and password) of the client connections.
    #[arg(long)]
    pub mariadb_user: String,
    #[arg(long, default_value = "")]
    pub mariadb_password: String,
    /// Client connections to open and kill with one KillSession (1-1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// DescribeFlow polling interval (raise "dcdb.DescribeFlow" in sessiond's [rate_limits]).
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// Rounds (each opens and kills `connections` clients).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
}

fn mysql_opts(args: &KillArgs) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(args.mariadb_host.clone())
        .tcp_port(args.mariadb_port)
        .user(Some(args.mariadb_user.clone()))
        .pass(Some(args.mariadb_password.clone()))
        .prefer_socket(false)
}

/// Opens `n` client connections (64 at a time); returns them with their thread ids.
pub async fn open_clients(
    opts: mysql_async::OptsBuilder,
    n: usize,
) -> anyhow::Result<Vec<(u64, mysql_async::Conn)>> {
    let mut out = Vec::with_capacity(n);
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    while out.len() < n {
        while started < n && pending.len() < 64 {
            let opts = opts.clone();
            pending.spawn(async move {
                let conn =
                    tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts))
                        .await
                        .map_err(|_| anyhow!("client connect timed out"))??;
                Ok::<_, anyhow::Error>((u64::from(conn.id()), conn))
            });
            started += 1;
        }
        match pending.join_next().await {
            Some(joined) => out.push(joined??),
            None => break,
        }
    }
    Ok(out)
}

/// True once the server has closed the client's connection (a ping fails).
pub async fn is_closed(conn: &mut mysql_async::Conn) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), conn.ping()).await,
        Ok(Err(_))
    )
}

pub async fn bench_kill(args: KillArgs) -> anyhow::Result<()> {
    let mut client = DcdbClient::new(
        &args.endpoint,
        &args.secret_id,
        &args.secret_key,
        Duration::from_secs(30),
    )
    .await?;
    let n = args.connections as usize;
    println!(
        "sessiond-load dcdb-kill: {n} client connections to {}:{} per round, {} round(s), one KillSession each",
        args.mariadb_host, args.mariadb_port, args.rounds
    );
    let mut totals = Vec::new();
    for round in 1..=args.rounds {
        let mut clients = open_clients(mysql_opts(&args), n).await?;
        let ids: Vec<u64> = clients.iter().map(|(id, _)| *id).collect();
        let started = Instant::now();
        let answer = client
            .call(
                "KillSession",
                &json!({"InstanceId": args.instance_id, "ShardId": args.shard_id, "SessionId": ids}),
            )
            .await?;
        let answered = started.elapsed();
        let task = answer["TaskId"]
            .as_u64()
            .ok_or_else(|| anyhow!("no TaskId in {answer}"))?;
        let flow = client
            .wait_flow(
                task,
                Duration::from_millis(args.poll_ms),
                Duration::from_secs(60),
            )
            .await?;
        let flow_done = started.elapsed();
        if flow["Status"] != 0 {
            bail!("round {round}: flow {task} ended with {flow}");
        }
        // Every client must see its connection closed by the server.
        let mut checks = tokio::task::JoinSet::new();
        for (id, mut conn) in clients.drain(..) {
            checks.spawn(async move { (id, is_closed(&mut conn).await) });
        }
        let mut open = Vec::new();
        while let Some(joined) = checks.join_next().await {
            let (id, closed) = joined?;
            if !closed {
                open.push(id);
            }
        }
        let all_closed = started.elapsed();
        if !open.is_empty() {
            bail!(
                "round {round}: {} connection(s) still open after DescribeFlow reported 0: {:?}",
                open.len(),
                &open[..open.len().min(10)]
            );
        }
        println!(
            "round {round}: KillSession answered in {:.1} ms; DescribeFlow 0 after {:.1} ms; all {n} connections closed after {:.1} ms",
            answered.as_secs_f64() * 1e3,
            flow_done.as_secs_f64() * 1e3,
            all_closed.as_secs_f64() * 1e3
        );
        totals.push((answered, flow_done, all_closed));
    }
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let worst = totals.iter().map(|t| t.2).max().unwrap_or_default();
    let best = totals.iter().map(|t| t.2).min().unwrap_or_default();
    println!(
        "{}",
        json!({
            "benchmark": "dcdb-kill",
            "connections": n,
            "rounds": args.rounds,
            "kill_session_ms": totals.iter().map(|t| ms(t.0)).collect::<Vec<_>>(),
            "flow_done_ms": totals.iter().map(|t| ms(t.1)).collect::<Vec<_>>(),
            "all_closed_ms": totals.iter().map(|t| ms(t.2)).collect::<Vec<_>>(),
            "best_all_closed_ms": ms(best),
            "worst_all_closed_ms": ms(worst),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET signature matches the captured SDK GET record (dcdb-04).
    #[test]
    fn get_signature_matches_the_captured_sdk_request() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/vectors/tencent-dcdb-captured.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let rec: Value = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["method"] == "GET")
            .expect("a GET record");
        let query = rec["path"].as_str().unwrap().trim_start_matches("/?");
        let auth = tc3_get_authorization(
            rec["secret_id"].as_str().unwrap(),
            rec["secret_key"].as_str().unwrap(),
            "dcdb",
            rec["server_time"].as_i64().unwrap(),
            rec["headers"]["Host"].as_str().unwrap(),
            query,
        );
        assert_eq!(auth, rec["headers"]["Authorization"].as_str().unwrap());
    }
}
