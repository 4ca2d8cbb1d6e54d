// Side-by-side benchmark of segmint and the SDKs storefronts use today, in
// one run, the same way for each: every SDK is bundled here with esbuild,
// served from 127.0.0.1 and sends to a local receiver on another port
// (bench/peer-receiver.mjs); any request to another host is blocked (the
// host resolver knows no other host) and counted. Writes bench/RESULTS.md.
//
//   bash scripts/bench.sh            (builds segmint, installs peers, runs this)
//   node bench/run.mjs [--reps 3] [--only segmint,posthog] [--out bench/RESULTS.md]
//                      [--browser chromium|webkit] [--root <checkout>]
// (with --only the default output is bench/dist/RESULTS.partial.md;
// --browser webkit writes bench/RESULTS-webkit.md: WebKitGTK, Safari's
// engine, over WebDriver, without the figures that need Chromium's CDP)
import * as esbuild from "esbuild";
import fs from "node:fs";
import zlib from "node:zlib";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch as launchChromium } from "../e2e/harness.mjs";
import { webkit } from "../e2e/webdriver.mjs";
import { peerReceiver } from "./peer-receiver.mjs";
import { sizes } from "./size.mjs";

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(BENCH, "dist");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
// --root: segmint as another checkout built it (its pkg/), for an A/B run
// of two builds with the same harness.
const ROOT = path.resolve(arg("root", path.resolve(BENCH, "..")));
const REPS = Number(arg("reps", 3));
const ONLY = arg("only", "") ? arg("only", "").split(",") : null;
const BROWSER = arg("browser", "chromium");
if (!["chromium", "webkit"].includes(BROWSER)) throw new Error(`--browser: chromium or webkit, not ${BROWSER}`);
const WEBKIT = BROWSER === "webkit";
// A partial run (--only) must not replace the committed full results.
const RESULTS = WEBKIT ? "RESULTS-webkit" : "RESULTS";
const OUT = path.resolve(arg("out", path.join(BENCH, ONLY ? `dist/${RESULTS}.partial.md` : `${RESULTS}.md`)));

/** The configurations measured: a bundle (bench/sdks/<bundle>.js) and the
 * query string its page gets. `track: false` is evaluation only. */
const CONFIGS = [
  { name: "segmint", bundle: "segmint", label: "segmint" },
  { name: "segment", bundle: "segment", label: "Segment analytics-next (default delivery)" },
  { name: "segment-batching", bundle: "segment", query: "batching=1", label: "Segment analytics-next (batching delivery)" },
  { name: "posthog", bundle: "posthog", label: "PostHog posthog-js" },
  { name: "amplitude", bundle: "amplitude", label: "Amplitude analytics-browser" },
  { name: "rudderstack", bundle: "rudderstack", label: "RudderStack analytics-js" },
  { name: "growthbook", bundle: "growthbook", label: "GrowthBook (evaluation only)", track: false },
].filter((c) => !ONLY || ONLY.includes(c.name));

const WARMUP = 200;
const BURST = 1_000;
const CALLS = 10_000;
// WebKit's performance.now() counts whole milliseconds (Safari's timer
// precision): it times evaluation in blocks of 5,000 calls, not 1,000.
const EVAL_BLOCK = WEBKIT ? 5_000 : 1_000;
const EVAL_EVENTS = 10 * EVAL_BLOCK;
const UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36";

const versionOf = (pkg) => JSON.parse(fs.readFileSync(path.join(BENCH, "node_modules", pkg, "package.json"), "utf8")).version;
const PACKAGES = {
  segmint: JSON.parse(fs.readFileSync(path.join(ROOT, "pkg/package.json"), "utf8")).version,
  segment: versionOf("@segment/analytics-next"),
  posthog: versionOf("posthog-js"),
  amplitude: versionOf("@amplitude/analytics-browser"),
  rudderstack: versionOf("@rudderstack/analytics-js"),
  growthbook: versionOf("@growthbook/growthbook"),
};

// ---------------------------------------------------------------- bundles

/** Before any SDK runs: the page's errors, for browsers whose driver does
 * not report them, and with `?hidewebdriver`, a `navigator.webdriver` of
 * false: WebKit's WebDriver sets it, and PostHog drops every event of a
 * browser that looks automated (Chromium's runs use
 * `--disable-blink-features=AutomationControlled` instead). */
