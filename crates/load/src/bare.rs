//! The baseline: a minimal hyper HTTP/1.1 server answering every request with a fixed small JSON
//! body (`Content-Type: application/json`). It runs as a child process of the load tool
//! (`sessiond-load bare-server`) so that, like sessiond, it has its own process and runtime.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// Satisfies the success check of both join modes.
pub const BARE_BODY: &str = r#"{"Response":{"PlayerSessions":[],"PlayerSession":{},"RequestId":"00000000-0000-0000-0000-000000000000"}}"#;

const READY_PREFIX: &str = "bare: listening on ";

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the request body like a real API server has to.
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Full::new(Bytes::from_static(BARE_BODY.as_bytes())));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// Serves forever on `listen`; prints `bare: listening on <addr>` once bound.
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!("{READY_PREFIX}{}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(handle))
                .await;
        });
    }
}

/// A running bare server child; killed when dropped.
pub struct BareChild {
    pub addr: SocketAddr,
    child: Child,
}

impl BareChild {
    /// Starts `<this executable> bare-server --listen 127.0.0.1:0` and waits for its address.
    pub async fn start() -> anyhow::Result<BareChild> {
        let exe = std::env::current_exe().context("locating the sessiond-load executable")?;
        let mut child = Command::new(exe)
            .args(["bare-server", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the bare server")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| anyhow!("bare server did not start within 10 s"))??
            .ok_or_else(|| anyhow!("bare server exited before listening"))?;
        let addr = line
            .strip_prefix(READY_PREFIX)
            .ok_or_else(|| anyhow!("unexpected bare server output {line:?}"))?
            .trim()
            .parse()
            .context("parsing the bare server address")?;
        Ok(BareChild { addr, child })
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
