//! The rules document served at `/v1/rules`: read from a file, validated
//! with segmint-core at start and whenever the file changes. A bad file is
//! reported and the last good document stays in force.

use segmint_core::rules::Rules;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// A validated document and what is served for it.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The file's text, served as is.
    pub text: String,
    /// Strong ETag of the text.
    pub etag: String,
    /// The parsed rules (for server-side evaluation and segment names).
    pub rules: Rules,
    /// Its segment ids: the only ones the dashboard's figures count.
    pub defined: Arc<HashSet<String>>,
}

/// The rules in force, shared with the request handlers.
#[derive(Clone, Default)]
pub struct RulesState {
    current: Arc<RwLock<Option<Arc<Loaded>>>>,
}

/// 64-bit FNV-1a: enough for an ETag (not for security).
fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Validates a document's text.
pub fn load(text: String) -> Result<Loaded, String> {
    let rules = Rules::parse(&text).map_err(|e| e.to_string())?;
    Ok(Loaded {
        etag: format!("\"{:016x}\"", fnv64(text.as_bytes())),
        text,
        defined: Arc::new(rules.segments.iter().map(|s| s.id.clone()).collect()),
        rules,
    })
}

impl RulesState {
    /// The document in force.
    pub fn get(&self) -> Option<Arc<Loaded>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// The segment ids of the document in force (none without one).
    pub fn defined(&self) -> Arc<HashSet<String>> {
        self.get().map(|l| l.defined.clone()).unwrap_or_default()
    }

    fn set(&self, loaded: Loaded) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(loaded));
        }
    }

    /// Loads `path` now (an error if it is bad: the server should not start
    /// with broken rules), then checks it every second and reloads it when
    /// it changes, logging a bad version and keeping the good one.
    pub fn watch(&self, path: PathBuf) -> Result<(), String> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let first = load(read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!(
            "segmint-collector: rules {} from {}",
            first.rules.version,
            path.display()
        );
        self.set(first);
        let state = self.clone();
        let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut seen: Option<SystemTime> = modified(&path);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match read(&path).and_then(load) {
                    Ok(loaded) => {
                        eprintln!("segmint-collector: rules {} reloaded", loaded.rules.version);
                        state.set(loaded);
                    }
                    Err(e) => eprintln!(
                        "segmint-collector: {}: {e}; the previous rules stay in force",
                        path.display()
                    ),
                }
            }
        });
        Ok(())
    }
}
