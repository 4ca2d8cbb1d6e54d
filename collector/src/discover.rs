//! Segments the data discovers: each user's behaviour as features (traits
//! computed from their stored events by segmint-core's own profile code,
//! as the device computes them), clustered with k-means (k chosen by
//! silhouette), and each cluster described by a shallow decision tree
//! turned into a condition in the rules document's language, which the
//! device can evaluate. A proposal adopted into the rules document is
//! evaluated like any hand-written segment, on the device and by
//! `/api/users/{id}/segments`.

use crate::db::Db;
use linfa::dataset::{DatasetBase, Records};
use linfa::metrics::SilhouetteScore;
use linfa::traits::{Fit, Predict};
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2, Axis};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use segmint_core::condition::{eval_condition, Native};
use segmint_core::json::Value;
use segmint_core::rules::{Aggregate, Rules, TraitKind};

/// The features every discovery computes besides the document's own
/// numeric traits: trait definitions in the rules document's language, so
/// an adopted segment's condition can use them on the device.
pub const STANDARD_TRAITS: &str = r#"{
  "purchases_30d": {"event": "Order Completed", "aggregate": "count", "window_days": 30},
  "purchases_90d": {"event": "Order Completed", "aggregate": "count", "window_days": 90},
  "revenue_30d": {"event": "Order Completed", "aggregate": "sum", "property": "total", "window_days": 30},
  "revenue_90d": {"event": "Order Completed", "aggregate": "sum", "property": "total", "window_days": 90},
  "avg_item_price_90d": {"event": "Order Completed", "aggregate": "avg", "property": "products.price", "window_days": 90},
  "days_since_first_seen": {"builtin": "days_since_first_seen"},
  "sessions_30d": {"builtin": "sessions", "window_days": 30},
  "searches_30d": {"event": "Products Searched", "aggregate": "count", "window_days": 30},
  "product_clicks_30d": {"event": "Product Clicked", "aggregate": "count", "window_days": 30},
  "top_category_share_90d": {"event": "Product Clicked", "aggregate": "top_share", "property": "category", "window_days": 90}
}"#;

/// k is chosen between these by silhouette.
const K_RANGE: std::ops::RangeInclusive<usize> = 2..=8;
/// Users k-means and the trees are fitted on at most (a random sample;
/// every user is then assigned and measured).
const FIT_SAMPLE: usize = 50_000;
/// Users the silhouette is computed over (it is quadratic).
const SILHOUETTE_SAMPLE: usize = 2_000;
/// Decision trees go this deep at most.
const TREE_DEPTH: usize = 3;

/// The features discovery computes, and the rules used to compute them.
#[derive(Clone, Debug)]
pub struct Features {
    /// Feature names, in column order.
    pub names: Vec<String>,
    /// Whether a feature can have no value (an average of nothing): a
    /// condition `<=` on it must then also admit users without one.
    pub nullable: Vec<bool>,
    /// The trait definitions (name, JSON) the features need.
    pub definitions: Vec<(String, Value)>,
    rules: Rules,
}

/// One user's feature values (`None`: no value).
#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    /// The anonymous id.
    pub user: String,
    /// One value per feature.
    pub values: Vec<Option<f64>>,
}

impl Features {
    /// The document's numeric traits and the standard ones (a standard
    /// trait whose name the document uses for something else is renamed
    /// with `_std`).
    pub fn for_rules(doc: &Value) -> Result<Features, String> {
        let standard = Value::parse(STANDARD_TRAITS).map_err(|e| e.to_string())?;
        let mut definitions: Vec<(String, Value)> = match doc.get("traits") {
            Some(Value::Object(members)) => members.clone(),
            _ => Vec::new(),
        };
        for (name, def) in standard.as_object().unwrap_or(&[]) {
            match definitions.iter().find(|(n, _)| n == name) {
                Some((_, same)) if same == def => {}
                Some(_) => definitions.push((format!("{name}_std"), def.clone())),
                None => definitions.push((name.clone(), def.clone())),
            }
        }
        let rules_doc = Value::Object(vec![
            ("version".into(), Value::String("discovery".into())),
            ("traits".into(), Value::Object(definitions.clone())),
            ("segments".into(), Value::Array(Vec::new())),
        ]);
        let rules = Rules::from_value(&rules_doc).map_err(|e| e.to_string())?;
        let mut names = Vec::new();
        let mut nullable = Vec::new();
        for t in &rules.traits {
            let (numeric, can_be_missing) = match &t.kind {
                TraitKind::Event { aggregate, .. } => (
                    aggregate.is_numeric(),
                    matches!(
                        aggregate,
                        Aggregate::Avg | Aggregate::Min | Aggregate::Max | Aggregate::TopShare
                    ),
                ),
                TraitKind::DaysSinceFirstSeen | TraitKind::Sessions { .. } => (true, false),
            };
            if numeric {
                names.push(t.name.clone());
                nullable.push(can_be_missing);
            }
        }
        Ok(Features {
            names,
            nullable,
            definitions,
            rules,
        })
    }

