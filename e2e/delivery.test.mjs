// The delivery contract in real Chromium against a local receiver that
// records message ids: each scenario checks that every tracked event
// arrived at least once, and counts duplicates (reported, not failed:
// at-least-once delivery may resend what the network may have taken).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { launch, receiver, until, ROOT } from "./harness.mjs";

let browser, rx;
const report = [];

before(async () => {
  rx = await receiver();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await rx?.close();
  const lines = report.map((r) => `${r.scenario.padEnd(34)} tracked ${String(r.tracked).padStart(4)}  lost ${r.lost}  duplicates ${r.duplicates}`);
  console.log("\ndelivery scenarios:\n" + lines.join("\n"));
  fs.mkdirSync(path.join(ROOT, "target"), { recursive: true });
  fs.writeFileSync(path.join(ROOT, "target/delivery-report.json"), JSON.stringify(report, null, 2));
});

function url(options, page = "auto.html", server = rx) {
  return `${server.origin}/${page}?o=${encodeURIComponent(JSON.stringify({ endpoint: server.origin, ...options }))}`;
}

async function open(context, options) {
  const page = await context.newPage();
  await page.goto(url(options));
  await page.evaluate(() => window.smReady);
  return page;
}

/** Received events of `run`, keyed by n: [{n, messageId}] */
function receivedOf(run, server = rx) {
  return server.state.messages.filter((m) => m.properties && m.properties.run === run);
}

function tallyRun(scenario, run, count, server = rx) {
  const got = receivedOf(run, server);
  const byN = new Map();
  for (const m of got) {
    if (!byN.has(m.properties.n)) byN.set(m.properties.n, []);
    byN.get(m.properties.n).push(m.messageId);
  }
  for (const [n, ids] of byN) assert.equal(new Set(ids).size, 1, `event ${n} was resent under a new message id`);
  const lost = [];
  for (let n = 0; n < count; n++) if (!byN.has(n)) lost.push(n);
  const duplicates = got.length - byN.size;
  const row = { scenario, tracked: count, received: got.length, lost: lost.length, duplicates };
  report.push(row);
  return { ...row, lostList: lost };
}

/** Why each batch request of `page` failed (net::ERR_ABORTED when the SDK
 * aborted it), as they fail. */
function abortedBatches(page) {
  const failed = [];
  page.on("requestfailed", (r) => r.url().includes("/v1/batch") && failed.push(r.failure()?.errorText));
  return failed;
}

async function allArrived(run, count, ms = 20_000, server = rx) {
  await until(() => new Set(receivedOf(run, server).map((m) => m.properties.n)).size >= count, ms, `${count} events of ${run}`);
}

test("reload mid-batch", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 50 });
  rx.state.delayMs = 1500; // the first batch is still in flight at the reload
  await page.evaluate(() => window.trackMany("reload", 0, 60));
  await until(() => rx.state.requests >= 1, 5000, "a batch in flight");
  await page.reload();
  rx.state.delayMs = 0;
  await page.evaluate(() => window.smReady);
  await page.evaluate(() => window.trackMany("reload", 60, 80));
  await allArrived("reload", 80);
  const r = tallyRun("reload mid-batch", "reload", 80);
  assert.equal(r.lost, 0, `lost ${r.lostList}`);
  await context.close();
});

/** Options under which nothing is due before the page goes: no timer,
 * no full batch. */
const HOLD = { flushIntervalMs: 60_000, maxEvents: 1000, maxBytes: 512_000 };

/** Queues events 0-149 of `run`, about 1 KB each: more than the 64 KB
 * keepalive budget. */
const trackOverBudget = (page, run) => page.evaluate((run) => window.trackMany(run, 0, 150, { pad: "x".repeat(900) }), run);

/** Closes a tab holding 150 events of about 1 KB, more than the 64 KB
 * keepalive budget, and checks that the next visit sends what the close
 * left. `check(page)` runs on the tab before it closes. */
