//! `segmint-collector`: see README "Collector".
use clap::{Parser, Subcommand};
use segmint_collector::{http::Settings, Options, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// segmint's reference collector: Segment-compatible ingest, the rules
/// document, the demo storefront and the dashboard.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Seconds between computations of retention and bounce by segment (they read every event).
    #[arg(long, default_value_t = 300)]
    kpi_interval: u64,
    /// Seconds a connection may take to send a request's headers; idle ones are closed after it.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
}

/// Besides serving (the default).
#[derive(Subcommand, Debug)]
enum Command {
    /// Finds groups of users in the stored events (k-means on behavioural
    /// features) and proposes a segment rule for each (a decision tree).
    Discover {
        /// The events: `sqlite:path`, `postgres://...` or `clickhouse://...`.
        #[arg(long, default_value = "sqlite:segmint.db")]
        database: String,
        /// The rules document in force: its traits are features too, and
        /// `--write` adds the proposals to it.
        #[arg(long)]
        rules: PathBuf,
        /// Seed for the clustering (the same seed, the same proposals).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Writes a new version of the rules document with the proposals.
        #[arg(long)]
        write: Option<PathBuf>,
        /// Adopts only these proposals (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Stores synthetic storefront traffic with planted groups of
    /// shoppers (to try discovery and the dashboard).
    Generate {
        /// Where to store it.
        #[arg(long, default_value = "sqlite:segmint.db")]
        database: String,
        /// Users to generate.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Shares of frequent small-basket buyers, rare big spenders,
        /// category loyalists and browsers who never buy.
        #[arg(long, value_delimiter = ',', default_value = "0.3,0.15,0.25,0.3")]
        shares: Vec<f64>,
        /// Share of sessions that follow no group's habits.
        #[arg(long, default_value_t = 0.05)]
        noise: f64,
        /// The same seed, the same traffic (ending now).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Runs a subcommand; exits with 1 and the message on failure.
async fn run_command(command: Command) {
    let result = match command {
        Command::Discover {
            database,
            rules,
            seed,
            write,
            only,
        } => {
            let request = segmint_collector::discover::Request {
                database,
                rules,
                seed,
                write,
                only,
            };
            segmint_collector::discover::run(&request).await
        }
        Command::Generate {
            database,
            users,
            shares,
            noise,
            seed,
        } => generate(database, users, shares, noise, seed).await,
    };
    match result {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("segmint-collector: {e}");
            std::process::exit(1);
        }
    }
}

async fn generate(
    database: String,
    users: usize,
    shares: Vec<f64>,
    noise: f64,
    seed: u64,
) -> Result<String, String> {
    let shares: [f64; 4] = shares
        .try_into()
        .map_err(|_| "--shares takes four numbers".to_string())?;
    if !(0.0..=1.0).contains(&noise) || !shares.iter().all(|s| s.is_finite() && *s >= 0.0) {
        return Err("--noise is a share from 0 to 1, --shares are not negative".into());
    }
    let plan = segmint_collector::synthetic::Plan {
        users,
        shares,
        noise,
        seed,
        now: segmint_collector::now_ms(),
    };
    let db = segmint_collector::db::Db::open(&database, &Default::default()).await?;
    let stored = segmint_collector::synthetic::store(&db, &plan, true).await?;
    Ok(format!(
        "stored {stored} events of {users} synthetic users in {}\n",
        without_password(&database)
    ))
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
            kpi_interval: Duration::from_secs(self.kpi_interval.max(1)),
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
    let mut cli = Cli::parse();
    if let Some(command) = cli.command.take() {
        return run_command(command).await;
    }
    let options = cli.options();
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
