//! SIGKILL mid-ingest: every event the collector acknowledged is still
//! stored after a restart, and none twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{batch, try_request, Collector};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn acknowledged_events_survive_sigkill() {
    let dir = common::temp_dir("crash");
    let db = dir.join("events.db");
    let url = format!("sqlite:{}", db.display());
    let mut c = Collector::start(&url, &[]);
    let port = c.port;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sent_batches: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (acked, sent_batches, stop) = (acked.clone(), sent_batches.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let prefix = format!("c{client}b{n}");
                    let body = batch(&prefix, 50, None);
                    n += 1;
                    match try_request(port, "POST", "/v1/batch", &[], body.as_bytes()) {
                        Ok(r) if r.status == 200 => {
                            acked
                                .lock()
                                .unwrap()
                                .extend((0..50).map(|i| format!("{prefix}-{i}")));
                            sent_batches.lock().unwrap().push(body);
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    // Let ingest run, then kill it without warning.
    std::thread::sleep(Duration::from_millis(1500));
    c.kill();
    stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 1000,
        "ingest ran before the kill ({} acknowledged)",
        acked.len()
    );

    // Restart on the same database: everything acknowledged is there.
    let c = Collector::start(&url, &[]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT message_id FROM events")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no message stored twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // Clients retry what they are not sure of: resending is harmless.
    let before = stored.len();
    for body in sent_batches.lock().unwrap().iter().take(20) {
        assert_eq!(c.post("/v1/batch", body).status, 200);
    }
    let after: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after as usize, before);
    println!(
        "SIGKILL mid-ingest: {} acknowledged, {} stored after restart, 0 lost, 0 twice",
        acked.len(),
        before
    );
    drop(c);
    let _ = std::fs::remove_dir_all(dir);
}