async function closeOverBudget(context, run, scenario, { check = async () => {}, within } = {}) {
  const page = await open(context, HOLD);
  await check(page);
  await trackOverBudget(page, run);
  await page.close({ runBeforeUnload: true });
  await until(() => receivedOf(run).length > 0, 10_000, "the beacon");
  const first = new Set(receivedOf(run).map((m) => m.properties.n)).size;
  assert.ok(first > 0 && first < 150, `the budget carried ${first}`);
  // The next visit to the site sends what was left.
  const next = await open(context, { flushIntervalMs: 100 });
  await allArrived(run, 150, within);
  const r = tallyRun(scenario, run, 150);
  assert.equal(r.lost, 0);
  await next.close();
}

test("a queue a closed tab left is adopted where Web Locks refuse", async () => {
  rx.reset();
  const context = await browser.newContext();
  // As in a sandboxed frame: navigator.locks exists but request() throws.
  await context.addInitScript(() => {
    if (navigator.locks) {
      navigator.locks.request = () => {
        throw new DOMException("refused", "SecurityError");
      };
    }
  });
  await closeOverBudget(context, "locks", "closed tab where Web Locks refuse", {
    check: async (page) => assert.ok(await page.evaluate(() => !!navigator.locks), "the browser has Web Locks"),
    within: 10_000,
  });
  await context.close();
});

test("a tab still open takes the queue a closed tab released at once, not at its next heartbeat", async () => {
  rx.reset();
  const context = await browser.newContext();
  // The open tab retries within a second; the closing one would wait a
  // minute, so only the open tab can send what the closed one left.
  const stay = await open(context, { flushIntervalMs: 100, retry: { baseMs: 200, capMs: 400 } });
  const leave = await open(context, { flushIntervalMs: 100, retry: { baseMs: 60_000, capMs: 60_000 } });
  await Promise.all([stay, leave].map((page) => page.evaluate(() => window.sm.flush())));
  rx.state.faults = Array(1000).fill(500);
  await leave.evaluate(() => window.trackMany("released", 0, 10));
  const failed = () => rx.state.batches.filter((b) => b.status === 500 && b.ids.length > 0).length;
  await until(() => failed() >= 1, 5000, "the closing tab's failed batch");
  await leave.close({ runBeforeUnload: true });
  // Its page-hide beacon fails too; then nothing but the open tab is left
  // to send the events.
  await until(() => failed() >= 2, 5000, "the closing tab's beacon");
  rx.state.faults = [];
  // The open tab's heartbeat comes every 30 s: arriving within 8 s means
  // the release itself (a storage event) made the open tab adopt.
  await allArrived("released", 10, 8000);
  const r = tallyRun("a released queue, taken by the open tab", "released", 10);
  assert.equal(r.lost, 0);
  await context.close();
});

test("back/forward cache: leave over the unload budget, come back, keep tracking", async () => {
  // Pages the back/forward cache may keep: a browser with it on, a server
  // that does not forbid storing its pages.
  const cached = await receiver({ headers: { "Cache-Control": "max-age=0" } });
  const bfBrowser = await launch({ bfcache: true });
  try {
    const context = await bfBrowser.newContext();
    const page = await context.newPage();
    await page.goto(url(HOLD, "auto.html", cached));
    await page.evaluate(() => {
      window.addEventListener("pageshow", (e) => (window.restored = e.persisted));
      return window.smReady;
    });
    // More than the keepalive budget is queued when the page is left.
    await trackOverBudget(page, "bfcache");
    await page.goto(url({ flushIntervalMs: 100 }, "auto.html", cached) + "&next=1");
    await page.evaluate(() => window.smReady);
    await page.goBack({ waitUntil: "commit" });
    await page.waitForFunction(() => window.restored !== undefined);
    assert.equal(await page.evaluate(() => window.restored), true, "restored from the back/forward cache");
    // The restored page view goes on: its events, and what the first
    // visit left, all arrive.
    await page.evaluate(() => window.trackMany("bfcache", 150, 170));
    await page.evaluate(() => window.sm.flush());
    await allArrived("bfcache", 170, 20_000, cached);
    const r = tallyRun("back/forward cache", "bfcache", 170, cached);
    assert.equal(r.lost, 0, `lost ${r.lostList}`);
    assert.deepEqual(await page.evaluate(() => window.smErrors), []);
    await context.close();
  } finally {
    await bfBrowser.close();
    await cached.close();
  }
});

