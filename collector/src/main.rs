//! `segmint-collector`: see README "Collector".
use clap::Parser;
use segmint_collector::{http::Settings, Options, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// segmint's reference collector: Segment-compatible ingest, the rules
/// document, the demo storefront and the dashboard.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// `sqlite:path` (embedded), `postgres://user@host/db` (several
    /// collectors may share one PostgreSQL) or
    /// `clickhouse://user:password@host:8123/db` (ClickHouse's HTTP port).
    #[arg(long, default_value = "sqlite:segmint.db")]
    database: String,
    /// The rules document to serve at /v1/rules (reloaded when it changes).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The demo storefront's directory, served at /.
    #[arg(long)]
    www: Option<PathBuf>,
    /// The built SDK package, served at /pkg/.
    #[arg(long)]
    pkg: Option<PathBuf>,
    /// An origin whose pages may send events and read rules (repeat it; `*` for any).
    #[arg(long = "allow-origin")]
    allow_origins: Vec<String>,
    /// The write key batches must carry (in the body or as the Basic user name).
    #[arg(long)]
    write_key: Option<String>,
    /// Opens the dashboard and the per-user API to other machines (HTTP Basic).
    #[arg(long, env = "SEGMINT_DASHBOARD_PASSWORD", hide_env_values = true)]
    dashboard_password: Option<String>,
    /// Tracking requests per second one client address may make, on average (0: no limit).
    #[arg(long, default_value_t = 100)]
    rate_limit: u32,
    /// Tracking requests one address may make at once above that average.
    #[arg(long, default_value_t = 400)]
    rate_burst: u32,
    /// Open connections at most; more wait to be accepted.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Open connections one client address may hold at most (0: no limit); more are closed at once.
    #[arg(long, default_value_t = 64)]
    max_connections_per_address: usize,
    /// Seconds a connection may take to send a request's headers; idle ones are closed after it.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
}

impl Cli {
    fn options(self) -> Options {
        Options {
            listen: self.listen,
            database: self.database,
            rules: self.rules,
            settings: Settings {
                allow_origins: self.allow_origins,
                write_key: self.write_key,
                www: self.www,
                pkg: self.pkg,
                dashboard_password: self.dashboard_password.filter(|p| !p.is_empty()),
                rate_limit: self.rate_limit,
                rate_burst: self.rate_burst,
            },
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
        }
    }
}

/// A database URL fit to print: its password, if any, masked.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => match rest.get(..at).and_then(|userinfo| userinfo.split_once(':')) {
            Some((user, _)) => format!("{scheme}://{user}:***{}", rest.get(at..).unwrap_or("")),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[tokio::main]
async fn main() {
    let options = Cli::parse().options();
    let database = without_password(&options.database);
    let dashboard_locked = options.settings.dashboard_password.is_some();
    let server = match Server::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("segmint-collector: {e}");
            std::process::exit(1);
        }
    };
    let address = server.address().map(|a| a.to_string()).unwrap_or_default();
    println!(
        "segmint-collector on http://{address}  ({database}, {} events stored)",
        server.stored().await
    );
    println!("  demo storefront: http://{address}/");
    let access = if dashboard_locked {
        "with the dashboard password"
    } else {
        "from this machine only; --dashboard-password opens it to others"
    };
    println!("  dashboard:       http://{address}/dashboard  ({access})");
    if let Err(e) = server.run().await {
        eprintln!("segmint-collector: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            without_password("clickhouse://default:s3cret@ch:8123/db"),
            "clickhouse://default:***@ch:8123/db"
        );
        assert_eq!(
            without_password("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require"
        );
        assert_eq!(without_password("sqlite:segmint.db"), "sqlite:segmint.db");
    }
}
