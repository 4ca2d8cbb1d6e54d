//! GrowthBook's cross-SDK test cases (spec 0.12, MIT: see
//! `data/LICENSE-growthbook`), run against segmint-core. Prints one line
//! per section, e.g. `growthbook evalCondition: 583/583 passed`, and fails
//! if any case fails.

#![allow(clippy::indexing_slicing, clippy::expect_used)]

use segmint_core::condition::{eval_condition, Native};
use segmint_core::hash::{bucket_ranges, choose_variation, equal_weights, hash, in_namespace};
use segmint_core::json::Value;

const CASES: &str = include_str!("data/growthbook-cases.json");

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-8
}

struct Section {
    name: &'static str,
    passed: usize,
    failures: Vec<String>,
}

impl Section {
    fn new(name: &'static str) -> Section {
        Section {
            name,
            passed: 0,
            failures: Vec::new(),
        }
    }
    fn check(&mut self, ok: bool, label: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(label());
        }
    }
}

fn eval_conditions(section: &mut Section, cases: &[Value]) {
    let regex = Native::default();
    for case in cases {
        let c = case.as_array().unwrap_or_default();
        let (name, cond, attrs, want) = (&c[0], &c[1], &c[2], &c[3]);
        let groups = c.get(4).cloned().unwrap_or(Value::Null);
        let got = eval_condition(attrs, cond, &groups, &regex);
        section.check(
            Some(got)
                == matches!(want, Value::Bool(true))
                    .then_some(true)
                    .or(Some(false)),
            || {
                format!(
                    "{}: want {}, got {got}",
                    name.as_str().unwrap_or("?"),
                    want.to_json()
                )
            },
        );
    }
}

fn main() {
    let doc = Value::parse(CASES).expect("cases parse");
    let section = |name: &str| {
        doc.get(name)
            .and_then(Value::as_array)
            .unwrap_or_default()
            .to_vec()
    };
    let mut sections = Vec::new();

    let mut s = Section::new("evalCondition");
    eval_conditions(&mut s, &section("evalCondition"));
    sections.push(s);

    let mut s = Section::new("savedGroupReferencesV2.evalCondition");
    let v2 = doc
        .get("savedGroupReferencesV2")
        .and_then(|v| v.get("evalCondition"))
        .and_then(Value::as_array)
        .unwrap_or_default()
        .to_vec();
    eval_conditions(&mut s, &v2);
    sections.push(s);

    let mut s = Section::new("hash");
    for case in section("hash") {
        let c = case.as_array().unwrap_or_default();
        let got = hash(
            c[0].as_str().unwrap_or(""),
            c[1].as_str().unwrap_or(""),
            num(&c[2]) as u32,
        );
        let ok = match (&c[3], got) {
            (Value::Null, None) => true,
            (Value::Number(want), Some(got)) => close(*want, got),
            _ => false,
        };
        s.check(ok, || {
            format!("{}: want {}, got {got:?}", case.to_json(), c[3].to_json())
        });
    }
    sections.push(s);

    let mut s = Section::new("getBucketRange");
    for case in section("getBucketRange") {
        let c = case.as_array().unwrap_or_default();
        let args = c[1].as_array().unwrap_or_default();
        let weights: Option<Vec<f64>> = args[2].as_array().map(|w| w.iter().map(num).collect());
        let got = bucket_ranges(num(&args[0]) as i64, num(&args[1]), weights.as_deref());
        let want: Vec<(f64, f64)> = c[2]
            .as_array()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    num(&r.as_array().unwrap_or_default()[0]),
                    num(&r.as_array().unwrap_or_default()[1]),
                )
            })
            .collect();
        let ok = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(a, b)| close(a.0, b.0) && close(a.1, b.1));
        s.check(ok, || format!("{}: got {got:?}", c[0].to_json()));
    }
    sections.push(s);

    let mut s = Section::new("chooseVariation");
    for case in section("chooseVariation") {
        let c = case.as_array().unwrap_or_default();
        let ranges: Vec<(f64, f64)> = c[2]
            .as_array()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    num(&r.as_array().unwrap_or_default()[0]),
                    num(&r.as_array().unwrap_or_default()[1]),
                )
            })
            .collect();
        let got = choose_variation(num(&c[1]), &ranges);
        s.check(got as f64 == num(&c[3]), || {
            format!("{}: got {got}", c[0].to_json())
        });
    }
    sections.push(s);

    let mut s = Section::new("inNamespace");
    for case in section("inNamespace") {
        let c = case.as_array().unwrap_or_default();
        let ns = c[2].as_array().unwrap_or_default();
        let got = in_namespace(
            c[1].as_str().unwrap_or(""),
            ns[0].as_str().unwrap_or(""),
            num(&ns[1]),
            num(&ns[2]),
        );
        s.check(Value::Bool(got) == c[3], || {
            format!("{}: got {got}", c[0].to_json())
        });
    }
    sections.push(s);

    let mut s = Section::new("getEqualWeights");
    for case in section("getEqualWeights") {
        let c = case.as_array().unwrap_or_default();
        let got = equal_weights(num(&c[0]) as i64);
        let want: Vec<f64> = c[1]
            .as_array()
            .unwrap_or_default()
            .iter()
            .map(num)
            .collect();
        let ok = got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| close(*a, *b));
        s.check(ok, || format!("{}: got {got:?}", c[0].to_json()));
    }
    sections.push(s);

    let mut failed = false;
    for s in &sections {
        let total = s.passed + s.failures.len();
        println!("growthbook {}: {}/{} passed", s.name, s.passed, total);
        for f in &s.failures {
            println!("  FAIL {f}");
        }
        failed |= !s.failures.is_empty() || total == 0;
    }
    if failed {
        std::process::exit(1);
    }
}