test("navigation right after track()", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 60_000 });
  // Queue, then leave in the same task: the page never sees a timer fire.
  const next = url({ flushIntervalMs: 60_000 }) + "&next=1";
  await page
    .evaluate((next) => {
      window.trackMany("navigate", 0, 40);
      location.href = next;
    }, next)
    .catch(() => {}); // the navigation may tear the evaluation down
  await page.waitForURL(/next=1/);
  await page.waitForFunction(() => window.smReady);
  await page.evaluate(() => window.smReady);
  await page.evaluate(() => window.sm.flush());
  await allArrived("navigate", 40);
  const r = tallyRun("navigation right after track()", "navigate", 40);
  assert.equal(r.lost, 0, `lost ${r.lostList}`);
  await context.close();
});

test("browsing on through a collector outage: what the page-hide beacons carry goes again from the next page", async () => {
  rx.reset();
  const context = await browser.newContext();
  const options = { flushIntervalMs: 100, retry: { baseMs: 60_000, capMs: 60_000 } };
  const page = await open(context, options);
  rx.state.faults = Array(1000).fill(500); // every batch, beacons included
  await page.evaluate(() => window.trackMany("outage", 0, 10));
  await until(() => rx.state.batches.some((b) => b.status === 500), 5000, "a failed batch");
  // Two more page views, each left while the collector still fails.
  for (const [from, step] of [[10, 2], [20, 3]]) {
    await page.evaluate((from) => window.trackMany("outage", from, from + 10), from);
    await page.goto(url(options) + `&step=${step}`);
    await page.evaluate(() => window.smReady);
  }
  const beaconed = rx.state.batches.filter((b) => b.status === 500).flatMap((b) => b.ids).length;
  assert.ok(beaconed >= 30, `the beacons went (the collector may have been back): ${beaconed} events in failed batches`);
  rx.state.faults = [];
  await page.evaluate(() => window.sm.flush());
  await allArrived("outage", 30);
  const r = tallyRun("browsing on through an outage", "outage", 30);
  assert.equal(r.lost, 0, `lost ${r.lostList}`);
  assert.deepEqual(await page.evaluate(() => window.smErrors), []);
  await context.close();
});

test("a click on a link sends what is queued at once: its answer arrives before the next page, nothing goes twice", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 60_000 });
  // The next page takes a second to arrive, as over a mobile network.
  await context.route("**/blank.html", async (route) => {
    await new Promise((r) => setTimeout(r, 1000));
    await route.continue();
  });
  // The shop records the click in its own handler, as shops do.
  await page.evaluate((href) => {
    const a = Object.assign(document.createElement("a"), { href, textContent: "Trail runners" });
    a.addEventListener("click", () => window.trackMany("link", 0, 5));
    document.body.append(a);
  }, `${rx.origin}/blank.html`);
  await page.evaluate(() => window.trackMany("link", 5, 10));
  await Promise.all([page.waitForURL("**/blank.html"), page.click("a")]);
  // The next visit to the shop adopts anything the page left stored.
  const next = await open(context, { flushIntervalMs: 100 });
  await allArrived("link", 10);
  await next.evaluate(() => window.sm.flush());
  const r = tallyRun("left by a link (next page after 1 s)", "link", 10);
  assert.equal(r.lost, 0, `lost ${r.lostList}`);
  assert.equal(r.duplicates, 0, "the answer was heard: nothing left to send again");
  await context.close();
});

