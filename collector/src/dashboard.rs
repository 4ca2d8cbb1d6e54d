//! The dashboard at `/dashboard`: a page that polls `/api/summary`, and
//! its charts, drawn by plotters as SVG.

use crate::summary::{lift, Summary};
use plotters::prelude::*;

const PALETTE: [RGBColor; 6] = [
    RGBColor(47, 125, 87),
    RGBColor(233, 162, 59),
    RGBColor(79, 124, 172),
    RGBColor(217, 83, 79),
    RGBColor(107, 91, 149),
    RGBColor(95, 163, 106),
];

/// Chart widths the page may ask for (its card's width), in pixels.
pub const CHART_WIDTHS: std::ops::RangeInclusive<u32> = 280..=1600;

/// An SVG chart `width` pixels wide: `events.svg`, `sizes.svg` or
/// `conversion.svg`.
pub fn chart(
    name: &str,
    s: &Summary,
    named: &[(String, String)],
    now: f64,
    width: u32,
) -> Option<String> {
    let width = width.clamp(*CHART_WIDTHS.start(), *CHART_WIDTHS.end());
    let mut svg = String::new();
    let drawn = match name {
        "events.svg" => events(&mut svg, s, now, width),
        "sizes.svg" => sizes(&mut svg, s, named, now, width),
        "conversion.svg" => conversion(&mut svg, s, named, width),
        _ => return None,
    };
    drawn.ok().map(|()| svg)
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// A segment's bars: its name, personalized and holdout rates, and the
/// difference's 95% interval.
type Bars = (String, f64, f64, Option<(f64, f64)>);

fn colour(i: usize) -> RGBColor {
    PALETTE.get(i % PALETTE.len()).copied().unwrap_or(BLACK)
}

fn minute_label(minutes_ago: &i64) -> String {
    if *minutes_ago == 0 {
        "now".into()
    } else {
        format!("-{minutes_ago}m")
    }
}

fn events(svg: &mut String, s: &Summary, now: f64, width: u32) -> Drawn {
    let series = s.events_per_minute(now, 60);
    let max = series.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let root = SVGBackend::with_string(svg, (width, 260)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption("Events per minute (last hour)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(44)
        .build_cartesian_2d(-59i64..0i64, 0u64..max + max / 5 + 1)?;
    c.configure_mesh()
        .x_label_formatter(&|m| minute_label(&-m))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let last = series.last().map_or(0, |(m, _)| *m);
    c.draw_series(
        AreaSeries::new(
            series.iter().map(|(m, n)| (m - last, *n)),
            0,
            colour(0).mix(0.25),
        )
        .border_style(colour(0).stroke_width(2)),
    )?;
    root.present()?;
    Ok(())
}

fn sizes(svg: &mut String, s: &Summary, named: &[(String, String)], now: f64, width: u32) -> Drawn {
    let segments = s.segment_ids(named);
    let all: Vec<(String, Vec<(i64, usize)>)> = segments
        .iter()
        .map(|(id, name)| (name.clone(), s.sizes_over_time(id, now, 60)))
        .collect();
    let max = all
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(_, n)| *n))
        .max()
        .unwrap_or(0)
        .max(1);
    let root = SVGBackend::with_string(svg, (width, 260)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption("Users seen in each segment, per minute", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(44)
        .build_cartesian_2d(-59i64..0i64, 0usize..max + max / 5 + 1)?;
    c.configure_mesh()
        .x_label_formatter(&|m| minute_label(&-m))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, (name, series)) in all.iter().enumerate() {
        let color = colour(i);
        let last = series.last().map_or(0, |(m, _)| *m);
        c.draw_series(LineSeries::new(
            series.iter().map(|(m, n)| (m - last, *n)),
            color.stroke_width(2),
        ))?
        .label(name.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.2))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn conversion(svg: &mut String, s: &Summary, named: &[(String, String)], width: u32) -> Drawn {
    let segments = s.segment_ids(named);
    let n = segments.len().max(1);
    let arms: Vec<Bars> = segments
        .iter()
        .map(|(id, name)| {
            let (p, h) = (s.arm(id, "personalized"), s.arm(id, "holdout"));
            let ci = lift(&p, &h).map(|l| l.sequential.ci95);
            (name.clone(), p.rate(), h.rate(), ci)
        })
        .collect();
    let top = (arms
        .iter()
        .map(|(_, p, h, _)| p.max(*h))
        .fold(0.0f64, f64::max)
        .max(0.05)
        * 1.25)
        .min(1.0);
    let root = SVGBackend::with_string(svg, (width, 320)).into_drawing_area();
    root.fill(&WHITE)?;
    let personalized = colour(0);
    let holdout = RGBColor(160, 160, 160);
    // The legend on a strip of its own above the plot, where no bar
    // reaches.
    let (strip, plot) = root.split_vertically(24);
    let font = ("sans-serif", 13).into_font();
    let mut x = 58;
    for (label, color) in [("personalized", personalized), ("holdout", holdout)] {
        strip.draw(&Rectangle::new([(x, 8), (x + 12, 18)], color.filled()))?;
        strip.draw(&Text::new(label, (x + 17, 7), font.clone()))?;
        x += 32 + 8 * label.len() as i32;
    }
    // Names cut to what a bar pair's width holds (about 7 px a letter).
    let room = ((width as usize).saturating_sub(80) / n / 7).max(4);
    let short = |name: &str| -> String {
        if name.chars().count() <= room {
            name.to_string()
        } else {
            let cut: String = name.chars().take(room.saturating_sub(1)).collect();
            format!("{}…", cut.trim_end())
        }
    };
    let mut c = ChartBuilder::on(&plot)
        .caption(
            "Conversion after exposure: personalized vs holdout",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
    let labels: Vec<String> = arms.iter().map(|(name, ..)| short(name)).collect();
    c.configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .draw()?;
    c.draw_series(arms.iter().enumerate().map(|(i, (_, p, _, _))| {
        Rectangle::new(
            [(i as f64 + 0.15, 0.0), (i as f64 + 0.48, *p)],
            personalized.filled(),
        )
    }))?;
    c.draw_series(arms.iter().enumerate().map(|(i, (_, _, h, _))| {
        Rectangle::new(
            [(i as f64 + 0.52, 0.0), (i as f64 + 0.85, *h)],
            holdout.filled(),
        )
    }))?;
    // The difference's 95% interval, drawn from the holdout rate.
    c.draw_series(arms.iter().enumerate().filter_map(|(i, (_, _, h, ci))| {
        let (lo, hi) = (*ci)?;
        let x = i as f64 + 0.5;
        Some(PathElement::new(
            vec![(x, (h + lo).max(0.0)), (x, (h + hi).min(top))],
            BLACK.stroke_width(1),
        ))
    }))?;
    root.present()?;
    Ok(())
}

/// segmint's mark: a leaf-green disc with a lighter slice.
pub const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#2f7d57"/><path d="M16 16 L16 1 A15 15 0 0 1 29 23.5 Z" fill="#e9a23b"/></svg>"##;

/// The dashboard page. Its figures come from `/api/summary`; its charts
/// are the SVGs above, drawn at each card's width and refreshed every 5
/// seconds.
pub const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>segmint · dashboard</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #fbfaf6; color: #1d2a24; }
  header { padding: .8rem 1.5rem; background: #fff; border-bottom: 1px solid #e4e1d8; display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; }
  header a { color: #2f7d57; }
  main { padding: 1rem 1.5rem; display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr)); }
  .cards { display: flex; flex-wrap: wrap; gap: 1rem; padding: 1rem 1.5rem 0; }
  .card, .panel { background: #fff; border: 1px solid #e4e1d8; border-radius: .8rem; padding: .8rem 1rem; min-width: 0; }
  .card b { display: block; font-size: 1.6rem; }
  .wide { grid-column: 1 / -1; overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; font-size: .9rem; }
  th, td { text-align: right; padding: .35rem .5rem; border-bottom: 1px solid #eee; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; white-space: normal; }
  .up { color: #2f7d57; } .down { color: #c0392b; } .muted { color: #8a958f; }
  .chart img { display: block; width: 100%; height: auto; }
  @media (max-width: 600px) { header, .cards, main { padding-left: .75rem; padding-right: .75rem; } }
</style>
</head>
<body>
<header><strong>segmint dashboard</strong><span id="rules" class="muted"></span><a href="/dashboard/discover">discover segments</a><a href="/">storefront</a></header>
<div class="cards">
  <div class="card">events<b id="events">…</b></div>
  <div class="card">users<b id="users">…</b></div>
  <div class="card muted" title="Crawlers and headless browsers, by user agent: stored, but in no figure here">bots left out<b id="bots">…</b></div>
</div>
<main>
  <div class="panel chart"><img data-chart="events" alt="Events per minute"></div>
  <div class="panel chart"><img data-chart="sizes" alt="Segment sizes over time"></div>
  <div class="panel chart"><img data-chart="conversion" alt="Conversion by segment"></div>
  <div class="panel wide">
    <table>
      <thead><tr><th>segment</th><th>size</th><th>retention</th><th>bounce</th><th>exposed (p / h)</th><th>conversion (p / h)</th><th>AOV (p / h)</th><th>lift [95% always-valid]</th><th>p (sequential)</th><th title="Valid only if read once, at a sample size fixed in advance">p (fixed horizon)</th></tr></thead>
      <tbody id="segments"></tbody>
    </table>
    <p class="muted">p: shown the personalized banner; h: held out (shown the default). Conversion: users with an order after their first exposure. The lift is personalized minus holdout conversion; its interval and p-value come from a mixture sequential test (mSPRT), so they stay valid however often this page is looked at, and agree: the interval leaves out 0 exactly when p &lt; 0.05. The fixed-horizon p (two-proportion test) holds only if read once, at a sample size fixed in advance. Below <span id="min-arm">30</span> users in either arm: not enough data. Retention: the segment's users who came back within 30 days of a visit; bounce: sessions with one page view.</p>
  </div>
</main>
<script>
  const pct = (x) => (100 * x).toFixed(1) + "%";
  const money = (x) => "$" + x.toFixed(2);
  const na = '<span class="muted">n/a</span>';
  const rate = (arm) => (arm.exposed ? pct(arm.rate) : na);
  const aov = (arm) => (arm.orders ? money(arm.aov) : na);
  const share = (x) => (x == null ? na : pct(x));
  function drawCharts() {
    for (const img of document.querySelectorAll("img[data-chart]")) {
      const width = Math.round(img.parentElement.clientWidth - 32);
      img.src = `/dashboard/charts/${img.dataset.chart}.svg?w=${width}&t=${Date.now()}`;
    }
  }
  async function refresh() {
    const s = await (await fetch("/api/summary")).json();
    document.getElementById("events").textContent = s.events.toLocaleString();
    document.getElementById("users").textContent = s.users.toLocaleString();
    document.getElementById("bots").textContent = `${s.bots.users.toLocaleString()} (${s.bots.events.toLocaleString()} events)`;
    document.getElementById("rules").textContent = s.rulesVersion ? "rules " + s.rulesVersion : "no rules";
    document.getElementById("min-arm").textContent = s.minExposedPerArm;
    const rows = s.segments.map((g) => {
      const l = g.lift;
      const seq = l && l.sequential;
      const diff = l ? `<span class="${seq.ci95[0] > 0 ? "up" : seq.ci95[1] < 0 ? "down" : ""}">${l.difference >= 0 ? "+" : ""}${pct(l.difference)}</span> <span class="muted">[${pct(seq.ci95[0])}, ${pct(seq.ci95[1])}]</span>` : '<span class="muted">not enough data</span>';
      const tr = document.createElement("tr");
      tr.innerHTML = `<td></td><td>${g.size}</td><td>${share(g.retention)}</td><td>${share(g.bounceRate)}</td><td>${g.personalized.exposed} / ${g.holdout.exposed}</td><td>${rate(g.personalized)} / ${rate(g.holdout)}</td><td>${aov(g.personalized)} / ${aov(g.holdout)}</td><td>${diff}</td><td>${l ? seq.pValue.toFixed(3) : ""}</td><td class="muted">${l ? l.fixedHorizon.pValue.toFixed(3) : ""}</td>`;
      tr.firstChild.textContent = g.name;
      return tr;
    });
    document.getElementById("segments").replaceChildren(...rows);
    drawCharts();
  }
  let resized;
  addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(drawCharts, 200);
  });
  refresh();
  setInterval(refresh, 5000);
</script>
</body>
</html>
"##;

/// The discovery page: runs `/api/discover`, lists the proposals, and
/// shows the rules document with the chosen ones adopted.
pub const DISCOVER_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>segmint · discover segments</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #fbfaf6; color: #1d2a24; }
  header { padding: .8rem 1.5rem; background: #fff; border-bottom: 1px solid #e4e1d8; display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; }
  header a { color: #2f7d57; }
  main { padding: 1rem 1.5rem; display: grid; gap: 1rem; }
  .panel { background: #fff; border: 1px solid #e4e1d8; border-radius: .8rem; padding: .8rem 1rem; overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; font-size: .9rem; }
  th, td { text-align: right; padding: .35rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
  th:nth-child(-n+2), td:nth-child(-n+2), td.rule { text-align: left; }
  td.rule code { font-size: .8rem; }
  .muted { color: #8a958f; }
  button { font: inherit; padding: .4rem .9rem; border-radius: .5rem; border: 1px solid #2f7d57; background: #2f7d57; color: #fff; cursor: pointer; }
  button.quiet { background: #fff; color: #2f7d57; }
  textarea { width: 100%; min-height: 18rem; font-family: ui-monospace, monospace; font-size: .8rem; box-sizing: border-box; }
  @media (max-width: 600px) { header, main { padding-left: .75rem; padding-right: .75rem; } }
</style>
</head>
<body>
<header><strong>discover segments</strong><a href="/dashboard">dashboard</a></header>
<main>
  <div class="panel">
    <p>Clusters the stored users by behaviour (k-means; k chosen by silhouette) and describes each cluster with a rule of at most three conditions that the device evaluates. Reads every user's events: on a large store it takes minutes.</p>
    <button id="run">Run discovery</button> <span id="status" class="muted"></span>
  </div>
  <div class="panel" id="results" hidden>
    <p id="summary" class="muted"></p>
    <table>
      <thead><tr><th>adopt</th><th>segment</th><th>users</th><th>precision</th><th>recall</th><th>conversion</th><th>AOV</th><th>rule</th></tr></thead>
      <tbody id="proposals"></tbody>
    </table>
    <p class="muted">Precision: of the users the rule matches, the share in the cluster; recall: of the cluster, the share the rule matches. Conversion: users with an order in 90 days.</p>
    <button id="show" class="quiet">Show the rules JSON</button>
    <p id="adopt-help" class="muted" hidden>Save this as the rules file the collector serves (<code>--rules</code>): devices pick it up at their next revalidation. Or run <code>segmint-collector discover --write</code>.</p>
    <textarea id="json" hidden readonly></textarea>
  </div>
</main>
<script>
  let found;
  const pct = (x) => (100 * x).toFixed(1) + "%";
  document.getElementById("run").onclick = async () => {
    const status = document.getElementById("status");
    status.textContent = "running…";
    const r = await fetch("/api/discover");
    const body = await r.json();
    if (!r.ok) { status.textContent = body.error; return; }
    found = body;
    status.textContent = "";
    document.getElementById("summary").textContent = `${body.users.toLocaleString()} users, ${body.k} clusters (silhouette ${body.silhouettes.map(([k, s]) => k + ": " + s.toFixed(2)).join(", ")})`;
    document.getElementById("proposals").replaceChildren(...body.proposals.map((p) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td><input type="checkbox" checked></td><td></td><td>${p.size.toLocaleString()}</td><td>${p.precision.toFixed(2)}</td><td>${p.recall.toFixed(2)}</td><td>${pct(p.conversion)}</td><td>${p.aov ? "$" + p.aov.toFixed(2) : '<span class="muted">n/a</span>'}</td><td class="rule"><code></code></td>`;
      tr.querySelector("input").dataset.id = p.id;
      tr.children[1].textContent = p.name;
      tr.querySelector("code").textContent = JSON.stringify(p.condition);
      return tr;
    }));
    document.getElementById("results").hidden = false;
  };
  document.getElementById("show").onclick = () => {
    const keep = new Set([...document.querySelectorAll("#proposals input:checked")].map((i) => i.dataset.id));
    const rules = structuredClone(found.rules);
    rules.segments = rules.segments.filter((s) => !s.id.startsWith("discovered-") || keep.has(s.id) || !found.proposals.some((p) => p.id === s.id));
    const text = document.getElementById("json");
    text.value = JSON.stringify(rules, null, 2);
    text.hidden = false;
    document.getElementById("adopt-help").hidden = false;
  };
</script>
</body>
</html>
"##;