const PAGE_HEAD = `<script>
window.benchErrors = [];
addEventListener("error", (e) => benchErrors.push(String(e.message)));
addEventListener("unhandledrejection", (e) => benchErrors.push(String(e.reason && e.reason.message || e.reason)));
if (new URLSearchParams(location.search).has("hidewebdriver")) Object.defineProperty(Navigator.prototype, "webdriver", { get: () => false });
</script>`;

/** Bundles each SDK's page script (minified, code splitting on, as a
 * storefront's bundler would) and works out which files load at start
 * (the entry and its static imports) and which only when asked for. */
async function buildBundles() {
  fs.rmSync(DIST, { recursive: true, force: true });
  const bundles = {};
  for (const bundle of [...new Set(CONFIGS.map((c) => c.bundle))]) {
    const outdir = path.join(DIST, bundle);
    const result = await esbuild.build({
      entryPoints: { entry: path.join(BENCH, "sdks", `${bundle}.js`) },
      bundle: true,
      splitting: true,
      format: "esm",
      minify: true,
      platform: "browser",
      target: "es2020",
      outdir,
      metafile: true,
      absWorkingDir: BENCH,
      logLevel: "error",
      alias: { segmint: path.join(ROOT, "pkg/index.js") },
      define: { "process.env.NODE_ENV": '"production"' },
    });
    if (bundle === "segmint") {
      // (An older build, measured A/B with --root, has no engine module.)
      for (const wasm of ["segmint_wasm_bg.wasm", "segmint_engine.wasm"]) {
        if (fs.existsSync(path.join(ROOT, "pkg", wasm))) fs.copyFileSync(path.join(ROOT, "pkg", wasm), path.join(outdir, wasm));
      }
      fs.copyFileSync(path.join(BENCH, "rules20.json"), path.join(DIST, "rules20.json"));
    }
    // Metafile paths are relative to absWorkingDir (bench/).
    const rel = (p) => path.relative(DIST, path.join(BENCH, p)).split(path.sep).join("/");
    const byRel = Object.fromEntries(Object.entries(result.metafile.outputs).map(([k, v]) => [rel(k), v]));
    const entry = `${bundle}/entry.js`;
    const initial = new Set();
    const walk = (file) => {
      if (initial.has(file)) return;
      initial.add(file);
      for (const imp of byRel[file]?.imports || []) if (imp.kind === "import-statement") walk(rel(imp.path));
    };
    walk(entry);
    fs.writeFileSync(path.join(DIST, `${bundle}.html`), `<!doctype html><meta charset="utf-8"><title>${bundle}</title>${PAGE_HEAD}<script type="module" src="/${entry}"></script>\n`);
    bundles[bundle] = { initial, files: Object.keys(byRel).filter((f) => f.endsWith(".js")) };
  }
  for (const file of fs.readdirSync(DIST, { recursive: true })) {
    const full = path.join(DIST, file);
    if (!/\.(js|wasm|json|html)$/.test(file) || !fs.statSync(full).isFile()) continue;
    const data = fs.readFileSync(full);
    fs.writeFileSync(`${full}.br`, zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }));
  }
  fs.writeFileSync(path.join(DIST, "blank.html"), `<!doctype html><meta charset="utf-8"><title>blank</title>${PAGE_HEAD}<script type="module">window.bench = { ready: Promise.resolve(0) };</script>\n`);
  return bundles;
}

/** segmint's row in the results this run replaces, to show beside the
 * new figures: `{ when, header, rule, row }`, or null. */
const PREVIOUS = (() => {
  try {
    const text = fs.readFileSync(OUT, "utf8");
    const lines = text.split("\n");
    const at = lines.findIndex((l) => l.startsWith("| segmint "));
    const header = lines.findLastIndex((l, i) => i < at && l.startsWith("| SDK |"));
    if (at < 0 || header < 0) return null;
    const when = /on (\d{4}-\d{2}-\d{2})/.exec(text)?.[1] ?? "an earlier run";
    return { when, header: lines[header], rule: lines[header + 1], row: lines[at].replace("| segmint ", "| segmint, previous build ") };
  } catch {
    return null;
  }
})();

/** Files other than scripts that a page fetches after it is ready: the
 * segment engine's module (scripts/split-wasm.mjs). */
const LAZY_ASSETS = ["segmint_engine.wasm"];

function bytesOf(files) {
  const t = { raw: 0, gzip: 0, brotli: 0 };
  for (const f of files) {
    const s = sizes(path.join(DIST, f));
    t.raw += s.raw;
    t.gzip += s.gzip;
    t.brotli += s.brotli;
  }
  return t;
}