test("the collector starts failing as the shopper moves between pages: each batch answered 500 as its page goes is sent again from the next one", async () => {
  // The script-tag embed with default options. Every batch waits 800 ms
  // at the collector, then gets 500 with Retry-After: 1: the pages are
  // gone before they hear it. Before, all 100 events were lost.
  rx.reset();
  const other = await receiver();
  const context = await browser.newContext();
  const page = await context.newPage();
  Object.assign(rx.state, { faults: Array(50).fill(500), retryAfter: "1", delayMs: 800 });
  // Page A: 30 events; the shopper reloads while their batch is under way.
  await page.goto(`${rx.origin}/embed.html`);
  await page.evaluate(() => window.trackMany("moving", 0, 30));
  await until(() => rx.state.requests >= 1, 10_000, "page A's batch");
  await page.reload();
  // Page B: 70 more, a moment offline, then its batch goes and the
  // shopper leaves the shop at once.
  await page.evaluate(() => window.trackMany("moving", 30, 100));
  await context.setOffline(true);
  await new Promise((r) => setTimeout(r, 1500));
  await context.setOffline(false);
  const sent = rx.state.requests;
  await until(() => rx.state.requests > sent, 10_000, "page B's batch");
  await page.goto(`${other.origin}/blank.html`);
  await until(() => rx.state.batches.filter((b) => b.status === 500).length >= 2, 10_000, "both batches answered 500");
  assert.equal(receivedOf("moving").length, 0, "nothing stored yet");
  // Back in the shop (page C), the collector answering again.
  Object.assign(rx.state, { faults: [], delayMs: 0 });
  await page.goto(`${rx.origin}/embed.html`);
  await page.evaluate(() => window.segmint.ready);
  await allArrived("moving", 100);
  const r = tallyRun("moving on while the collector fails", "moving", 100);
  assert.equal(r.lost, 0, `lost ${r.lostList}`);
  await context.close();
  await other.close();
});

test("an endpoint that redirects (301, so the POST becomes a GET): the events are kept, endpoint_redirected says where, and a page with the endpoint corrected sends them", async () => {
  rx.reset();
  const fixed = await receiver();
  try {
    const context = await browser.newContext();
    rx.state.redirect = "/moved/v1/batch";
    const page = await open(context, { flushIntervalMs: 100, retry: { baseMs: 100, capMs: 300 } });
    await page.evaluate(() => window.trackMany("redirect", 0, 10));
    await until(() => rx.state.batches.filter((b) => b.status === 301).length >= 3, 10_000, "three redirected tries");
    const errors = await page.evaluate(() => window.smErrors);
    assert.deepEqual(errors.map((e) => [e.code, e.status]), [["endpoint_redirected", 404]], "said once");
    assert.match(errors[0].message, new RegExp(`redirected a batch to ${rx.origin}/moved/v1/batch, which answered HTTP 404`));
    assert.equal(receivedOf("redirect").length, 0);
    // The shop corrects its endpoint: the next page view sends what waited.
    await page.goto(`${rx.origin}/auto.html?o=${encodeURIComponent(JSON.stringify({ endpoint: fixed.origin, flushIntervalMs: 100 }))}`);
    await page.evaluate(() => window.smReady);
    await allArrived("redirect", 10, 20_000, fixed);
    const r = tallyRun("endpoint redirects, then corrected", "redirect", 10, fixed);
    assert.equal(r.lost, 0);

    // A 307 keeps the POST: what arrives at the end of it is delivered.
    Object.assign(rx.state, { redirect: "/v1/batch?via=307", redirectStatus: 307 });
    const kept = await open(context, { flushIntervalMs: 100 });
    await kept.evaluate(() => window.trackMany("redirect-307", 0, 5));
    await allArrived("redirect-307", 5);
    assert.deepEqual(rx.state.batches.map((b) => b.status).slice(-2), [307, 200]);
    assert.deepEqual(await kept.evaluate(() => window.smErrors), []);
    await context.close();
  } finally {
    Object.assign(rx.state, { redirect: null, redirectStatus: 301 });
    await fixed.close();
  }
});