    /// A user's features from their messages (in recording order), at
    /// their last one, as the device would have them then.
    pub fn of_user(&self, user: &str, messages: &[Value]) -> Option<UserRow> {
        let replayed = segmint_core::replay::replay(
            &self.rules,
            messages,
            &Native::default(),
            30.0 * 60_000.0,
        )?;
        Some(UserRow {
            user: user.to_string(),
            values: self
                .names
                .iter()
                .map(|n| replayed.traits.get(n).and_then(Value::as_f64))
                .collect(),
        })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Every user's features, read from the stored events a page at a time.
pub async fn rows_from_db(db: &Db, features: &Features) -> Result<Vec<UserRow>, String> {
    let mut rows = Vec::new();
    db.for_each_user(|events| {
        let user = events
            .first()
            .and_then(|e| e.anonymous_id.as_deref())
            .unwrap_or_default();
        let messages: Vec<Value> = events
            .iter()
            .filter_map(|e| Value::parse(&e.body).ok())
            .collect();
        rows.extend(features.of_user(user, &messages));
    })
    .await?;
    Ok(rows)
}

/// A discovered segment.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// `discovered-N`.
    pub id: String,
    /// A name saying what the rule asks.
    pub name: String,
    /// The cluster's users.
    pub size: usize,
    /// The rule, in the rules document's condition language.
    pub condition: Value,
    /// Of the users the rule matches, the share in the cluster.
    pub precision: f64,
    /// Of the cluster's users, the share the rule matches.
    pub recall: f64,
    /// The cluster's users with an order in the last 90 days (share).
    pub conversion: f64,
    /// The cluster's average order value over 90 days.
    pub aov: f64,
    /// The traits the condition reads.
    pub traits: Vec<String>,
}

/// What a discovery found.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// Users clustered.
    pub users: usize,
    /// The k chosen.
    pub k: usize,
    /// The silhouette of each k tried.
    pub silhouettes: Vec<(usize, f64)>,
    /// Each user's cluster (index into the clusters, largest first).
    pub labels: Vec<usize>,
    /// One proposal per cluster a tree could describe, largest first.
    pub proposals: Vec<Proposal>,
}

