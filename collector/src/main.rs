//! `segmint-collector`: see README "Collector".
use segmint_collector::{http::Settings, Options, Server};
use std::path::PathBuf;

const USAGE: &str = "usage: segmint-collector [--listen 127.0.0.1:8080] [--database sqlite:segmint.db | postgres://...]
                         [--rules rules.json] [--www www] [--pkg pkg]
                         [--allow-origin <origin>]... [--write-key <key>]
                         [--dashboard-password <password>]   (or SEGMINT_DASHBOARD_PASSWORD)";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:8080".parse().map_err(|e| format!("{e}"))?,
        database: "sqlite:segmint.db".into(),
        rules: None,
        settings: Settings {
            dashboard_password: std::env::var("SEGMINT_DASHBOARD_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
            ..Settings::default()
        },
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                options.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: {v} is not an address like 127.0.0.1:8080"))?;
            }
            "--database" => options.database = value()?,
            "--rules" => options.rules = Some(PathBuf::from(value()?)),
            "--www" => options.settings.www = Some(PathBuf::from(value()?)),
            "--pkg" => options.settings.pkg = Some(PathBuf::from(value()?)),
            "--allow-origin" => options.settings.allow_origins.push(value()?),
            "--write-key" => options.settings.write_key = Some(value()?),
            "--dashboard-password" => options.settings.dashboard_password = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let database = options.database.clone();
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
        server.stored()
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