test("a browser whose fetch ignores keepalive (Firefox before 133): what a request carries when the page goes is sent again by beacon", async () => {
  /** Leaves the page while a batch of 20 is under way; returns the batch
   * requests that arrived. */
  async function leaveMidRequest(run, withoutKeepalive) {
    rx.reset();
    const context = await browser.newContext();
    // Firefox before 133 has no Request.prototype.keepalive, and its fetch
    // ignores the option: such requests die with the page.
    if (withoutKeepalive) await context.addInitScript(() => delete Request.prototype.keepalive);
    const page = await open(context, { flushIntervalMs: 60_000 });
    rx.state.delayMs = 1500; // still unanswered when the page goes
    await page.evaluate((run) => {
      window.trackMany(run, 0, 20);
      window.sm.flush();
    }, run);
    await until(() => rx.state.requests === 1, 5000, "the batch under way");
    await page.goto(`${rx.origin}/blank.html`);
    await allArrived(run, 20);
    await new Promise((r) => setTimeout(r, 2000)); // anything else would be here by now
    rx.state.delayMs = 0;
    const r = tallyRun(withoutKeepalive ? "left mid-request, no keepalive" : "left mid-request", run, 20);
    assert.equal(r.lost, 0);
    await context.close();
    return rx.state.requests;
  }
  assert.equal(await leaveMidRequest("keepalive", false), 1, "a keepalive request is trusted to finish");
  assert.equal(await leaveMidRequest("no-keepalive", true), 2, "without keepalive, its events also go in the page-hide beacon");
});

test("tab closed", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 60_000 });
  await page.evaluate(() => window.trackMany("close", 0, 50));
  await page.close({ runBeforeUnload: true });
  await allArrived("close", 50);
  const r = tallyRun("tab closed", "close", 50);
  assert.equal(r.lost, 0, `lost ${r.lostList}`);
  await context.close();
});

test("tab closed with more than the unload budget: the rest waits for the next visit", async () => {
  rx.reset();
  const context = await browser.newContext();
  await closeOverBudget(context, "budget", "tab closed over the 64 KB budget");
  await context.close();
});

test("offline then online", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 100 });
  await context.setOffline(true);
  await page.evaluate(() => window.trackMany("offline", 0, 40));
  await page.waitForTimeout(1500);
  assert.equal(receivedOf("offline").length, 0, "nothing is sent while offline");
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("sgm_q.")).length);
  assert.ok(stored > 0, "everything is kept in storage");
  await context.setOffline(false);
  await allArrived("offline", 40);
  const r = tallyRun("offline then online", "offline", 40);
  assert.equal(r.lost, 0);
  assert.equal(r.duplicates, 0);
  await context.close();
});

test("a queue that cannot drain takes at most 1 MB of the site's localStorage; every event still goes once the collector is reachable", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 100 });
  await context.setOffline(true); // as a blocked collector would: nothing drains
  const used = await page.evaluate(async () => {
    for (let i = 0; i < 50; i++) {
      window.trackMany("undrained", i * 100, i * 100 + 100, { pad: "x".repeat(200) });
      await new Promise((r) => setTimeout(r, 0));
    }
    let chars = 0;
    for (const k of Object.keys(localStorage)) if (k.startsWith("sgm_q.")) chars += k.length + localStorage.getItem(k).length;
    return chars;
  });
  // 5,000 events of about 420 bytes: 2.1 MB queued, 1 MB of it stored.
  assert.ok(used <= 1024 * 1024 + 1024, `${used} characters of queue in storage`);
  assert.ok(used > 900 * 1024, `${used}: the newest events are stored`);
  await context.setOffline(false);
  await allArrived("undrained", 5000, 60_000);
  const r = tallyRun("queue over the storage budget", "undrained", 5000);
  assert.equal(r.lost, 0);
  await context.close();
});

