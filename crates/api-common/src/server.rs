//! The HTTP server: one listener for every dialect. Each request goes to the first dialect
//! that claims it (by method, path and headers only, before any body is read); GET /metrics
//! is answered here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::Metrics;

pub type HttpResponse = http::Response<Full<Bytes>>;
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = HttpResponse> + Send + 'a>>;

/// A wire dialect (Tencent API 3.0, Huawei, AWS rest-json, ...).
pub trait Dialect: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Whether this dialect owns the request; decided from the head alone.
    fn claims(&self, head: &http::request::Parts) -> bool;

    /// Answers the request. Errors are answered in the dialect's own format, never as a panic.
    fn handle(&self, head: http::request::Parts, body: Incoming) -> HandlerFuture<'_>;
}

pub struct Router {
    dialects: Vec<Arc<dyn Dialect>>,
    metrics: Arc<Metrics>,
}

impl Router {
    pub fn new(dialects: Vec<Arc<dyn Dialect>>, metrics: Arc<Metrics>) -> Self {
        Router { dialects, metrics }
    }

    async fn route(&self, req: http::Request<Incoming>) -> HttpResponse {
        let (head, body) = req.into_parts();
        if head.method == http::Method::GET && head.uri.path() == "/metrics" {
            return plain(
                http::StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            );
        }
        match self.dialects.iter().find(|d| d.claims(&head)) {
            Some(dialect) => dialect.handle(head, body).await,
            None => plain(
                http::StatusCode::NOT_FOUND,
                "text/plain",
                "no API of sessiond is served at this path\n".into(),
            ),
        }
    }
}

fn plain(status: http::StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body could not be read: {0}")]
    Read(String),
}

/// Oversized bodies up to this size are read and discarded before the refusal is sent, so a
/// client that writes its whole body before reading gets the error instead of a broken pipe.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads a whole body, refusing more than `limit` bytes (checked against Content-Length first).
pub async fn read_body(
    head: &http::request::Parts,
    mut body: Incoming,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            drain(&mut body).await;
        }
        return Err(BodyError::TooLarge(limit));
    }
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut collected = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                if collected.len() + data.len() > limit {
                    drain(&mut body).await;
                    return Err(BodyError::TooLarge(limit));
                }
                collected.extend_from_slice(data);
            }
        }
        Ok(collected.freeze())
    })
    .await;
    read.unwrap_or_else(|_| Err(BodyError::Read("timed out after 30 s".into())))
}

/// Reads and discards up to [`DRAIN_LIMIT`] bytes, for at most 10 s.
async fn drain(body: &mut Incoming) {
    let mut seen = 0u64;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map(|d| d.len() as u64).unwrap_or(0);
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

/// Serves HTTP/1.1 with keep-alive until `shutdown` resolves, then stops accepting and gives
/// open connections up to 10 s to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Arc<Router>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = service_fn(move |req| {
            let router = router.clone();
            async move { Ok::<_, std::convert::Infallible>(router.route(req).await) }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .keep_alive(true);
        // WebSocket upgrades (the GameSparks runtime) are taken over by the dialect.
        let conn = builder
            .http1_only()
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}