// ---------------------------------------------------------------- servers

const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
function staticServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const file = path.join(DIST, path.normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, ""));
    if (!file.startsWith(DIST) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      return res.end();
    }
    // Brotli-encoded, as a storefront's CDN serves them, where the browser
    // takes it (buildBundles writes the .br beside each file).
    const br = /\bbr\b/.test(req.headers["accept-encoding"] || "") && fs.existsSync(`${file}.br`);
    res.writeHead(200, {
      "Content-Type": MIME[path.extname(file)] || "application/octet-stream",
      "Cache-Control": "no-store",
      ...(br ? { "Content-Encoding": "br" } : {}),
    });
    fs.createReadStream(br ? `${file}.br` : file).pipe(res);
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ server, origin: `http://127.0.0.1:${server.address().port}` })));
}

// ---------------------------------------------------------------- browser

// The e2e suites' Chromium: nothing but 127.0.0.1 resolves, so phoning
// home fails and is counted.
function launch() {
  return launchChromium({
    args: [
      // PostHog drops every event from a browser that looks automated.
      "--disable-blink-features=AutomationControlled",
      "--js-flags=--expose-gc",
    ],
  });
}

/** WebKit's stand-in for launch(): MiniBrowser sessions (one per page, so
 * each starts with empty storage) whose requests to hosts other than
 * 127.0.0.1 go to a local proxy that refuses them and counts them in
 * `phoned` (the current page's map). */