test("a collector unreachable from this browser for a day (an ad blocker): storage keeps only the newest 96 KB of the queue", async () => {
  // A collector of its own: the page-hide beacons of the closing context
  // may slip past the blocking route, and must not reach later tests'.
  const collector = await receiver();
  const context = await browser.newContext();
  await context.route("**/v1/batch**", (r) => r.abort("blockedbyclient"));
  // Failed answers since two days ago, the latest an hour ago.
  await context.addInitScript(() => {
    if (!localStorage.getItem("sgm_failing")) localStorage.setItem("sgm_failing", `${Date.now() - 2 * 864e5},${Date.now() - 36e5}`);
  });
  const page = await context.newPage();
  await page.goto(`${rx.origin}/auto.html?o=${encodeURIComponent(JSON.stringify({ endpoint: collector.origin, flushIntervalMs: 100 }))}`);
  await page.evaluate(() => window.smReady);
  const used = await page.evaluate(async () => {
    for (let i = 0; i < 20; i++) {
      window.trackMany("unreachable", i * 100, i * 100 + 100, { pad: "x".repeat(200) });
      await new Promise((r) => setTimeout(r, 0));
    }
    let chars = 0;
    for (const k of Object.keys(localStorage)) if (k.startsWith("sgm_q.")) chars += k.length + localStorage.getItem(k).length;
    return chars;
  });
  assert.ok(used <= 96 * 1024 + 1024 && used > 40 * 1024, `${used} characters of queue in storage`);
  assert.equal(await page.evaluate(() => window.sm.flush().then((r) => r.sent)), 0);
  await context.close();
  await collector.close();
});

test("server answering 500, 503 with Retry-After, 429 and 413", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 50, maxEvents: 20, retry: { baseMs: 100, capMs: 1000 } });
  rx.state.faults = [500, 503, 429, 413, 413, 500];
  rx.state.retryAfter = "1";
  await page.evaluate(() => window.trackMany("faults", 0, 60));
  await allArrived("faults", 60, 30_000);
  const r = tallyRun("server 500/503+Retry-After/429/413", "faults", 60);
  assert.equal(r.lost, 0);
  assert.equal(r.duplicates, 0, "failed answers store nothing");
  const statuses = rx.state.batches.map((b) => b.status);
  assert.deepEqual(statuses.slice(0, 6), [500, 503, 429, 413, 413, 500]);
  // Retry-After: 1 on the 503 is honoured.
  const after503 = rx.state.batches[2].at - rx.state.batches[1].at;
  assert.ok(after503 >= 950, `retried ${after503} ms after a 503 with Retry-After: 1`);
  // 413 halves the batch: the batch after the first 413 is half its size.
  const [b413, half] = [rx.state.batches[3], rx.state.batches[4]];
  assert.equal(half.ids.length, Math.floor(b413.ids.length / 2));
  // A 400 drops the batch and reports it.
  rx.state.faults = [400];
  await page.evaluate(() => window.trackMany("rejected", 0, 3));
  await until(() => page.evaluate(() => window.smErrors.some((e) => e.code === "batch_rejected")), 5000, "batch_rejected");
  const err = await page.evaluate(() => window.smErrors.find((e) => e.code === "batch_rejected"));
  assert.equal(err.status, 400);
  await context.close();
});

