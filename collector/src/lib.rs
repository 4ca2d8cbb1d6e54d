//! segmint-collector: the reference collector for segmint.
//!
//! Stores Segment-compatible batches (SQLite by default, or PostgreSQL),
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

pub mod dashboard;
pub mod db;
pub mod http;
pub mod ingest;
pub mod rules;
pub mod summary;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Everything the command line sets.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--listen`
    pub listen: SocketAddr,
    /// `--database`: `sqlite:path` or `postgres://...`
    pub database: String,
    /// `--rules`
    pub rules: Option<PathBuf>,
    /// `--www`, `--pkg`, `--allow-origin`, `--write-key`
    pub settings: http::Settings,
}

/// A collector bound to its address, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Arc<http::App>,
}

impl Server {
    /// Opens the database (rebuilding the dashboard's figures from what it
    /// holds), loads the rules, and binds the address.
    pub async fn start(options: Options) -> Result<Server, String> {
        let db = db::Db::open(&options.database).await?;
        let mut summary = summary::Summary::default();
        for e in db.scan().await? {
            summary.add(&e);
        }
        let rules = rules::RulesState::default();
        if let Some(path) = options.rules {
            rules.watch(path)?;
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        let app = Arc::new(http::App {
            db,
            summary: Mutex::new(summary),
            rules,
            settings: options.settings,
        });
        Ok(Server { listener, app })
    }

    /// The address it listens on.
    pub fn address(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// Events already stored when it started.
    pub fn stored(&self) -> u64 {
        self.app.summary.lock().map_or(0, |s| s.events())
    }

    /// Serves until the process ends.
    pub async fn run(self) -> Result<(), String> {
        let app = http::router(self.app).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .await
            .map_err(|e| e.to_string())
    }
}