/// Clusters `rows` and describes each cluster; `first_id` numbers the
/// proposals (`discovered-{first_id}`, ...).
pub fn discover(
    rows: &[UserRow],
    features: &Features,
    seed: u64,
    first_id: usize,
) -> Result<Discovery, String> {
    let n = rows.len();
    let width = features.names.len();
    if n < 2 * K_RANGE.start() {
        return Err(format!("{n} users are too few to cluster"));
    }
    let raw = Array2::from_shape_fn((n, width), |(i, j)| {
        rows.get(i)
            .and_then(|r| r.values.get(j).copied().flatten())
            .unwrap_or(0.0)
    });
    // Counts and amounts are heavy-tailed (one big order dwarfs ten
    // small ones): clustered on log(1 + x), standardised, so no feature
    // dominates by its unit. The trees read the values themselves.
    let logged = raw.mapv(|x| x.max(0.0).ln_1p());
    let mean = logged
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(width));
    let std = logged
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 0.0 { s } else { 1.0 });
    let scaled = (&logged - &mean) / &std;

    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let fit_rows = sample_rows(n, FIT_SAMPLE, &mut rng);
    let fit_data = DatasetBase::from(scaled.select(Axis(0), &fit_rows));
    let check_rows = sample_rows(n, SILHOUETTE_SAMPLE, &mut rng);
    let check = scaled.select(Axis(0), &check_rows);
    let mut models = Vec::new();
    let mut silhouettes = Vec::new();
    for k in K_RANGE.filter(|k| *k < fit_data.nsamples()) {
        let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed ^ k as u64))
            .n_runs(4)
            .max_n_iterations(200)
            .tolerance(1e-5)
            .fit(&fit_data)
            .map_err(|e| format!("k-means with k = {k}: {e}"))?;
        let labels: Array1<usize> = model.predict(&check);
        let score = DatasetBase::new(check.clone(), labels)
            .silhouette_score()
            .unwrap_or(-1.0);
        silhouettes.push((k, score));
        models.push((k, score, model));
    }
    // The fewest clusters whose silhouette is within 0.01 of the best:
    // a split that barely scores higher is not a group of its own.
    let top = silhouettes.iter().map(|(_, s)| *s).fold(f64::MIN, f64::max);
    let (k, _, model) = models
        .into_iter()
        .find(|(_, s, _)| *s >= top - 0.01)
        .ok_or("no k could be tried")?;
    let assigned: Array1<usize> = model.predict(&scaled);
    // Clusters renumbered largest first.
    let mut sizes: Vec<(usize, usize)> = (0..k)
        .map(|c| (c, assigned.iter().filter(|l| **l == c).count()))
        .collect();
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rank = |c: usize| sizes.iter().position(|(x, _)| *x == c).unwrap_or(0);
    let labels: Vec<usize> = assigned.iter().map(|c| rank(*c)).collect();

    let purchases = features.column("purchases_90d");
    let revenue = features.column("revenue_90d");
    let value = |row: &UserRow, col: Option<usize>| {
        col.and_then(|c| row.values.get(c).copied().flatten())
            .unwrap_or(0.0)
    };
    let tree_rows = sample_rows(n, FIT_SAMPLE, &mut rng);
    let tree_records = raw.select(Axis(0), &tree_rows);
    let mut proposals = Vec::new();
    for cluster in 0..k {
        let members: Vec<usize> = (0..n)
            .filter(|i| labels.get(*i) == Some(&cluster))
            .collect();
        let targets_of: Vec<bool> = tree_rows
            .iter()
            .map(|i| labels.get(*i) == Some(&cluster))
            .collect();
        let paths = member_leaves(&tree_records, &targets_of, TREE_DEPTH);
        let Some((condition, traits, text)) = condition_of(&paths, features) else {
            continue;
        };
        let matched: Vec<bool> = rows
            .iter()
            .map(|r| holds(&condition, r, features))
            .collect();
        let hits = members
            .iter()
            .filter(|i| matched.get(**i) == Some(&true))
            .count();
        let matched_all = matched.iter().filter(|m| **m).count();
        let orders: f64 = members
            .iter()
            .filter_map(|i| rows.get(*i))
            .map(|r| value(r, purchases))
            .sum();
        let converted = members
            .iter()
            .filter_map(|i| rows.get(*i))
            .filter(|r| value(r, purchases) > 0.0)
            .count();
        let spent: f64 = members
            .iter()
            .filter_map(|i| rows.get(*i))
            .map(|r| value(r, revenue))
            .sum();
        let number = first_id + proposals.len();
        proposals.push(Proposal {
            id: format!("discovered-{number}"),
            name: format!("Discovered {number}: {text}"),
            size: members.len(),
            condition,
            precision: ratio(hits, matched_all),
            recall: ratio(hits, members.len()),
            conversion: ratio(converted, members.len()),
            aov: if orders > 0.0 { spent / orders } else { 0.0 },
            traits,
        });
    }
    Ok(Discovery {
        users: n,
        k,
        silhouettes,
        labels,
        proposals,
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Up to `at_most` distinct row indices out of `n`, sorted.
fn sample_rows(n: usize, at_most: usize, rng: &mut Xoshiro256Plus) -> Vec<usize> {
    if n <= at_most {
        return (0..n).collect();
    }
    let mut picked = sample(rng, n, at_most).into_vec();
    picked.sort_unstable();
    picked
}

/// One step of a path from the root: feature, `<=` (else `>`), threshold.
type Step = (usize, bool, f64);

/// The paths to the leaves of a classification tree (CART, Gini, at most
/// `depth` splits deep) where members (`targets`) are the majority.
///
/// Written here rather than taken from linfa-trees, whose fits differ from
/// run to run on the same data (2 of 6 in a test): the same events must
/// give the same rules.
fn member_leaves(records: &Array2<f64>, targets: &[bool], depth: usize) -> Vec<Vec<Step>> {
    let rows: Vec<usize> = (0..targets.len()).collect();
    let mut out = Vec::new();
    grow(records, targets, rows, depth, &mut Vec::new(), &mut out);
    out
}

fn gini(members: usize, all: usize) -> f64 {
    if all == 0 {
        return 0.0;
    }
    let p = members as f64 / all as f64;
    2.0 * p * (1.0 - p)
}

fn grow(
    records: &Array2<f64>,
    targets: &[bool],
    rows: Vec<usize>,
    depth: usize,
    path: &mut Vec<Step>,
    out: &mut Vec<Vec<Step>>,
) {
    let member = |i: &usize| targets.get(*i).copied().unwrap_or(false);
    let inside = rows.iter().filter(|i| member(i)).count();
    let leaf = |out: &mut Vec<Vec<Step>>, path: &Vec<Step>| {
        if inside * 2 > rows.len() {
            out.push(path.clone());
        }
    };
    if depth == 0 || inside == 0 || inside == rows.len() {
        return leaf(out, path);
    }
    let parent = gini(inside, rows.len());
    // (weighted impurity, feature, threshold): the lowest wins, ties to
    // the first feature and the lowest threshold.
    let mut best: Option<(f64, usize, f64)> = None;
    for feature in 0..records.ncols() {
        let mut values: Vec<(f64, bool)> = rows
            .iter()
            .map(|i| {
                (
                    records.get((*i, feature)).copied().unwrap_or(0.0),
                    member(i),
                )
            })
            .collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut left_in = 0;
        for (k, pair) in values.windows(2).enumerate() {
            let [(x, is_member), (next, _)] = pair else {
                continue;
            };
            left_in += usize::from(*is_member);
            if next <= x {
                continue;
            }
            let left = k + 1;
            let right = values.len() - left;
            let score = (left as f64 * gini(left_in, left)
                + right as f64 * gini(inside - left_in, right))
                / values.len() as f64;
            if best.is_none_or(|(b, _, _)| score < b) {
                best = Some((score, feature, (x + next) / 2.0));
            }
        }
    }
    match best {
        Some((score, feature, threshold)) if parent - score > 1e-9 => {
            let (left, right): (Vec<usize>, Vec<usize>) = rows
                .into_iter()
                .partition(|i| records.get((*i, feature)).copied().unwrap_or(0.0) <= threshold);
            for (side, le) in [(left, true), (right, false)] {
                path.push((feature, le, threshold));
                grow(records, targets, side, depth - 1, path, out);
                path.pop();
            }
        }
        _ => leaf(out, path),
    }
}

/// A threshold as the rule states it.
fn rounded(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The condition `$or` of the paths' `$and`s (each feature's tightest
/// bounds), the traits it reads and a short text for its name; `None`
/// when no leaf predicts the cluster.
fn condition_of(paths: &[Vec<Step>], features: &Features) -> Option<(Value, Vec<String>, String)> {
    let mut alternatives = Vec::new();
    let mut traits: Vec<String> = Vec::new();
    let mut texts = Vec::new();
    for path in paths {
        // Per feature: the lowest upper bound and highest lower bound.
        let mut bounds: Vec<(usize, Option<f64>, Option<f64>)> = Vec::new();
        for (feature, le, t) in path {
            let entry = match bounds.iter_mut().find(|(f, _, _)| f == feature) {
                Some(e) => e,
                None => {
                    bounds.push((*feature, None, None));
                    bounds.last_mut()?
                }
            };
            if *le {
                entry.1 = Some(entry.1.map_or(*t, |u: f64| u.min(*t)));
            } else {
                entry.2 = Some(entry.2.map_or(*t, |l: f64| l.max(*t)));
            }
        }
        let mut parts = Vec::new();
        let mut text = Vec::new();
        for (feature, upper, lower) in bounds {
            let name = features.names.get(feature)?.clone();
            let nullable = features.nullable.get(feature).copied().unwrap_or(false);
            if let Some(l) = lower {
                let l = rounded(l);
                parts.push(compare(&name, "$gt", l));
                text.push(format!("{name} > {l}"));
            }
            if let Some(u) = upper {
                let u = rounded(u);
                let le = compare(&name, "$lte", u);
                // Without a value the tree read 0; the device reads no
                // value, which no comparison admits: admit it here.
                parts.push(if nullable && u >= 0.0 {
                    Value::Object(vec![(
                        "$or".into(),
                        Value::Array(vec![
                            Value::Object(vec![(
                                name.clone(),
                                Value::Object(vec![("$exists".into(), Value::Bool(false))]),
                            )]),
                            le,
                        ]),
                    )])
                } else {
                    le
                });
                text.push(format!("{name} ≤ {u}"));
            }
            if !traits.contains(&name) {
                traits.push(name);
            }
        }
        alternatives.push(match parts.len() {
            0 => Value::Object(Vec::new()),
            1 => parts.pop()?,
            _ => Value::Object(vec![("$and".into(), Value::Array(parts))]),
        });
        texts.push(text.join(", "));
    }
    let condition = match alternatives.len() {
        0 => return None,
        1 => alternatives.pop()?,
        _ => Value::Object(vec![("$or".into(), Value::Array(alternatives))]),
    };
    Some((condition, traits, texts.join("; or ")))
}

fn compare(name: &str, op: &str, x: f64) -> Value {
    Value::Object(vec![(
        name.to_string(),
        Value::Object(vec![(op.to_string(), Value::Number(x))]),
    )])
}

/// Whether `condition` holds for a user, evaluated as the device
/// evaluates it (features without a value absent).
pub fn holds(condition: &Value, row: &UserRow, features: &Features) -> bool {
    let attrs = Value::Object(
        features
            .names
            .iter()
            .zip(&row.values)
            .filter_map(|(n, v)| v.map(|x| (n.clone(), Value::Number(x))))
            .collect(),
    );
    eval_condition(&attrs, condition, &Value::Null, &Native::default())
}

/// The first free number for `discovered-N` ids in `doc`.
pub fn first_free_number(doc: &Value) -> usize {
    doc.get("segments")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| s.get("id").and_then(Value::as_str))
        .filter_map(|id| id.strip_prefix("discovered-"))
        .filter_map(|n| n.parse::<usize>().ok())
        .max()
        .map_or(1, |n| n + 1)
}

/// A new version of the rules document `doc` with `proposals` added (below
/// every segment it has, 10% held out like the demo's) and the trait
/// definitions they read.
pub fn adopt(doc: &Value, features: &Features, proposals: &[&Proposal]) -> Value {
    let mut out = doc.clone();
    let version = doc
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("rules");
    out.insert("version", Value::String(format!("{version}+discovered")));
    let mut traits = match doc.get("traits") {
        Some(Value::Object(t)) => t.clone(),
        _ => Vec::new(),
    };
    for p in proposals {
        for name in &p.traits {
            if traits.iter().any(|(n, _)| n == name) {
                continue;
            }
            if let Some((_, def)) = features.definitions.iter().find(|(n, _)| n == name) {
                traits.push((name.clone(), def.clone()));
            }
        }
    }
    out.insert("traits", Value::Object(traits));
    let mut segments: Vec<Value> = doc
        .get("segments")
        .and_then(Value::as_array)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let lowest = segments
        .iter()
        .filter_map(|s| s.get("priority").and_then(Value::as_f64))
        .fold(f64::INFINITY, f64::min);
    let lowest = if lowest.is_finite() { lowest } else { 0.0 };
    for (i, p) in proposals.iter().enumerate() {
        segments.push(Value::Object(vec![
            ("id".into(), Value::String(p.id.clone())),
            ("name".into(), Value::String(p.name.clone())),
            ("priority".into(), Value::Number(lowest - 1.0 - i as f64)),
            ("condition".into(), p.condition.clone()),
            ("holdout".into(), Value::Number(0.1)),
        ]));
    }
    out.insert("segments", Value::Array(segments));
    out
}

/// The proposals as JSON, for the dashboard and `discover --json`.
pub fn to_json(d: &Discovery) -> Value {
    let num = Value::Number;
    Value::Object(vec![
        ("users".into(), num(d.users as f64)),
        ("k".into(), num(d.k as f64)),
        (
            "silhouettes".into(),
            Value::Array(
                d.silhouettes
                    .iter()
                    .map(|(k, s)| Value::Array(vec![num(*k as f64), num(*s)]))
                    .collect(),
            ),
        ),
        (
            "proposals".into(),
            Value::Array(
                d.proposals
                    .iter()
                    .map(|p| {
                        Value::Object(vec![
                            ("id".into(), Value::String(p.id.clone())),
                            ("name".into(), Value::String(p.name.clone())),
                            ("size".into(), num(p.size as f64)),
                            ("condition".into(), p.condition.clone()),
                            ("precision".into(), num(p.precision)),
                            ("recall".into(), num(p.recall)),
                            ("conversion".into(), num(p.conversion)),
                            ("aov".into(), num(p.aov)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

/// What `segmint-collector discover` was asked.
#[derive(Clone, Debug)]
pub struct Request {
    /// Where the events are.
    pub database: String,
    /// The rules document in force (its traits become features; the
    /// proposals are added to it).
    pub rules: std::path::PathBuf,
    /// Makes the clustering reproducible.
    pub seed: u64,
    /// Write the new rules document here.
    pub write: Option<std::path::PathBuf>,
    /// Adopt only these proposals (all when empty).
    pub only: Vec<String>,
}

/// A discovery over the events in `db` under the rules document `doc`:
/// what it found, the features it used, and how long reading took.
pub async fn over(
    db: &Db,
    doc: &Value,
    seed: u64,
) -> Result<(Discovery, Features, std::time::Duration), String> {
    let features = Features::for_rules(doc)?;
    let started = std::time::Instant::now();
    let rows = rows_from_db(db, &features).await?;
    let read = started.elapsed();
    let first = first_free_number(doc);
    // Clustering is CPU work: off the async threads.
    tokio::task::spawn_blocking(move || {
        discover(&rows, &features, seed, first).map(|d| (d, features, read))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs a discovery over a database; returns the report to print.
pub async fn run(request: &Request) -> Result<String, String> {
    let text = std::fs::read_to_string(&request.rules)
        .map_err(|e| format!("cannot read {}: {e}", request.rules.display()))?;
    let doc = Value::parse(&text).map_err(|e| format!("{}: {e}", request.rules.display()))?;
    Rules::from_value(&doc).map_err(|e| format!("{}: {e}", request.rules.display()))?;
    let db = Db::open(&request.database, &Default::default()).await?;
    let started = std::time::Instant::now();
    let (d, features, read) = over(&db, &doc, request.seed).await?;
    let mut out = report(&d, read, started.elapsed());
    if let Some(path) = &request.write {
        let chosen: Vec<&Proposal> = d
            .proposals
            .iter()
            .filter(|p| request.only.is_empty() || request.only.contains(&p.id))
            .collect();
        if let Some(missing) = request
            .only
            .iter()
            .find(|id| !d.proposals.iter().any(|p| &p.id == *id))
        {
            return Err(format!("--only {missing}: no such proposal"));
        }
        let adopted = adopt(&doc, &features, &chosen);
        let written = pretty(&adopted, 0);
        std::fs::write(path, written)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        out.push_str(&format!(
            "wrote {} (version {}, {} segment{} added)\n",
            path.display(),
            adopted.get("version").and_then(Value::as_str).unwrap_or(""),
            chosen.len(),
            if chosen.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}

/// `v` as JSON with its first two levels on lines of their own (a
/// trait or a segment per line), the rest compact: a rules document a
/// person can read and diff.
pub fn pretty(v: &Value, depth: usize) -> String {
    let pad = "  ".repeat(depth + 1);
    let close = "  ".repeat(depth);
    match v {
        Value::Object(members) if depth < 2 && !members.is_empty() => {
            let lines: Vec<String> = members
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{pad}{}: {}",
                        Value::String(k.clone()).to_json(),
                        pretty(v, depth + 1)
                    )
                })
                .collect();
            format!("{{\n{}\n{close}}}", lines.join(",\n"))
        }
        Value::Array(items) if depth < 2 && !items.is_empty() => {
            let lines: Vec<String> = items
                .iter()
                .map(|v| format!("{pad}{}", pretty(v, depth + 1)))
                .collect();
            format!("[\n{}\n{close}]", lines.join(",\n"))
        }
        other => other.to_json(),
    }
}

/// The text `discover` prints.
pub fn report(d: &Discovery, read: std::time::Duration, total: std::time::Duration) -> String {
    let mut out = format!(
        "{} users, k = {} by silhouette ({}); read in {:.1} s, {:.1} s in all\n",
        d.users,
        d.k,
        d.silhouettes
            .iter()
            .map(|(k, s)| format!("{k}: {s:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        read.as_secs_f64(),
        total.as_secs_f64()
    );
    for p in &d.proposals {
        out.push_str(&format!(
            "\n{}  {} users ({:.1}%)  rule precision {:.2}, recall {:.2}  conversion {:.1}%  AOV {:.2}\n  {}\n  {}\n",
            p.id,
            p.size,
            100.0 * p.size as f64 / d.users.max(1) as f64,
            p.precision,
            p.recall,
            100.0 * p.conversion,
            p.aov,
            p.name,
            p.condition.to_json()
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Group, Plan};
    use std::collections::HashMap;

    /// The adjusted Rand index of two labellings (1: identical up to
    /// names, about 0: as good as chance).
    pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
        let pairs = |n: f64| n * (n - 1.0) / 2.0;
        let mut table: HashMap<(usize, usize), f64> = HashMap::new();
        let mut rows: HashMap<usize, f64> = HashMap::new();
        let mut cols: HashMap<usize, f64> = HashMap::new();
        for (x, y) in a.iter().zip(b) {
            *table.entry((*x, *y)).or_default() += 1.0;
            *rows.entry(*x).or_default() += 1.0;
            *cols.entry(*y).or_default() += 1.0;
        }
        let index: f64 = table.values().map(|n| pairs(*n)).sum();
        let row_sum: f64 = rows.values().map(|n| pairs(*n)).sum();
        let col_sum: f64 = cols.values().map(|n| pairs(*n)).sum();
        let expected = row_sum * col_sum / pairs(a.len() as f64);
        let max = (row_sum + col_sum) / 2.0;
        (index - expected) / (max - expected)
    }

    #[test]
    fn the_index_of_identical_and_of_unrelated_labellings() {
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        assert!(adjusted_rand_index(&[0, 1, 0, 1], &[0, 0, 1, 1]) < 0.0);
    }

    #[test]
    fn planted_groups_are_recovered_and_described() {
        let plan = Plan {
            users: 1_200,
            shares: [0.3, 0.15, 0.25, 0.3],
            noise: 0.05,
            seed: 11,
            now: 1_800_000_000_000.0,
        };
        let doc = Value::parse(include_str!("../../rules.json")).unwrap();
        let features = Features::for_rules(&doc).unwrap();
        let rows: Vec<UserRow> = (0..plan.users)
            .map(|i| {
                let messages: Vec<Value> = plan
                    .events_of(i)
                    .iter()
                    .map(|e| Value::parse(&e.body).unwrap())
                    .collect();
                features.of_user(&plan.user_id(i), &messages).unwrap()
            })
            .collect();
        let d = discover(&rows, &features, 3, 1).unwrap();
        let planted: Vec<usize> = (0..plan.users)
            .map(|i| {
                Group::ALL
                    .iter()
                    .position(|g| *g == plan.group_of(i))
                    .unwrap()
            })
            .collect();
        let ari = adjusted_rand_index(&planted, &d.labels);
        eprintln!("k {} silhouettes {:?} ARI {ari:.3}", d.k, d.silhouettes);
        for p in &d.proposals {
            eprintln!(
                "{} size {} precision {:.3} recall {:.3} {}",
                p.id,
                p.size,
                p.precision,
                p.recall,
                p.condition.to_json()
            );
        }
        assert!(ari >= 0.8, "ARI {ari}");
        // Each planted group's best-matching rule, evaluated as the device
        // evaluates it, is precise on the group.
        for (g, group) in Group::ALL.iter().enumerate() {
            let best = d
                .proposals
                .iter()
                .map(|p| {
                    let matched: Vec<usize> = (0..rows.len())
                        .filter(|i| holds(&p.condition, &rows[*i], &features))
                        .collect();
                    let hits = matched.iter().filter(|i| planted[**i] == g).count();
                    (hits, ratio(hits, matched.len()), p.id.clone())
                })
                .max_by_key(|(hits, _, _)| *hits)
                .unwrap();
            eprintln!("{}: {} precision {:.3}", group.name(), best.2, best.1);
            assert!(
                best.1 >= 0.85,
                "{}: {} precision {:.3}",
                group.name(),
                best.2,
                best.1
            );
        }
    }
}