test("a collector that accepts the request and never answers: given up after 30 s, flush() settles, the events go again", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await context.newPage();
  const aborted = abortedBatches(page);
  await page.clock.install(); // the SDK's timers on a fake clock
  await page.goto(url({ flushIntervalMs: 100, retry: { baseMs: 100, capMs: 1000 } }));
  await page.evaluate(() => window.smReady);
  rx.state.hang = 1;
  const flushed = page.evaluate(() => {
    window.trackMany("hang", 0, 5);
    return window.sm.flush();
  });
  await until(() => rx.state.hung === 1, 5000, "the stalled request");
  await page.clock.runFor(29_000);
  assert.deepEqual(aborted, [], "still waiting before 30 s");
  await page.clock.runFor(1_500);
  const pendingAfter = new Promise((r) => setTimeout(() => r("flush() still pending"), 10_000));
  assert.deepEqual(await Promise.race([flushed, pendingAfter]), { sent: 0, pending: 5 }, "flush() answered with what is left");
  await until(() => aborted.length === 1, 5000, "the stalled request aborted");
  assert.deepEqual(aborted, ["net::ERR_ABORTED"]);
  await page.clock.runFor(2_000); // the backoff (at most 1 s here)
  await allArrived("hang", 5);
  const r = tallyRun("collector that never answers", "hang", 5);
  assert.equal(r.lost, 0);
  assert.equal(r.duplicates, 0);
  await context.close();
});

test("a stalled request too big for keepalive is aborted when the tab is hidden: its events go in keepalive batches", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await context.newPage();
  const aborted = abortedBatches(page);
  await page.goto(url({ flushIntervalMs: 60_000, compress: false }));
  await page.evaluate(() => window.smReady);
  rx.state.hang = 1;
  // 40 KB: over the half of the keepalive budget an ordinary batch may use.
  await page.evaluate(() => {
    window.trackMany("stalled-hide", 0, 10, { pad: "x".repeat(4000) });
    window.sm.flush();
  });
  await until(() => rx.state.hung === 1, 5000, "the stalled request");
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await allArrived("stalled-hide", 10);
  // Not kept open (holding one of the browser's six connections to the
  // collector) for the rest of the page view.
  await until(() => aborted.length === 1, 5000, "the stalled request aborted");
  assert.deepEqual(aborted, ["net::ERR_ABORTED"]);
  const r = tallyRun("stalled request, then tab hidden", "stalled-hide", 10);
  assert.equal(r.lost, 0);
  await context.close();
});

test("two tabs tracking at once", async () => {
  rx.reset();
  const context = await browser.newContext();
  const [a, b] = [await open(context, { flushIntervalMs: 200 }), await open(context, { flushIntervalMs: 200 })];
  await Promise.all(
    [a, b].map((page, i) =>
      page.evaluate(
        ([tab]) =>
          new Promise((resolve) => {
            let n = 0;
            const timer = setInterval(() => {
              window.trackMany(`tabs-${tab}`, n, n + 10);
              n += 10;
              if (n >= 100) {
                clearInterval(timer);
                resolve();
              }
            }, 20);
          }),
        [i],
      ),
    ),
  );
  // One tab closes with events queued while the server is slow: the other
  // tab (or the beacon) must deliver them.
  rx.state.delayMs = 400;
  await b.evaluate(() => window.trackMany("tabs-1", 100, 130));
  await b.close({ runBeforeUnload: true });
  rx.state.delayMs = 0;
  await allArrived("tabs-0", 100);
  await allArrived("tabs-1", 130);
  const ra = tallyRun("two tabs (tab A)", "tabs-0", 100);
  const rb = tallyRun("two tabs (tab B, closed)", "tabs-1", 130);
  assert.equal(ra.lost + rb.lost, 0);
  await context.close();
});