async function launchWebKit() {
  const refuser = { phoned: new Map() };
  const count = (host) => refuser.phoned.set(host, (refuser.phoned.get(host) || 0) + 1);
  const proxy = http.createServer((req, res) => {
    count(new URL(req.url).host);
    res.writeHead(502);
    res.end();
  });
  proxy.on("connect", (req, socket) => {
    count(req.url.replace(/:443$/, ""));
    socket.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  const args = [`--proxy=http://127.0.0.1:${proxy.address().port}`, "--ignore-host=127.0.0.1"];
  let version = "?";
  return {
    refuser,
    version: () => version,
    async session() {
      // Some peers take minutes over 10,000 calls (Chromium's runs wait
      // as long).
      const br = await webkit({ args, scriptTimeoutMs: 600_000 });
      version = br.version;
      return br;
    },
    close: () => new Promise((r) => proxy.close(r)),
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until the receiver has counted `n` events; gives up after
 * `stallMs` without progress. Returns the count reached. */
async function delivered(rx, n, stallMs = 15_000, capMs = 180_000) {
  const start = Date.now();
  let last = rx.stats.events, lastAt = Date.now();
  while (rx.stats.events < n) {
    await sleep(25);
    if (rx.stats.events !== last) {
      last = rx.stats.events;
      lastAt = Date.now();
    }
    if (Date.now() - lastAt > stallMs || Date.now() - start > capMs) break;
  }
  return rx.stats.events;
}

// Ready, from the moment the entry script had arrived (compile and
// evaluation of the SDK included; wasm fetch and instantiation too).
async function readyAfterEntry() {
  const readyAt = await window.bench.readyAt;
  const entry = performance.getEntriesByType("resource").find((e) => e.name.includes("/entry.js"));
  return readyAt - (entry ? entry.responseEnd : 0);
}

/** What an SDK still does after ready before its figures are taken (see
 * the SDK's page). */
async function settled() {
  if (window.bench.settled) await window.bench.settled();
}

/**
 * Opens `config`'s page in a fresh context. Returns `{ evaluate(fn, arg),
 * busy(), heap(), close(), probe, readyMs }`: `busy` (main-thread seconds
 * so far) and `heap` (JS heap bytes after two collections) are null where
 * the browser has no CDP; `close` fills in `probe.loaded` and
 * `probe.errors` where the driver does not report them.
 */
async function openPage(browser, web, rx, config, extraQuery = "") {
  const probe = { phoned: new Map(), loaded: [], errors: [], crashed: false };
  const query = [`rx=${encodeURIComponent(rx.origin)}`, config.query, extraQuery, WEBKIT && "hidewebdriver"].filter(Boolean).join("&");
  const address = `${web.origin}/${config.bundle}.html?${query}`;
  if (WEBKIT) {
    browser.refuser.phoned = probe.phoned;
    const br = await browser.session();
    const evaluate = (fn, arg) => br.run(`return await (${fn})(args[0]);`, arg);
    try {
      await br.goto(address);
      await evaluate(async () => {
        const end = Date.now() + 30_000;
        while (!window.bench && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        if (!window.bench) throw new Error("no window.bench after 30 s");
      });
      const readyMs = await evaluate(readyAfterEntry);
      await evaluate(settled);
      const close = async () => {
        const seen = await evaluate(() => ({
          loaded: performance.getEntriesByType("resource").map((e) => e.name),
          errors: window.benchErrors,
        })).catch(() => ({ loaded: [], errors: [] }));
        for (const u of seen.loaded) if (u.startsWith(web.origin)) probe.loaded.push(new URL(u).pathname.slice(1));
        probe.errors.push(...seen.errors);
        await br.close();
      };
      return { evaluate, busy: null, heap: null, close, probe, readyMs };
    } catch (e) {
      await br.close();
      throw e;
    }
  }
  const context = await browser.newContext({ userAgent: UA.replace("{v}", browser.version()) });
  const page = await context.newPage();
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.protocol.startsWith("http") && u.hostname !== "127.0.0.1") probe.phoned.set(u.host, (probe.phoned.get(u.host) || 0) + 1);
  });
  page.on("response", (r) => {
    if (r.url().startsWith(web.origin) && !r.url().endsWith(".html")) probe.loaded.push(new URL(r.url()).pathname.slice(1));
  });
  page.on("pageerror", (e) => probe.errors.push(e.message));
  page.on("crash", () => (probe.crashed = true));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(address);
  await page.waitForFunction(() => window.bench, null, { timeout: 30_000 });
  const readyMs = await page.evaluate(readyAfterEntry);
  await page.evaluate(settled);
  const busy = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;
  const heap = async () => {
    await cdp.send("HeapProfiler.enable");
    for (let i = 0; i < 2; i++) await cdp.send("HeapProfiler.collectGarbage");
    return (await cdp.send("Runtime.getHeapUsage")).usedSize;
  };
  const evaluate = (fn, arg) => page.evaluate(fn, arg);
  return { evaluate, busy, heap, close: () => context.close(), probe, readyMs };
}

/** Chromium's Slow 4G, as issue 32 states it: 150 ms round trip, 1.6
 * Mbps down, 750 kbps up. */
const SLOW_4G = { offline: false, latency: 150, downloadThroughput: 1.6e6 / 8, uploadThroughput: 750e3 / 8 };

/** Ready on a slow mobile network: a fresh context (cold cache, cache
 * off), Slow 4G, files served brotli-encoded; from navigation start to
 * the SDK's ready promise. Chromium only (CDP). */
async function measureSlow4g(browser, web, rx, config) {
  const context = await browser.newContext({ userAgent: UA.replace("{v}", browser.version()) });
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    await cdp.send("Network.emulateNetworkConditions", SLOW_4G);
    const query = [`rx=${encodeURIComponent(rx.origin)}`, config.query].filter(Boolean).join("&");
    await page.goto(`${web.origin}/${config.bundle}.html?${query}`);
    await page.waitForFunction(() => window.bench, null, { timeout: 60_000 });
    return { slow4gMs: await page.evaluate(() => window.bench.readyAt) };
  } finally {
    await context.close();
  }
}

/** The tracking figures of one SDK in one fresh page. */
async function measureTracking(browser, web, rx, config) {
  rx.reset();
  const { evaluate, busy, heap, close, probe, readyMs } = await openPage(browser, web, rx, config);
  const r = { readyMs, stage: "start" };
  try {
    // Warm-up: JIT, storage and connections, delivered and forgotten.
    r.stage = "warm-up";
    await evaluate((n) => { for (let i = 0; i < n; i++) window.bench.track(i); }, WARMUP);
    await delivered(rx, WARMUP, 5_000);
    await sleep(300);
    rx.reset();

    // A 1,000-event burst in one task; main-thread time until every event
    // has reached the receiver, and what went over the wire for it.
    r.stage = "1,000-event burst";
    const busy0 = busy && (await busy());
    await evaluate((n) => { for (let i = 0; i < n; i++) window.bench.track(1e6 + i); }, BURST);
    r.burstDelivered = await delivered(rx, BURST);
    if (busy) r.mainUs = (((await busy()) - busy0) * 1e6) / BURST;
    await sleep(500);
    r.requests = rx.stats.requests;
    r.preflights = rx.stats.preflights;
    r.bodyBytes = rx.stats.bytes;
    r.burstEvents = rx.stats.events;

    // 10,000 calls, timed synchronously, in 10 tasks of 1,000.
    r.stage = "10,000 calls";
    rx.reset();
    r.trackUs = await evaluate(async (n) => {
      let total = 0;
      for (let b = 0; b < n / 1000; b++) {
        const t0 = performance.now();
        for (let i = 0; i < 1000; i++) window.bench.track(2e6 + b * 1000 + i);
        total += performance.now() - t0;
        await new Promise((res) => setTimeout(res, 0));
      }
      return (total * 1000) / n;
    }, CALLS);
    r.stage = "delivering 10,000";
    r.callsDelivered = await delivered(rx, CALLS, 20_000, 300_000);

    // Heap after 10,000 events (two collections), wasm memory added.
    r.stage = "heap";
    if (heap) r.heap = await heap();
    r.wasm = await evaluate(() => (window.bench.wasmBytes ? window.bench.wasmBytes() : 0));
    r.stage = "done";
  } catch (e) {
    r.failure = probe.crashed ? `renderer crashed during ${r.stage}` : `${r.stage}: ${e.message.split("\n")[0]}`;
  }
  await close().catch(() => {});
  r.phoned = Object.fromEntries(probe.phoned);
  r.loaded = [...new Set(probe.loaded)];
  r.errors = probe.errors.slice(0, 3);
  return r;
}

/** Heap of a page without any SDK, measured the same way. */
async function baselineHeap(browser, web, rx) {
  const { heap, close } = await openPage(browser, web, rx, { bundle: "blank" });
  const used = heap ? await heap() : undefined;
  await close();
  return used;
}

/** Time per call of each of `fns` over EVAL_EVENTS calls each after a
 * warm-up, in blocks of EVAL_BLOCK taking turns (so both see the same
 * machine): per function, the fastest block (the least disturbed on a
 * shared machine) and the mean, in µs per call. */
async function timePerCall(evaluate, fns) {
  return evaluate(
    async ([fns, n, block]) => {
      const out = fns.map(() => ({ fastest: Infinity, total: 0 }));
      for (const f of fns) for (let i = 0; i < 500; i++) window.bench[f](i);
      await new Promise((res) => setTimeout(res, 0));
      for (let b = 0; b < n / block; b++) {
        for (const [k, f] of fns.entries()) {
          const call = window.bench[f];
          const t0 = performance.now();
          for (let i = 0; i < block; i++) call(500 + b * block + i);
          const us = ((performance.now() - t0) * 1000) / block;
          out[k].total += us;
          out[k].fastest = Math.min(out[k].fastest, us);
          await new Promise((res) => setTimeout(res, 0));
        }
      }
      return out.map((o) => ({ fastest: o.fastest, mean: o.total / (n / block) }));
    },
    [fns, EVAL_EVENTS, EVAL_BLOCK],
  );
}

/** Evaluation per event with 20 segments or features. segmint (rules20
 * in force): an order (its values read, 10 traits updated, 20 segments
 * evaluated) minus the same message under a name no trait reads, in the
 * same page, taking turns. GrowthBook: setAttributes + 20 isOn. */
async function measureEvaluation(browser, web, rx, config) {
  if (config.name === "growthbook") {
    const { evaluate, close, readyMs } = await openPage(browser, web, rx, config);
    const [t] = await timePerCall(evaluate, ["evaluate"]);
    await close();
    return { readyMs, evalUs: t.fastest, evalMeanUs: t.mean };
  }
  rx.reset();
  const { evaluate, close } = await openPage(browser, web, rx, config, "rules=/rules20.json");
  const [withSegments, without] = await timePerCall(evaluate, ["order", "sameWithoutSegments"]);
  const segments = await evaluate(() => window.sm.segments().length);
  await close();
  return {
    evalUs: withSegments.fastest - without.fastest,
    evalMeanUs: withSegments.mean - without.mean,
    orderUs: withSegments.fastest,
    sameWithoutSegmentsUs: without.fastest,
    segmentsAtEnd: segments,
  };
}

// ---------------------------------------------------------------- report

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : undefined;
};
const stat = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x));
  return v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length } : undefined;
};

