//! `segmint-collector generate` and `discover` from the command line: the
//! proposals written into a new rules document are valid rules, carry
//! the traits they read, and the collector serving that document puts
//! the synthetic users in them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Collector;
use segmint_core::json::Value;

#[test]
fn discovered_segments_are_adopted_and_evaluated() {
    let dir = common::temp_dir("discover");
    let database = format!("sqlite:{}", dir.join("events.db").display());
    let rules = common::rules_copy(&dir);
    let out = common::run(&[
        "generate",
        "--database",
        &database,
        "--users",
        "800",
        "--seed",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let written = dir.join("discovered.json");
    let args = [
        "discover",
        "--database",
        &database,
        "--rules",
        rules.to_str().unwrap(),
        "--seed",
        "2",
    ];
    let out = common::run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(report.starts_with("800 users, k = "), "{report}");
    assert!(report.contains("discovered-2"), "{report}");
    // The same seed, the same proposals (all but the timing line).
    let proposals = |text: &str| text.split_once('\n').map(|(_, rest)| rest.to_string());
    let again = String::from_utf8_lossy(&common::run(&args).stdout).to_string();
    assert!(
        proposals(&again) == proposals(&report),
        "another run differs:\n{again}\n{report}"
    );

    let mut adopt = args.to_vec();
    adopt.extend([
        "--write",
        written.to_str().unwrap(),
        "--only",
        "discovered-1,discovered-2",
    ]);
    let out = common::run(&adopt);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&written).unwrap();
    let parsed = segmint_core::rules::Rules::parse(&text).expect("the written document is valid");
    let ids: Vec<&str> = parsed.segments.iter().map(|s| s.id.as_str()).collect();
    assert!(
        ids.contains(&"discovered-1") && ids.contains(&"discovered-2"),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"discovered-3"),
        "--only adopts only those: {ids:?}"
    );
    assert_eq!(
        parsed.segments.len(),
        6,
        "the four of the document and two adopted"
    );
    assert!(parsed.version.ends_with("+discovered"));

    let mut unknown = args.to_vec();
    unknown.extend([
        "--write",
        written.to_str().unwrap(),
        "--only",
        "discovered-99",
    ]);
    let out = common::run(&unknown);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("discovered-99"));

    // The collector serving the new document evaluates the adopted
    // segments from the same stored events.
    let c = Collector::start(&database, &["--rules", written.to_str().unwrap()]);
    let mut in_discovered = 0;
    for i in 0..40 {
        let r = c.get(&format!("/api/users/synthetic-3-{}/segments", i * 20));
        assert_eq!(r.status, 200, "{}", r.body);
        let server = Value::parse(&r.body)
            .unwrap()
            .get("server")
            .unwrap()
            .to_json();
        if server.contains("discovered-") {
            in_discovered += 1;
        }
    }
    assert!(
        in_discovered >= 20,
        "{in_discovered} of 40 users in an adopted segment"
    );
    let _ = std::fs::remove_dir_all(dir);
}
