//! segmint-collector: the reference collector for segmint.
//!
//! Stores Segment-compatible batches (SQLite by default, PostgreSQL or
//! ClickHouse),
//! serves the rules document, the demo storefront and the built SDK, and a
//! dashboard of segment sizes and conversion, personalized against
//! holdout. It reuses segmint-core, so a batch, a rule and a segment mean
//! the same thing here as in the browser.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod clickhouse;
pub mod dashboard;
pub mod db;
pub mod discover;
pub mod figures;
pub mod http;
pub mod ingest;
pub mod kpis;
pub mod postgres_tls;
pub mod rules;
pub mod summary;
pub mod synthetic;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Percent-decodes part of a URL (a user name, a password, a file path);
/// a `%` not followed by two hex digits stays as it is.
pub fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes.get(i), hex) {
            (Some(b'%'), Some(b)) => {
                out.push(b);
                i += 3;
            }
            (Some(b), _) => {
                out.push(*b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything the command line sets.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--listen`
    pub listen: SocketAddr,
    /// `--database`: `sqlite:path`, `postgres://...` or `clickhouse://...`
    pub database: String,
    /// `--rules`
    pub rules: Option<PathBuf>,
    /// `--www`, `--pkg`, `--allow-origin`, `--write-key`
    pub settings: http::Settings,
    /// `--max-connections`: open connections at most; more wait to be
    /// accepted.
    pub max_connections: usize,
    /// `--max-connections-per-address`: connections one client address
    /// may hold (0: no limit), so one machine cannot take every slot.
    pub max_connections_per_address: usize,
    /// `--kpi-interval`: how often retention and bounce are recomputed.
    pub kpi_interval: std::time::Duration,
    /// `--header-timeout`: how long a connection may take to send a
    /// request's headers (an idle one is closed after it).
    pub header_timeout: std::time::Duration,
}

/// A collector bound to its address, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Arc<http::App>,
    max_connections: usize,
    max_connections_per_address: usize,
    header_timeout: std::time::Duration,
}

impl Server {
    /// Loads the rules, opens the database, and binds the address.
    pub async fn start(options: Options) -> Result<Server, String> {
        let rules = rules::RulesState::default();
        if let Some(path) = options.rules {
            rules.watch(path)?;
        }
        let db = db::Db::open(&options.database, &rules.defined()).await?;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        let kpis = kpis::Latest::default();
        tokio::spawn(kpis::keep_fresh(
            db.clone(),
            rules.clone(),
            kpis.clone(),
            options.kpi_interval,
        ));
        let app = Arc::new(http::App {
            db,
            rules,
            settings: options.settings,
            kpis,
            discovering: Default::default(),
        });
        Ok(Server {
            listener,
            app,
            max_connections: options.max_connections,
            max_connections_per_address: options.max_connections_per_address,
            header_timeout: options.header_timeout,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// Events stored so far.
    pub async fn stored(&self) -> u64 {
        self.app.db.stored().await.unwrap_or(0)
    }

    /// Serves until the process ends. Each connection holds one of
    /// `max_connections` slots; a client that sends no complete request
    /// headers within `header_timeout` is disconnected, and one address
    /// holds `max_connections_per_address` at most, so idle or slow
    /// connections cannot hold every slot.
    pub async fn run(self) -> Result<(), String> {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use tower::ServiceExt;
        let router = http::router(self.app);
        let slots = Arc::new(tokio::sync::Semaphore::new(self.max_connections.max(1)));
        let per_address = Arc::new(ConnectionsPerAddress::new(self.max_connections_per_address));
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true);
        loop {
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait, then go on.
                    eprintln!("segmint-collector: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(held) = per_address.enter(peer.ip()) else {
                // This address holds its share: close at once, free the slot.
                drop(stream);
                continue;
            };
            let router = router.clone();
            let http1 = http1.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        router.clone().oneshot(request)
                    },
                );
                // A client that goes away or times out ends its own
                // connection; nothing to report.
                let _ = http1.serve_connection(TokioIo::new(stream), service).await;
                drop(held);
                drop(slot);
            });
        }
    }
}

/// Open connections per client address, capped.
struct ConnectionsPerAddress {
    limit: usize,
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One connection counted against its address until dropped.
struct Held {
    counts: Arc<ConnectionsPerAddress>,
    address: std::net::IpAddr,
}

impl ConnectionsPerAddress {
    fn new(limit: usize) -> ConnectionsPerAddress {
        ConnectionsPerAddress {
            limit,
            open: Default::default(),
        }
    }

    /// Counts a connection from `address`, or `None` if it already holds
    /// its limit (a limit of 0 counts nothing).
    fn enter(self: &Arc<Self>, address: std::net::IpAddr) -> Option<Option<Held>> {
        if self.limit == 0 {
            return Some(None);
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(address).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Some(Held {
            counts: self.clone(),
            address,
        }))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.address);
            }
        }
    }
}