function fmt(s, unit, digits = 1) {
  if (!s) return "–";
  const f = (x) => (Math.abs(x) >= 1000 ? Math.round(x).toLocaleString("en-US") : x.toFixed(digits));
  return s.min === s.max ? `${f(s.median)}${unit}` : `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})`;
}

async function main() {
  console.log("bundling…");
  const bundles = await buildBundles();
  const web = await staticServer();
  const rx = peerReceiver();
  await rx.listen().then((port) => (rx.origin = `http://127.0.0.1:${port}`));
  const browser = WEBKIT ? await launchWebKit() : await launch();
  const runs = Object.fromEntries(CONFIGS.map((c) => [c.name, []]));
  const baselines = [];
  const started = Date.now();
  for (let rep = 0; rep < REPS; rep++) {
    if (!WEBKIT) baselines.push(await baselineHeap(browser, web, rx));
    for (const config of CONFIGS) {
      const t0 = Date.now();
      const run = {};
      if (config.track !== false) Object.assign(run, await measureTracking(browser, web, rx, config));
      if (config.name === "segmint" || config.name === "growthbook") Object.assign(run, await measureEvaluation(browser, web, rx, config));
      if (!WEBKIT && config.track !== false) Object.assign(run, await measureSlow4g(browser, web, rx, config));
      runs[config.name].push(run);
      console.log(`rep ${rep + 1}/${REPS} ${config.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`, JSON.stringify({ ...run, loaded: undefined }));
    }
  }
  const browserVersion = browser.version();
  await browser.close();
  await rx.close();
  web.server.close();

  const baseline = median(baselines);
  const rows = CONFIGS.map((config) => {
    const rs = runs[config.name];
    const b = bundles[config.bundle];
    // Files of the benchmark (not a favicon WebKit asks for).
    const loaded = new Set(rs.flatMap((r) => r.loaded || []).filter((f) => fs.existsSync(path.join(DIST, f))));
    const lazyAsset = (f) => LAZY_ASSETS.includes(path.basename(f));
    const initialFiles = [...b.initial, ...[...loaded].filter((f) => !f.endsWith(".js") && !lazyAsset(f))];
    const lazyFiles = [...loaded].filter((f) => (f.endsWith(".js") && !b.initial.has(f)) || lazyAsset(f));
    const perThousand = (r) => (r.burstEvents ? (1000 * r.requests) / r.burstEvents : undefined);
    return {
      config,
      version: PACKAGES[config.bundle],
      initial: bytesOf(initialFiles),
      lazy: bytesOf(lazyFiles),
      ready: stat(rs.map((r) => r.readyMs)),
      slow4g: stat(rs.map((r) => r.slow4gMs)),
      track: stat(rs.map((r) => r.trackUs)),
      main: stat(rs.map((r) => (r.burstDelivered >= BURST ? r.mainUs : undefined))),
      requests: stat(rs.map(perThousand)),
      preflights: stat(rs.map((r) => (r.burstEvents ? (1000 * r.preflights) / r.burstEvents : undefined))),
      body: stat(rs.map((r) => (r.burstEvents ? r.bodyBytes / r.burstEvents : undefined))),
      burst: rs.map((r) => r.burstDelivered),
      calls: rs.map((r) => r.callsDelivered),
      heap: stat(rs.map((r) => (r.heap ? r.heap - baseline + (r.wasm || 0) : undefined))),
      wasm: stat(rs.map((r) => r.wasm || undefined)),
      evalUs: stat(rs.map((r) => r.evalUs)),
      failures: rs.map((r) => r.failure).filter(Boolean),
      phoned: rs.flatMap((r) => Object.entries(r.phoned || {})),
      errors: [...new Set(rs.flatMap((r) => r.errors || []))],
    };
  });
  const report = render(rows, { browserVersion, baseline, minutes: (Date.now() - started) / 60_000 });
  fs.writeFileSync(OUT, report);
  fs.writeFileSync(OUT.replace(/\.md$/, ".json"), JSON.stringify({ browser: BROWSER, browserVersion, baselines, runs }, null, 1) + "\n");
  console.log(report);
}

