// The same SDK in the browsers playwright-core cannot drive here, over
// W3C WebDriver (./webdriver.mjs): Debian's Firefox ESR (Gecko) and
// WebKitGTK (WebKit, Safari's engine). The identity cookie, batching, the
// pagehide beacon, a back/forward-cache restore, a banner slot, the
// script-tag embed and frames sharing the profile: unload ordering, beacon
// budgets, page caches and localStorage differ from Chromium's.
// firefox.test.mjs and webkit.test.mjs each run it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { gbHashV2, receiver, stubSnippet, until, ROOT } from "./harness.mjs";

/**
 * Registers the suite for one browser.
 * @param {string} name the browser, as test names give it
 * @param {() => Promise<object>} launch starts it (see webdriver.mjs)
 * @param {string | false} skip why the suite is skipped, or false
 */
/** Script text that waits until the page's module has started segmint
 * (window.smReady set) and it is ready. A WebDriver navigation can
 * return before a module script has run: reading window.sm at once
 * failed now and then on a loaded machine. */
const STARTED = `
  for (const end = Date.now() + 20000; !window.smReady; ) {
    if (Date.now() > end) throw new Error("segmint did not start on " + location.href);
    await new Promise((r) => setTimeout(r, 20));
  }
  await window.smReady;`;

/** The same for the script-tag embed: the stub's queue is replaced by the
 * running client (window.segmint.ready). */
const EMBED_STARTED = `
  for (const end = Date.now() + 20000; !(window.segmint && window.segmint.ready); ) {
    if (Date.now() > end) throw new Error("the embed did not start on " + location.href);
    await new Promise((r) => setTimeout(r, 20));
  }
  await window.segmint.ready;`;

