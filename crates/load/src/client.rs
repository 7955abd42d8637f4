//! One keep-alive HTTP/1.1 connection per caller, signed Tencent API 3.0 requests over it.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::sign::Signer;

pub const CONTENT_TYPE_JSON: &str = "application/json";
pub const GSE_VERSION: &str = "2019-11-12";

/// Where requests go: the TCP address to connect to and the `Host` header (signed) to send.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub region: String,
}

impl Target {
    /// Parses `http://host[:port][/]`.
    pub async fn from_endpoint(endpoint: &str, region: &str) -> anyhow::Result<Target> {
        let rest = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("endpoint must start with http:// (got {endpoint:?})"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            bail!("endpoint must be http://host[:port] (got {endpoint:?})");
        }
        let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| {
            p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() && !host.ends_with(']')
        }) {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("resolving {with_port}"))?
            .next()
            .ok_or_else(|| anyhow!("{with_port} resolves to no address"))?;
        Ok(Target {
            addr,
            host: host.to_string(),
            region: region.to_string(),
        })
    }
}

pub type Sender = SendRequest<Full<Bytes>>;

/// Opens a TCP connection (TCP_NODELAY) and performs the HTTP/1.1 client handshake.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A signed GSE (TC3, POST JSON) request.
pub fn signed_request(
    signer: &mut Signer,
    target: &Target,
    action: &'static str,
    body: Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let timestamp = unix_now();
    let authorization = signer.authorization(timestamp, CONTENT_TYPE_JSON, &target.host, &body);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON))
        .header(HOST, HeaderValue::from_str(&target.host)?)
        .header("X-TC-Action", HeaderValue::from_static(action))
        .header("X-TC-Version", HeaderValue::from_static(GSE_VERSION))
        .header("X-TC-Timestamp", HeaderValue::from(timestamp))
        .header("X-TC-Region", HeaderValue::from_str(&target.region)?)
        .header(AUTHORIZATION, HeaderValue::from_str(&authorization)?)
        .body(Full::new(body))?;
    Ok(req)
}

/// Sends one request on the connection and reads the whole response body.
pub async fn round_trip(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), hyper::Error> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// A sequential API client for setup calls (not timed).
pub struct ApiClient {
    pub target: Target,
    signer: Signer,
    sender: Option<Sender>,
    timeout: Duration,
}

/// An API-level failure: `Response.Error.Code` and message.
#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiClient {
    pub fn new(target: Target, signer: Signer, timeout: Duration) -> Self {
        ApiClient {
            target,
            signer,
            sender: None,
            timeout,
        }
    }

    /// Calls an action; `Ok(Response)` on success, `Err` (downcastable to [`ApiError`]) when the
    /// response carries `Response.Error`.
    pub async fn call(
        &mut self,
        action: &'static str,
        params: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let body = Bytes::from(serde_json::to_vec(params)?);
        let req = signed_request(&mut self.signer, &self.target, action, body)?;
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
        let mut v: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("{action}: response is not JSON"))?;
        let mut response = v
            .get_mut("Response")
            .map(serde_json::Value::take)
            .ok_or_else(|| anyhow!("{action}: no Response in {v}"))?;
        if let Some(err) = response.get("Error") {
            return Err(anyhow::Error::new(ApiError {
                code: err["Code"].as_str().unwrap_or("?").to_string(),
                message: err["Message"].as_str().unwrap_or("").to_string(),
            })
            .context(action));
        }
        Ok(response.take())
    }
}

/// The `Error.Code` of a failed [`ApiClient::call`], if it was an API error.
pub fn api_error_code(err: &anyhow::Error) -> Option<&str> {
    err.downcast_ref::<ApiError>().map(|e| e.code.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoint_parsing() {
        let t = Target::from_endpoint("http://127.0.0.1:8080", "ap-shanghai")
            .await
            .unwrap();
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        let t = Target::from_endpoint("http://127.0.0.1:9/", "r")
            .await
            .unwrap();
        assert_eq!(t.host, "127.0.0.1:9");
        let t = Target::from_endpoint("http://127.0.0.1", "r")
            .await
            .unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.addr.port(), 80);
        assert!(Target::from_endpoint("https://127.0.0.1:1", "r")
            .await
            .is_err());
        assert!(Target::from_endpoint("http://127.0.0.1:1/x", "r")
            .await
            .is_err());
    }
}