test("garbage in the persisted queue is recovered and reported", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${rx.origin}/blank.html`);
  // A queue left by a dead page view: three good events among garbage,
  // plus a chunk that is garbage through and through.
  await page.evaluate(() => {
    const ctx = JSON.stringify({ library: { name: "segmint" }, page: {}, segments: [] });
    const head = (n) =>
      `{"type":"track","event":"Test Event","properties":{"run":"garbage","n":${n}},"messageId":"00000000-0000-4000-8000-00000000000${n}","anonymousId":"a","timestamp":"2026-11-23T00:00:00.000Z"`;
    localStorage.setItem("sgm_q.deadtab.0", ["sgm-q1", `c0\t${ctx}`, `e0\t${head(0)}`, "e0\t{\"broken", `e0\t${head(1)}`, "\u0000\u0001junk", `e9\t${head(7)}`, `e0\t${head(2)}`].join("\n"));
    localStorage.setItem("sgm_q.otherdead.3", "not a queue at all");
    localStorage.setItem("sgm_tab.deadtab", "0");
  });
  await page.goto(url({ flushIntervalMs: 50 }));
  await page.evaluate(() => window.smReady);
  await allArrived("garbage", 3);
  const r = tallyRun("garbage in the persisted queue", "garbage", 3);
  assert.equal(r.lost, 0);
  const errors = await page.evaluate(() => window.smErrors);
  const corrupt = errors.filter((e) => e.code === "storage_corrupt");
  assert.equal(corrupt.reduce((s, e) => s + e.skipped, 0), 4, JSON.stringify(errors));
  const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("sgm_q.deadtab") || k.startsWith("sgm_q.otherdead")));
  assert.deepEqual(left, [], "garbage is cleaned up");
  await context.close();
});

test("storage that throws: events are kept in memory and still delivered", async () => {
  rx.reset();
  const context = await browser.newContext();
  // Private-mode Safari and a full quota both throw on setItem.
  await context.addInitScript(() => {
    Storage.prototype.setItem = function () {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    };
  });
  const page = await open(context, { flushIntervalMs: 100 });
  await page.evaluate(() => window.trackMany("nostorage", 0, 25));
  await allArrived("nostorage", 25);
  const r = tallyRun("storage that throws (memory fallback)", "nostorage", 25);
  assert.equal(r.lost, 0);
  const codes = await page.evaluate(() => window.smErrors.map((e) => e.code));
  assert.deepEqual([...new Set(codes)], ["storage_unavailable"], "reported once per failure spell");
  await context.close();
});

test("the queue is bounded: overflow drops the oldest and says how many", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 100, maxQueueEvents: 50 });
  await context.setOffline(true);
  await page.evaluate(() => window.trackMany("bounded", 0, 80));
  const dropped = await page.evaluate(() =>
    window.smErrors.filter((e) => e.code === "queue_overflow").reduce((n, e) => n + Number(e.message.match(/(\d+) oldest/)[1]), 0),
  );
  assert.equal(dropped, 30);
  await context.setOffline(false);
  await until(() => receivedOf("bounded").length >= 50, 10_000, "the kept 50");
  const got = new Set(receivedOf("bounded").map((m) => m.properties.n));
  assert.equal(got.size, 50);
  assert.ok([...got].every((n) => n >= 30), "the newest 50 are kept");
  await context.close();
});

test("batches are gzipped once the endpoint says it accepts gzip", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 50 });
  await page.evaluate(() => window.trackMany("gzip", 0, 20));
  await allArrived("gzip", 20);
  // The first answer carried `Accept-Encoding: gzip`; from then on the
  // body is compressed and the URL says so.
  await page.evaluate(() => window.trackMany("gzip", 20, 40));
  await allArrived("gzip", 40);
  const batches = rx.state.batches.filter((b) => b.status === 200);
  assert.equal(batches[0].gzip, false, "the first batch cannot know yet");
  assert.ok(batches.length >= 2 && batches.at(-1).gzip, `later batches gzipped: ${JSON.stringify(batches.map((b) => b.gzip))}`);
  const r = tallyRun("gzip after Accept-Encoding", "gzip", 40);
  assert.equal(r.lost, 0, `lost ${r.lostList}`);
  // And it stays learned across page views (remembered per endpoint).
  await page.reload();
  await page.evaluate(() => window.smReady);
  const before = rx.state.batches.length;
  await page.evaluate(() => window.trackMany("gzip2", 0, 5));
  await allArrived("gzip2", 5);
  assert.ok(rx.state.batches.slice(before).every((b) => b.gzip), "gzipped from the first batch after a reload");
  await context.close();
});
