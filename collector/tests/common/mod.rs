//! Helpers for the collector's integration tests: run the real binary,
//! talk HTTP to it over a plain socket, and start a real PostgreSQL.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "segmint-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the collector with `args` to its end (a subcommand, or a start
/// that must fail).
pub fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_segmint-collector"))
        .args(args)
        .output()
        .unwrap()
}

/// A running collector process, killed when dropped.
pub struct Collector {
    pub child: Child,
    pub port: u16,
}

impl Collector {
    pub fn start(database: &str, extra: &[&str]) -> Collector {
        let port = free_port();
        let mut args = vec![
            "--listen".to_string(),
            format!("127.0.0.1:{port}"),
            "--database".into(),
            database.into(),
        ];
        // Tests that load the collector from one address are not what the
        // per-address limit is for; the hardening test sets its own.
        if !extra.contains(&"--rate-limit") {
            args.extend(["--rate-limit".into(), "0".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_segmint-collector"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let c = Collector { child, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the collector did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(self.port, method, path, headers, body)
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request(
            "POST",
            path,
            &[("Content-Type", "text/plain;charset=UTF-8")],
            body.as_bytes(),
        )
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection. Err on a connection that
/// breaks (the server was killed).
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A chunked HTTP body's content (ClickHouse answers that way).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_request(port, method, path, headers, body).unwrap()
}

/// Events stored, as `/api/summary` counts them.
#[allow(dead_code)]
pub fn stored(c: &Collector) -> f64 {
    segmint_core::json::Value::parse(&c.get("/api/summary").body)
        .unwrap()
        .get("events")
        .and_then(segmint_core::json::Value::as_f64)
        .unwrap()
}

/// A copy of the repository's rules document in `dir` (a test may change
/// it, and the collector reloads it).
#[allow(dead_code)]
pub fn rules_copy(dir: &Path) -> PathBuf {
    let rules = dir.join("rules.json");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../rules.json"),
        &rules,
    )
    .unwrap();
    rules
}

/// A Segment batch of `n` track events with ids `{prefix}-0..n`.
pub fn batch(prefix: &str, n: usize, write_key: Option<&str>) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(r#"{{"type":"track","event":"Load Test","messageId":"{prefix}-{i}","anonymousId":"user-{prefix}","timestamp":"2026-11-23T10:00:00.000Z","properties":{{"i":{i}}},"context":{{"segments":["s"]}}}}"#)
        })
        .collect();
    let key = write_key
        .map(|k| format!(r#","writeKey":"{k}""#))
        .unwrap_or_default();
    format!(
        r#"{{"batch":[{}],"sentAt":"2026-11-23T10:00:01.000Z"{key}}}"#,
        events.join(",")
    )
}

/// A PostgreSQL server for the test, in a temporary directory, stopped
/// when dropped. Runs as the `postgres` user when the tests run as root
/// (the server refuses root).
pub struct Postgres {
    pub url: String,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL is not installed: run scripts/setup.sh")
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// A server that accepts TLS connections only (`hostssl` lines in
    /// pg_hba.conf), with a certificate for 127.0.0.1 and localhost from a
    /// CA of the test's own, whose PEM is `ca.pem` in [`Postgres::dir`].
    pub fn start_tls() -> Postgres {
        Postgres::start_with(true)
    }

    /// The server's own directory (certificates, the log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn start_with(tls: bool) -> Postgres {
        let bin = pg_bin();
        let dir = temp_dir("pg");
        if tls {
            make_certificates(&dir);
        }
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        if as_postgres {
            assert!(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success());
        }
        let run = |program: &Path, args: &[&str]| {
            let mut cmd = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            };
            let out = cmd.args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{} failed: {}",
                program.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let data = dir.join("data");
        let data_s = data.to_str().unwrap().to_string();
        run(
            &bin.join("initdb"),
            &["-D", &data_s, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let port = free_port();
        let mut opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        );
        if tls {
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .unwrap();
            let d = dir.display();
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={d}/server.pem -c ssl_key_file={d}/server.key"
            ));
        }
        let log = dir.join("log").to_str().unwrap().to_string();
        run(
            &bin.join("pg_ctl"),
            &["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"],
        );
        Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            as_postgres,
        }
    }
}

/// A CA and a server certificate it signs, for 127.0.0.1 and localhost,
/// made with openssl in `dir`: ca.pem, server.pem, server.key (mode 600,
/// as PostgreSQL requires).
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=segmint test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

impl Postgres {
    /// `pg_ctl -D <data>`, as the `postgres` user when the tests run as
    /// root.
    fn pg_ctl(&self) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        cmd.arg("-D").arg(self.dir.join("data"));
        cmd
    }

    /// Stops the server (closing every connection) and starts it again
    /// with the same options.
    #[allow(dead_code)]
    pub fn restart(&mut self) {
        let log = self.dir.join("log");
        let out = self
            .pg_ctl()
            .args(["-m", "fast", "-w", "-l"])
            .arg(&log)
            .arg("restart")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// psql's output for `sql`, run with `flags`; fails the test on an
    /// error.
    fn psql(&self, flags: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-v", "ON_ERROR_STOP=1", flags, "-d", &self.url, "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs SQL with psql.
    pub fn execute(&self, sql: &str) {
        self.psql("-q", sql);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl().args(["-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Postgres {
    /// The rows of a query, one line each (psql's unaligned output).
    #[allow(dead_code)]
    pub fn query(&self, sql: &str) -> Vec<String> {
        self.psql("-At", sql).lines().map(str::to_string).collect()
    }
}

/// A ClickHouse server for the test (Debian's `clickhouse-server`), on
/// loopback ports, its data in a temporary directory; stopped and removed
/// when dropped.
pub struct ClickHouse {
    pub url: String,
    pub http_port: u16,
    child: Child,
    dir: PathBuf,
}

impl ClickHouse {
    pub fn start() -> ClickHouse {
        let dir = temp_dir("clickhouse");
        let (http_port, tcp_port) = (free_port(), free_port());
        let d = dir.display();
        std::fs::write(
            dir.join("config.xml"),
            format!(
                "<yandex>
  <logger><level>warning</level><log>{d}/log.txt</log><errorlog>{d}/err.txt</errorlog></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("users.xml"),
            "<yandex><profiles><default/></profiles><users><default><password></password>
<networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>
</default></users><quotas><default/></quotas></yandex>",
        )
        .unwrap();
        let child = Command::new("clickhouse-server")
            .arg(format!(
                "--config-file={}",
                dir.join("config.xml").display()
            ))
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server is not installed: run scripts/setup.sh");
        let ch = ClickHouse {
            url: format!("clickhouse://127.0.0.1:{http_port}/segmint"),
            http_port,
            child,
            dir,
        };
        let start = Instant::now();
        while try_request(http_port, "GET", "/ping", &[], b"")
            .map(|r| r.status)
            .ok()
            != Some(200)
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "clickhouse-server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ch
    }

    /// The text ClickHouse answers to `sql` (tab-separated rows).
    pub fn query(&self, sql: &str) -> String {
        let r = request(self.http_port, "POST", "/", &[], sql.as_bytes());
        assert_eq!(r.status, 200, "{sql}: {}", r.body);
        r.body
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