function render(rows, { browserVersion, baseline, minutes }) {
  const seg = rows.find((r) => r.config.name === "segmint");
  const trackers = rows.filter((r) => r.config.track !== false && r.config.name !== "segmint");
  // Segmint's ratio to the best peer: below 1 means segmint is better
  // (every figure here is lower-is-better).
  const ratio = (key, pick = (r) => r[key]?.median, peers = trackers) => {
    const mine = seg && pick(seg);
    const best = peers.map(pick).filter((x) => typeof x === "number" && x > 0);
    if (typeof mine !== "number" || !best.length) return "–";
    const b = Math.min(...best);
    const peer = peers.find((p) => pick(p) === b);
    return `${(mine / b).toFixed(2)}× (${peer.config.name})`;
  };
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  const lines = [];
  lines.push(`# Benchmark results: segmint and the SDKs storefronts use today${WEBKIT ? ", in WebKit" : ""}`);
  lines.push("");
  lines.push(`Written by \`bash scripts/bench.sh\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}; ${REPS} repetitions, medians with (min–max); run took ${minutes.toFixed(1)} min.`);
  lines.push("");
  lines.push(`- Machine: ${os.cpus()[0]?.model || "unknown CPU"}, ${os.cpus().length} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB, ${os.type()} ${os.release()}; shared and noisy, so compare ratios within this run.`);
  lines.push(
    WEBKIT
      ? `- Browser: WebKitGTK ${browserVersion} (Debian's MiniBrowser: WebKit and JavaScriptCore, Safari's engine, not Safari), on a virtual X display, driven over WebDriver by WebKitWebDriver; Node ${process.version}. Main thread and heap need Chromium's CDP: not measured here (–).`
      : `- Browser: headless Chromium ${browserVersion} (Debian), driven by playwright-core; Node ${process.version}.`,
  );
  lines.push(`- Packages: ${rows.map((r) => `${r.config.bundle === "segment" && r.config.name !== "segment" ? "" : `${r.config.bundle} ${r.version}`}`).filter(Boolean).join(", ")}.`);
  lines.push("");
  lines.push("| SDK | loaded at start, brotli (gzip / raw) | lazily loaded, brotli | ready | ready on Slow 4G | track() per call | main thread per event until sent | requests per 1,000 events | body bytes per event | heap + wasm after 10,000 events | 20-segment evaluation per event |");
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const tracking = r.config.track !== false;
    lines.push(
      `| ${r.config.label} ${r.version} | ${kb(r.initial.brotli)} (${kb(r.initial.gzip)} / ${kb(r.initial.raw)}) | ${r.lazy.raw ? kb(r.lazy.brotli) : "–"} | ${fmt(r.ready, " ms")} | ${fmt(r.slow4g, " ms", 0)} | ${tracking ? fmt(r.track, " µs", 2) : "–"} | ${tracking ? fmt(r.main, " µs") : "–"} | ${tracking ? fmt(r.requests, "", 1) : "–"} | ${tracking ? fmt(r.body, " B", 0) : "–"} | ${r.heap ? fmt({ median: r.heap.median / 1024, min: r.heap.min / 1024, max: r.heap.max / 1024 }, " KB", 0) : "–"} | ${fmt(r.evalUs, " µs", 2)} |`,
    );
  }
  if (seg) {
    const growthbook = rows.filter((r) => r.config.name === "growthbook");
    lines.push(
      `| **segmint ÷ best peer** | ${ratio("initial", (r) => r.initial.brotli)} | | ${ratio("ready")} | ${ratio("slow4g")} | ${ratio("track")} | ${ratio("main")} | ${ratio("requests")} | ${ratio("body")} | ${ratio("heap")} | ${ratio("evalUs", (r) => r.evalUs?.median, growthbook)} |`,
    );
  }
  lines.push("");
  if (PREVIOUS) {
    lines.push("");
    const noSlow4g = PREVIOUS.header.includes("Slow 4G") ? "" : "; its table had no Slow 4G column";
    lines.push(`The previous build's row, from the results this run replaced (${PREVIOUS.when}${noSlow4g}):`);
    lines.push("");
    lines.push(PREVIOUS.header);
    lines.push(PREVIOUS.rule);
    lines.push(PREVIOUS.row);
  }
  lines.push("");
  lines.push("Ratios are segmint's median over the best tracking peer's median (lower is better for every figure; below 1 means segmint leads). Evaluation is compared with GrowthBook only; loaded bytes for segmint include segmentation and personalization (template slots).");
  lines.push("");
  lines.push("## Delivery and failures");
  lines.push("");
  lines.push("| SDK | 1,000-event burst: events received (per run) | 10,000 calls: events received (per run) | CORS preflights per 1,000 | requests to other hosts (blocked) | failures |");
  lines.push("|---|---|---|---|---|---|");
  for (const r of rows.filter((r) => r.config.track !== false)) {
    const phoned = {};
    for (const [h, n] of r.phoned) phoned[h] = (phoned[h] || 0) + n;
    lines.push(
      `| ${r.config.name} | ${r.burst.map((n) => n ?? "–").join(", ")} | ${r.calls.map((n) => n ?? "–").join(", ")} | ${fmt(r.preflights, "", 0)} | ${Object.keys(phoned).length ? Object.entries(phoned).map(([h, n]) => `${h} ×${n}`).join(", ") : "none"} | ${r.failures.length ? [...new Set(r.failures)].join("; ") : "none"} |`,
    );
  }
  lines.push("");
  lines.push("## How each figure is measured");
  lines.push("");
  lines.push(`- Every SDK is bundled by esbuild (minified, ES module, code splitting) from bench/sdks/<sdk>.js and served from 127.0.0.1; it sends to bench/peer-receiver.mjs on another 127.0.0.1 port, which answers 200 (Amplitude: \`{\"code\":200}\`) and serves the configuration some SDKs fetch at start. ${WEBKIT ? "WebKit sends requests for any other host to a local proxy that refuses them" : "Chromium resolves no other host"}; requests to one are counted above.`);
  lines.push(`- Autocapture, page views, session recording, surveys and remote configuration are off where the SDK allows it. PostHog's client-side rate limit (10 events/s, bursts of 100) is raised, or it drops ~90% of a burst; ${WEBKIT ? "every page reports `navigator.webdriver` as false (WebKit's WebDriver sets it)" : "Chromium runs with `--disable-blink-features=AutomationControlled` and a user agent without \"Headless\" for every SDK"}, since PostHog drops events from automated browsers.`);
  lines.push("- Loaded at start: the entry chunk, its static imports and any other asset the page fetched (segmint's wasm); lazily loaded: code-split chunks the page fetched by dynamic import. gzip -9 and brotli q11 of each file.");
  lines.push("- Ready: from the entry script's arrival (resource timing `responseEnd`) to the SDK's ready promise or `loaded` callback.");
  lines.push("- Ready on Slow 4G: Chromium's network emulation (CDP `Network.emulateNetworkConditions`: 150 ms round trip, 1.6 Mbps down, 750 kbps up), cache off, every file served brotli-encoded; from navigation start to the SDK's ready promise, one fresh page per repetition. Lazily loaded files (segmint's segment engine) come after ready and are not in it.");
  lines.push(`- track() per call: ${CALLS.toLocaleString("en-US")} calls of \`track("Product Clicked", {product_id, name, price, category, position})\` after ${WARMUP} warm-up events, in 10 tasks of 1,000, timed with performance.now()${WEBKIT ? " (whole milliseconds in WebKit: within 1 µs per call)" : ""}.`);
  if (WEBKIT) lines.push(`- Requests, preflights and body bytes: for a ${BURST.toLocaleString("en-US")}-event burst in one task, until the receiver has every event.`);
  if (!WEBKIT) lines.push(`- Main thread per event until sent: CDP \`Performance.getMetrics\` TaskDuration from just before a ${BURST.toLocaleString("en-US")}-event burst (one task) until the receiver has every event, divided by ${BURST.toLocaleString("en-US")}: serialisation, persistence, timers, compression and sending included. Requests, preflights and body bytes are for the same burst.`);
  if (!WEBKIT) lines.push(`- Heap + wasm: CDP \`Runtime.getHeapUsage\` after two \`HeapProfiler.collectGarbage\`, after the ${CALLS.toLocaleString("en-US")} calls were delivered (or gave up), minus a page without SDK (${(baseline / 1024).toFixed(0)} KB), plus segmint's wasm memory.`);
  lines.push(`- 20-segment evaluation: segmint with bench/rules20.json (20 segments over 10 traits) in force: \`orderCompleted(order)\` (the order's values read, 10 traits updated, 20 segments evaluated) minus \`track("Order Reviewed", order)\` (the same message, which no trait reads), in the same page, in turns of ${EVAL_BLOCK.toLocaleString("en-US")} calls. GrowthBook: \`setAttributes\` then \`isOn\` for 20 features whose conditions are the same 20 segments. From the fastest of 10 blocks of ${EVAL_BLOCK.toLocaleString("en-US")} calls each (the least disturbed on a shared machine; RESULTS.json also has the means).`);
  lines.push("");
  return lines.join("\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