export function suite(name, launch, skip) {
  const tag = name.toLowerCase();
  let br, rx, cached, strict, lax;

  before(async () => {
    if (skip) return;
    rx = await receiver();
    // Pages the back/forward cache may keep: no `no-store`.
    cached = await receiver({ headers: { "Cache-Control": "max-age=0" } });
    // The script-tag example under a strict Content-Security-Policy, and
    // under one without 'wasm-unsafe-eval'.
    const statics = [{ prefix: "/html/", dir: path.join(ROOT, "examples/html") }];
    const policy = (wasm) =>
      `script-src 'self'${wasm}; connect-src 'self'; require-trusted-types-for 'script'; trusted-types 'none'; report-uri /__csp`;
    strict = await receiver({ statics, headers: { "Content-Security-Policy": policy(" 'wasm-unsafe-eval'") } });
    lax = await receiver({ statics, headers: { "Content-Security-Policy": policy("") } });
    br = await launch();
    console.log(`${name} ${br.version}`);
  });
  const timings = [];
  after(async () => {
    if (timings.length) console.log(`\n${name}: slot rendered, ms after navigation start:\n` + timings.map((t) => `  ${t.case.padEnd(40)} ${t.ms.toFixed(1)}`).join("\n"));
    await br?.close();
    await rx?.close();
    await cached?.close();
    await strict?.close();
    await lax?.close();
  });

  const url = (server, options, page = "auto.html", extra = "") =>
    `${server.origin}/${page}?o=${encodeURIComponent(JSON.stringify({ endpoint: server.origin, ...options }))}${extra}`;
  const runOf = (server, run) => server.state.messages.filter((m) => m.properties && m.properties.run === run);
  const distinct = (server, run) => new Set(runOf(server, run).map((m) => m.properties.n)).size;
  /** Starts segmint on `address`; returns the anonymous id. */
  async function open(address) {
    await br.goto(address);
    return br.run(`${STARTED} return window.sm.anonymousId();`);
  }

  test(`${name}: the anonymous-id cookie, mirrored in localStorage; events go in one batch`, { skip }, async () => {
    rx.reset();
    const id = await open(url(rx, { flushIntervalMs: 60_000 }));
    const stored = await br.run(`
      window.trackMany("${tag}-batch", 0, 30);
      const flushed = await window.sm.flush();
      return { cookie: document.cookie, mirror: localStorage.getItem("sgm_aid"), flushed };`);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(stored.cookie.split("; ").includes(`sgm_aid=${id}`), stored.cookie);
    assert.match(stored.mirror, new RegExp(id));
    assert.deepEqual(stored.flushed, { sent: 30, pending: 0 });
    assert.equal(distinct(rx, `${tag}-batch`), 30);
    assert.equal(rx.state.batches.length, 1, "one request for the 30 events");
  });

  test(`${name}: navigation right after track(): the pagehide beacon carries the events`, { skip }, async () => {
    rx.reset();
    await open(url(rx, { flushIntervalMs: 60_000 }));
    // Queue, then leave in the same task: no timer fires before the page goes.
    await br.run(`window.trackMany("${tag}-leave", 0, 40); location.href = args[0];`, `${rx.origin}/blank.html`).catch(() => {});
    await until(() => distinct(rx, `${tag}-leave`) === 40, 10_000, "40 events by beacon");
  });

  test(`${name}: leave with more than the unload budget queued, come back from the back/forward cache, keep tracking: none lost`, { skip }, async () => {
    cached.reset();
    const hold = { flushIntervalMs: 60_000, maxEvents: 1000, maxBytes: 512_000 };
    await open(url(cached, hold));
    await br.run(`window.trackMany("${tag}-bfcache", 0, 150, { pad: "x".repeat(900) });`);
    // About 150 KB queued: the beacons carry what fits, the rest stays
    // stored for the next page view (here the next page, then the restored
    // one). Firefox may keep a page out of its cache on a busy machine (seen
    // once in about 30 runs): it then loads afresh, which adopts the queue
    // too, and the round trip is tried again, up to three times.
    let restored = false;
    for (let attempt = 0; attempt < 3 && !restored; attempt++) {
      await br.run(`${STARTED} window.addEventListener("pageshow", (e) => (window.restored = e.persisted));`);
      await open(url(cached, { flushIntervalMs: 100 }, "auto.html", `&next=${attempt + 1}`));
      await br.back();
      restored = await until(async () => (await br.run("return window.restored === true;")), 5_000, "the restore").then(
        () => true,
        () => false,
      );
    }
    assert.ok(restored, "restored from the back/forward cache");
    const flushed = await br.run(`window.trackMany("${tag}-bfcache", 150, 170); return window.sm.flush();`);
    assert.equal(flushed.pending, 0);
    await until(() => distinct(cached, `${tag}-bfcache`) === 170, 20_000, "all 170 events");
    const ids = new Map();
    for (const m of runOf(cached, `${tag}-bfcache`)) ids.set(m.properties.n, (ids.get(m.properties.n) || new Set()).add(m.messageId));
    assert.ok([...ids.values()].every((s) => s.size === 1), "a resent event keeps its messageId");
    assert.deepEqual(await br.run("return window.smErrors;"), []);
  });

  test(`${name}: a banner slot shows the user's segment's template`, { skip }, async () => {
    const rules = {
      version: `${tag}-1`,
      traits: { days_since_first_seen: { builtin: "days_since_first_seen" } },
      segments: [{ id: "new-user", priority: 10, condition: { days_since_first_seen: { $lte: 7 } } }],
    };
    await open(url(rx, { rules }, "slots.html"));
    const hero = await br.run(`
      const slot = document.querySelector("#hero");
      return { banners: [...slot.querySelectorAll("[data-banner]")].map((e) => e.dataset.banner), variation: slot.dataset.segmintVariation };`);
    assert.deepEqual(hero, { banners: ["new-user"], variation: "personalized" });
  });

  test(`${name}: the script-tag embed checks its wasm's hash, then replays the stub's queue in order`, { skip }, async () => {
    rx.reset();
    const integrity = JSON.parse(fs.readFileSync(path.join(ROOT, "pkg/integrity.json"), "utf8"))["embed.js"];
    await br.goto(`${rx.origin}/blank.html`);
    const ready = await br.run(
      `const [stub, integrity] = args;
       const inline = document.createElement("script");
       inline.textContent = stub;
       document.head.append(inline);
       window.segmint.track("Queued", { n: 1 });
       window.segmint.track("Queued", { n: 2 });
       await new Promise((resolve, reject) => {
         const script = document.createElement("script");
         Object.assign(script, { src: "/pkg/embed.js", integrity, crossOrigin: "anonymous", onload: resolve, onerror: reject });
         script.dataset.endpoint = "/";
         document.head.append(script);
       });
       await window.segmint.ready;
       await window.segmint.flush();
       return "ready";`,
      stubSnippet(),
      integrity,
    );
    assert.equal(ready, "ready");
    const queued = new Map(rx.state.messages.filter((m) => m.event === "Queued").map((m) => [m.messageId, m.properties.n]));
    assert.deepEqual([...queued.values()], [1, 2], "once each, in order");
  });

  test(`${name}: frames of the shop recording at once keep every frame's events in the shared profile`, { skip }, async () => {
    // Same-origin frames share localStorage and hear each other's writes by
    // `storage` events, as tabs do: each writes its copy in the same task.
    const rules = { version: "views.1", traits: { views: { event: "Product Viewed", aggregate: "count", window_days: 30 } }, segments: [] };
    const address = url(rx, { rules });
    await br.goto(address);
    const { views } = await br.run(`
      ${STARTED}
      const frames = await Promise.all(Array.from({ length: 5 }, () => new Promise((resolve) => {
        const f = document.createElement("iframe");
        f.src = args[0];
        f.onload = () => resolve(f.contentWindow);
        document.body.append(f);
      })));
      for (const w of frames) {
        while (!w.smReady) await new Promise((r) => setTimeout(r, 20));
        await w.smReady;
      }
      const all = [window, ...frames];
      for (const w of all) for (let i = 0; i < 5; i++) w.sm.track("Product Viewed", { i });
      const end = Date.now() + 5000;
      let views;
      do {
        await new Promise((r) => setTimeout(r, 50));
        views = all.map((w) => w.sm.traits().views);
      } while (!views.every((v) => v === 30) && Date.now() < end);
      return { views };`, address);
    assert.deepEqual(views, [30, 30, 30, 30, 30, 30], "every frame counts all 30 views");
  });

  test(`${name}: under a strict CSP (script-src 'self' 'wasm-unsafe-eval', Trusted Types) the embed runs and renders its banner; without 'wasm-unsafe-eval', load_failed names the policy`, { skip }, async () => {
    const visit = async (server) => {
      await br.goto(`${server.origin}/html/strict.html`);
      return br.run(`
        const error = await window.segmint.ready.then(() => null, (e) => e.code + ": " + e.message);
        // The slot is decided once the segment engine is there.
        await window.segmint.segmentsReady.catch(() => {});
        await window.segmint.flush().catch(() => {});
        return { error, hero: document.querySelector("[data-segmint-slot=hero]").textContent.trim() };`);
    };
    const blocked = await visit(lax);
    assert.equal(blocked.hero, "Welcome to the shop", "the slot shows its default");
    assert.match(blocked.error, /^load_failed: segmint could not start \(the page's Content-Security-Policy does not allow WebAssembly: add 'wasm-unsafe-eval' to its script-src\)/);
    assert.equal(lax.state.messages.length, 0);

    const page = await visit(strict);
    assert.deepEqual(page, { error: null, hero: "Welcome to the shop" });
    await until(() => strict.state.messages.some((m) => m.properties?.bundler === "embed-csp"), 5_000, "the event under CSP");
    // Reported violations (WebKit reports a refused eval, not refused
    // WebAssembly; Firefox and Chromium both).
    assert.deepEqual(strict.state.cspReports, [], "no violation");
  });

  test(`${name}: the collector answering 500, 503 with Retry-After, 429, 413 and 400; then dropping connections (offline), then back: none lost, none twice`, { skip }, async () => {
    rx.reset();
    await open(url(rx, { flushIntervalMs: 50, maxEvents: 20, retry: { baseMs: 100, capMs: 1000 } }));
    // What the page sends as it opens (a queue an earlier page left, its
    // page view) is delivered first, so the faults meet this test's batches.
    await br.run("await window.sm.flush();");
    rx.state.batches = [];
    rx.state.faults = [500, 503, 429, 413, 413, 500];
    rx.state.retryAfter = "1";
    await br.run(`window.trackMany("${tag}-faults", 0, 60);`);
    await until(() => distinct(rx, `${tag}-faults`) === 60, 30_000, "60 events through the faults");
    assert.equal(runOf(rx, `${tag}-faults`).length, 60, "a failed answer stores nothing");
    const batches = rx.state.batches;
    assert.deepEqual(batches.slice(0, 6).map((b) => b.status), [500, 503, 429, 413, 413, 500]);
    // Retry-After (exposed by CORS) is read: the retry after the 503
    // waits a second, where the backoff alone would wait at most 200 ms.
    assert.ok(batches[2].at - batches[1].at >= 950, `retried ${batches[2].at - batches[1].at} ms after a 503 with Retry-After: 1`);
    assert.equal(batches[4].ids.length, Math.floor(batches[3].ids.length / 2), "413 halves the batch");

    rx.state.faults = [400];
    const rejected = await br.run(`
      window.trackMany("${tag}-rejected", 0, 3);
      while (!window.smErrors.some((e) => e.code === "batch_rejected")) await new Promise((r) => setTimeout(r, 20));
      return window.smErrors.find((e) => e.code === "batch_rejected").status;`);
    assert.equal(rejected, 400);

    rx.state.offline = true;
    const stored = await br.run(`
      window.trackMany("${tag}-offline", 0, 40);
      await new Promise((r) => setTimeout(r, 1500));
      return Object.keys(localStorage).filter((k) => k.startsWith("sgm_q.")).length;`);
    assert.equal(distinct(rx, `${tag}-offline`), 0, "nothing arrives while connections drop");
    assert.ok(stored > 0, "the queue is in storage");
    rx.state.offline = false;
    await until(() => distinct(rx, `${tag}-offline`) === 40, 20_000, "40 events once back");
    assert.equal(runOf(rx, `${tag}-offline`).length, 40);
  });

  test(`${name}: pages left one after another while the collector fails: what their beacons carry goes again from the next page`, { skip }, async () => {
    rx.reset();
    const options = { flushIntervalMs: 100, retry: { baseMs: 60_000, capMs: 60_000 } };
    await open(url(rx, options));
    rx.state.faults = Array(1000).fill(500); // every batch, beacons included
    await br.run(`window.trackMany("${tag}-outage", 0, 10);`);
    await until(() => rx.state.batches.some((b) => b.status === 500), 5_000, "a failed batch");
    for (const [from, step] of [[10, 2], [20, 3]]) {
      await br.run(`window.trackMany("${tag}-outage", ${from}, ${from + 10});`);
      await open(url(rx, options, "auto.html", `&step=${step}`));
    }
    rx.state.faults = [];
    await br.run("await window.sm.flush();");
    await until(() => distinct(rx, `${tag}-outage`) === 30, 20_000, "30 events once the collector is back");
    const failed = rx.state.batches.filter((b) => b.status === 500).flatMap((b) => b.ids).length;
    assert.ok(failed >= 30, `the beacons went too: ${failed} events in failed batches`);
    assert.deepEqual(await br.run("return window.smErrors;"), []);
  });

  test(`${name}: the collector starts failing as the shopper moves between pages: each batch answered 500 as its page goes is sent again from the next one`, { skip }, async () => {
    // The script-tag embed with default options. Every batch waits
    // 800 ms at the collector, then gets 500 with Retry-After: 1: the
    // pages are gone before they hear it. Before, all 100 were lost.
    rx.reset();
    const run = `${tag}-moving`;
    const other = await receiver();
    try {
      Object.assign(rx.state, { faults: Array(50).fill(500), retryAfter: "1", delayMs: 800 });
      // Page A: 30 events; the shopper reloads while their batch is under way.
      await br.goto(`${rx.origin}/embed.html`);
      await br.run(`window.trackMany("${run}", 0, 30);`);
      await until(() => rx.state.requests >= 1, 10_000, "page A's batch");
      await br.goto(`${rx.origin}/embed.html?b`);
      // Page B: 70 more; connections drop for 1.5 s; then its batch goes
      // and the shopper leaves the shop at once.
      await br.run(`${EMBED_STARTED} window.trackMany("${run}", 30, 100);`);
      rx.state.offline = true;
      await new Promise((r) => setTimeout(r, 1500));
      rx.state.offline = false;
      const failed = () => rx.state.batches.filter((b) => b.status === 500).length;
      const before = failed();
      const sent = rx.state.requests;
      await until(() => rx.state.requests > sent && failed() === before, 10_000, "page B's batch under way");
      await br.goto(`${other.origin}/blank.html`);
      await until(() => failed() > before, 10_000, "page B's batch answered 500");
      assert.equal(distinct(rx, run), 0, "nothing stored yet");
      // Back in the shop (page C), the collector answering again.
      Object.assign(rx.state, { faults: [], delayMs: 0 });
      await br.goto(`${rx.origin}/embed.html?c`);
      await br.run(EMBED_STARTED);
      await until(() => distinct(rx, run) === 100, 20_000, "all 100 events");
      const ids = new Map();
      for (const m of runOf(rx, run)) ids.set(m.properties.n, (ids.get(m.properties.n) || new Set()).add(m.messageId));
      assert.ok([...ids.values()].every((s) => s.size === 1), "a resent event keeps its messageId");
    } finally {
      Object.assign(rx.state, { faults: [], delayMs: 0, offline: false });
      await other.close();
    }
  });

  // --- the first page view -------------------------------------------

  const FIRST_VISIT = {
    version: `${tag}-first-visit`,
    traits: {
      days_since_first_seen: { builtin: "days_since_first_seen" },
      views_today: { event: "Page Viewed", aggregate: "count", window_days: 1 },
    },
    segments: [
      { id: "summer", priority: 50, condition: { "context.campaign.name": "summer", views_today: { $gte: 1 } } },
      { id: "new-user", priority: 10, condition: { days_since_first_seen: { $lte: 7 } } },
    ],
  };
  /** A new visitor: nothing of segmint's on the receiver's origin. */
  async function forget() {
    await br.goto(`${rx.origin}/blank.html`);
    await br.deleteCookies();
    await br.run("localStorage.clear(); sessionStorage.clear();");
  }
  /** The script-tag page with a slot (see e2e/pages/embed-slots.html). */
  const slotsPage = (extra = "", options = {}) =>
    `${rx.origin}/embed-slots.html?${extra}o=${encodeURIComponent(JSON.stringify({ rulesUrl: "/v1/rules", flushIntervalMs: 100, antiFlickerTimeoutMs: 5000, ...options }))}`;
  /** The banners the slot showed once one has, with when it rendered. */
  const banners = () =>
    br.run(`
      for (const end = Date.now() + 10000; !window.slotLog.length; ) {
        if (Date.now() > end) throw new Error("no banner");
        await new Promise((r) => setTimeout(r, 20));
      }
      ${EMBED_STARTED}
      await window.segmint.flush();
      return { banners: window.slotLog.map((l) => l.banner), ms: performance.getEntriesByName("segmint:slot:hero")[0].startTime };`);
  const viewed = (marker) =>
    [...new Map(rx.state.messages.filter((m) => m.event === "Promotion Viewed" && m.context.page.url.includes(marker)).map((m) => [m.messageId, m])).values()];

  test(`${name}: a first visit shows its segment's banner once the rules arrive (after 0 and 150 ms), one Promotion Viewed; after 600 ms the default at the timeout, once`, { skip }, async () => {
    for (const delay of [0, 150, 600]) {
      rx.reset();
      Object.assign(rx.state, { rules: FIRST_VISIT, rulesDelayMs: delay });
      await forget();
      const marker = `first=${delay}&`;
      await br.goto(slotsPage(marker, delay === 600 ? { antiFlickerTimeoutMs: 400 } : {}));
      const got = await banners();
      const expected = delay === 600 ? "default" : "new-user";
      assert.deepEqual(got.banners, [expected], `rules after ${delay} ms`);
      if (delay < 600) timings.push({ case: `first visit, rules after ${delay} ms`, ms: got.ms });
      assert.equal(rx.state.rulesRequests, 1);
      await until(() => viewed(marker).length > 0, 5_000, "the exposure");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(viewed(marker).map((m) => m.properties.creative), [expected], "one Promotion Viewed");
    }
  });

  test(`${name}: a first visit whose landing URL puts it in a campaign segment shows that banner`, { skip }, async () => {
    rx.reset();
    Object.assign(rx.state, { rules: FIRST_VISIT, rulesDelayMs: 50 });
    await forget();
    await br.goto(slotsPage("utm_campaign=summer&"));
    assert.deepEqual((await banners()).banners, ["summer"]);
    assert.equal(await br.run("return window.pwned === undefined;"), true, "the template's script never ran");
  });

  test(`${name}: a returning visitor's cached banner is in the first paint: the stub shows it as the page is parsed`, { skip }, async () => {
    rx.reset();
    Object.assign(rx.state, { rules: FIRST_VISIT });
    await forget();
    await br.goto(slotsPage("visit=first&"));
    assert.deepEqual((await banners()).banners, ["new-user"]);
    for (let i = 0; i < 3; i++) {
      await br.goto(slotsPage(`visit=${i}&`));
      const page = await br.run(`return {
        log: window.slotLog, parsedAt: window.templateParsedAt, frames: window.frameLog,
        paint: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
        cached: document.querySelector("#hero").dataset.segmintCached ?? null,
      };`);
      assert.deepEqual(page.log.map((l) => l.banner), ["new-user"]);
      assert.equal(page.cached, "new-user", "shown by the stub");
      const between = page.frames.filter((t) => t > page.parsedAt && t < page.log[0].at);
      assert.deepEqual(between, [], `frames between the template (${page.parsedAt} ms) and its banner (${page.log[0].at} ms)`);
      if (page.paint !== null) assert.ok(page.log[0].at <= page.paint || page.paint < page.parsedAt, `banner ${page.log[0].at} ms, paint ${page.paint} ms`);
      const got = await banners();
      assert.deepEqual(got.banners, ["new-user"], "the embed takes the slot as it is");
      timings.push({ case: "returning visitor (stub, first paint)", ms: got.ms });
      await until(() => viewed(`visit=${i}&`).length > 0, 5_000, "the exposure");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(viewed(`visit=${i}&`).length, 1, "one Promotion Viewed");
    }
  });

  test(`${name}: the demo storefront shows a New User the welcome banner on the first page view`, { skip }, async () => {
    rx.reset();
    Object.assign(rx.state, { rules: JSON.parse(fs.readFileSync(path.join(ROOT, "rules.json"), "utf8")) });
    await forget();
    await br.goto(`${rx.origin}/www/index.html`);
    const hero = await br.run(`
      ${EMBED_STARTED}
      for (const end = Date.now() + 10000; !document.querySelector(".hero").dataset.segmintVariation; ) {
        if (Date.now() > end) throw new Error("no decision");
        await new Promise((r) => setTimeout(r, 20));
      }
      await window.segmint.flush();
      const hero = document.querySelector(".hero");
      return { variation: hero.dataset.segmintVariation, welcome: !!hero.querySelector(".banner.welcome"), id: window.segmint.anonymousId() };`);
    const held = gbHashV2("new-user", hero.id) < 0.1;
    assert.deepEqual({ variation: hero.variation, welcome: hero.welcome }, { variation: held ? "holdout" : "personalized", welcome: !held }, `id ${hero.id}`);
    await until(() => viewed("/www/").length > 0, 5_000, "the exposure");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(viewed("/www/").length, 1, "one exposure: no default first");
  });

  test(`${name}: an endpoint that redirects (301): endpoint_redirected once, the events kept and sent once it stops; a 307 is delivered`, { skip }, async () => {
    rx.reset();
    Object.assign(rx.state, { redirect: "/moved/v1/batch" });
    try {
      await open(url(rx, { flushIntervalMs: 100, retry: { baseMs: 100, capMs: 300 } }));
      await br.run(`window.trackMany("${tag}-redirect", 0, 10);`);
      await until(() => rx.state.batches.filter((b) => b.status === 301).length >= 3, 10_000, "three redirected tries");
      const errors = await br.run("return window.smErrors.map((e) => [e.code, e.status]);");
      assert.deepEqual(errors, [["endpoint_redirected", 404]]);
      assert.equal(distinct(rx, `${tag}-redirect`), 0);
      Object.assign(rx.state, { redirect: "/v1/batch?via=307", redirectStatus: 307 });
      await until(() => distinct(rx, `${tag}-redirect`) === 10, 10_000, "10 events through a 307");
      assert.equal(runOf(rx, `${tag}-redirect`).length, 10);
    } finally {
      Object.assign(rx.state, { redirect: null, redirectStatus: 301 });
    }
  });

  test(`${name}: two tabs tracking at once, one reloaded with a batch in flight: none lost, a resent event keeps its messageId`, { skip }, async () => {
    rx.reset();
    const address = url(rx, { flushIntervalMs: 200, maxEvents: 25 });
    await open(address);
    const first = await br.window();
    // A window rather than a tab: a background tab's timers are slowed.
    const second = await br.newWindow();
    await br.switchTo(second);
    await open(address);
    // Each tab records 100 events, 5 every 10 ms, from its own timers.
    const start = (from) => `
      let n = ${from};
      const timer = setInterval(() => {
        window.trackMany("${tag}-tabs", n, n + 5);
        n += 5;
        if (n >= ${from + 100}) clearInterval(timer);
      }, 10);`;
    await br.run(start(1000));
    await br.switchTo(first);
    rx.state.delayMs = 1000; // answers come late: batches are in flight at the reload
    await br.run(start(0));
    await until(() => rx.state.requests >= 2, 5_000, "batches in flight");
    await open(address);
    rx.state.delayMs = 0;
    await br.run(`window.trackMany("${tag}-tabs", 2000, 2010);`);
    const got = () => runOf(rx, `${tag}-tabs`);
    const count = (from, to) => new Set(got().map((m) => m.properties.n).filter((n) => n >= from && n < to)).size;
    await until(() => count(1000, 2000) === 100 && count(2000, 2010) === 10, 20_000, "the events of both tabs");
    await new Promise((r) => setTimeout(r, 1500));
    // The first tab's timers stopped with the reload: what it recorded
    // before arrives, with no gap.
    const fromFirst = [...new Set(got().map((m) => m.properties.n).filter((n) => n < 1000))].sort((a, b) => a - b);
    assert.ok(fromFirst.length > 0);
    assert.deepEqual(fromFirst, Array.from({ length: fromFirst.at(-1) + 1 }, (_, i) => i));
    const ids = new Map();
    for (const m of got()) ids.set(m.properties.n, (ids.get(m.properties.n) || new Set()).add(m.messageId));
    assert.ok([...ids.values()].every((s) => s.size === 1), "a resent event keeps its messageId");
    await br.closeWindow(second);
    await br.switchTo(first);
  });
}
