//! Several collector processes on one PostgreSQL: they accept batches at
//! once, stay idempotent by messageId across processes, answer the same
//! figures, and one killed by SIGKILL under load loses nothing it
//! acknowledged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{batch, try_request, Collector, Postgres};
use segmint_core::json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn figures(c: &Collector) -> (f64, f64, String) {
    let v = Value::parse(&c.get("/api/summary").body).unwrap();
    let n = |k: &str| v.get(k).and_then(Value::as_f64).unwrap();
    (
        n("events"),
        n("users"),
        v.get("segments").unwrap().to_json(),
    )
}

#[test]
fn two_collectors_on_one_postgres() {
    let pg = Postgres::start();
    let dir = common::temp_dir("instances");
    let rules = common::rules_copy(&dir);
    let args = ["--rules", rules.to_str().unwrap()];
    let mut a = Collector::start(&pg.url, &args);
    let b = Collector::start(&pg.url, &args);
    let ports = [a.port, b.port];

    // The same batch through both: stored once.
    for port in ports {
        let body = batch("both", 10, None);
        let r = try_request(port, "POST", "/v1/batch", &[], body.as_bytes()).unwrap();
        assert_eq!(r.status, 200);
    }
    assert_eq!(figures(&a).0, 10.0);

    // Load on both; A is killed part way. Every batch either process
    // acknowledged must be stored.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let acknowledged = acknowledged.clone();
            let killed = killed.clone();
            std::thread::spawn(move || {
                for i in 0..60 {
                    let prefix = format!("load-{client}-{i}");
                    let body = batch(&prefix, 20, None);
                    // Alternate; once A is gone, B only.
                    let port = if i % 2 == 0 && !killed.load(Ordering::SeqCst) {
                        ports[0]
                    } else {
                        ports[1]
                    };
                    if let Ok(r) = try_request(port, "POST", "/v1/batch", &[], body.as_bytes()) {
                        if r.status == 200 {
                            let mut acked = acknowledged.lock().unwrap();
                            for n in 0..20 {
                                acked.insert(format!("{prefix}-{n}"));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Kill A once it has acknowledged some of the load.
    while acknowledged.lock().unwrap().len() < 800 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    a.kill();
    killed.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let stored: HashSet<String> = pg
        .query("SELECT message_id FROM events")
        .into_iter()
        .collect();
    let acked = acknowledged.lock().unwrap();
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    assert!(acked.len() >= 800);

    // A new process answers the same figures as the one that stayed up,
    // counting every stored event once.
    let a2 = Collector::start(&pg.url, &args);
    let (events, users, segments) = figures(&b);
    assert_eq!(events, stored.len() as f64);
    assert_eq!(figures(&a2), (events, users, segments));
    println!(
        "two collectors: {} events acknowledged, {} stored, 0 lost (one killed by SIGKILL under load)",
        acked.len(),
        stored.len()
    );
    let _ = std::fs::remove_dir_all(dir);
}
