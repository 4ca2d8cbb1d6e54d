// Segment's own clients sending to segmint's collector: analytics-next in
// Chromium (per-event delivery, which posts /v1/t, /v1/p, /v1/i, and
// batching delivery, which posts /v1/b) and @segment/analytics-node from
// Node (/v1/batch with Basic auth). Every event each client sent is stored
// once, also when the collector answered 503 first: a sqlite3 process
// holds the database's write lock, the collector's insert times out, it
// answers 503 with Retry-After, and the client retries.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import * as esbuild from "esbuild";
import { Analytics } from "@segment/analytics-node";
import { launch, until, freePort, ROOT } from "./harness.mjs";

const WRITE_KEY = "segment-key";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-segment-"));
const db = path.join(dir, "events.db");
let browser, collector, collectorLog = "", origin, web, webOrigin;

/** Message ids stored by the collector, with how often each is stored. */
function storedIds() {
  const out = execFileSync("sqlite3", [db, "SELECT message_id FROM events"], { encoding: "utf8" });
  return out.split("\n").filter(Boolean);
}

/** Holds the database's write lock until the returned function is called. */
async function lockDatabase() {
  const p = spawn("sqlite3", [db], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  p.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n");
  await until(() => out.includes("locked"), 10_000, "the database lock");
  return async () => {
    p.stdin.end("COMMIT;\n");
    await new Promise((r) => p.on("exit", r));
  };
}

/** What the collector refused for want of storage, so far. */
const refusals = () => (collectorLog.match(/storing a batch failed/g) || []).length;

before(async () => {
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  // The storefront: another origin, allowed by --allow-origin.
  const bundle = await esbuild.build({
    stdin: { contents: `export { AnalyticsBrowser } from "@segment/analytics-next";`, resolveDir: ROOT },
    bundle: true,
    format: "iife",
    globalName: "SegmentSdk",
    write: false,
    logLevel: "silent",
  });
  const js = bundle.outputFiles[0].text;
  web = http.createServer((req, res) => {
    if (req.url.startsWith("/sdk.js")) {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(js);
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>shop</title><script src="/sdk.js"></script>`);
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  webOrigin = `http://127.0.0.1:${web.address().port}`;
  const bin = path.join(ROOT, "target/debug/segmint-collector");
  collector = spawn(bin, ["--listen", `127.0.0.1:${port}`, "--database", `sqlite:${db}`, "--rules", "rules.json", "--write-key", WRITE_KEY, "--allow-origin", webOrigin], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  collector.stderr.on("data", (d) => (collectorLog += d));
  await until(async () => (await fetch(`${origin}/api/summary`).catch(() => null))?.ok, 20_000, "the collector");
  browser = await launch();
});

after(async () => {
  await browser?.close();
  collector?.kill("SIGKILL");
  web?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A shop page running analytics-next with `delivery` ("default" or
 * "batching") pointed at the collector; returns the page and the message
 * ids of every request it posts, with the paths and answers seen. */
async function shopPage(delivery) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const sent = { ids: new Set(), paths: new Set(), statuses: [], metrics: [] };
  page.on("request", (r) => {
    if (r.method() !== "POST" || !r.url().startsWith(origin)) return;
    // analytics.js's own counters (after a failure), not events.
    if (new URL(r.url()).pathname === "/v1/m") return;
    sent.paths.add(new URL(r.url()).pathname);
    const body = JSON.parse(r.postData());
    for (const m of body.batch || [body]) sent.ids.add(m.messageId);
  });
  page.on("response", (r) => {
    if (r.request().method() !== "POST" || !r.url().startsWith(origin)) return;
    if (new URL(r.url()).pathname === "/v1/m") sent.metrics.push(r.status());
    else sent.statuses.push(r.status());
  });
  await page.goto(`${webOrigin}/`);
  await page.waitForFunction(() => window.SegmentSdk);
  await page.evaluate(
    ({ writeKey, apiHost, delivery }) => {
      const io = { apiKey: writeKey, apiHost, protocol: "http" };
      if (delivery === "batching") io.deliveryStrategy = { strategy: "batching", config: { size: 10, timeout: 300 } };
      // Settings as Segment's CDN would serve them, given inline.
      window.analytics = window.SegmentSdk.AnalyticsBrowser.load(
        { writeKey, cdnSettings: { integrations: { "Segment.io": io } } },
        { integrations: { "Segment.io": io } },
      );
    },
    { writeKey: WRITE_KEY, apiHost: `${origin.replace("http://", "")}/v1`, delivery },
  );
  return { context, page, sent };
}

/** Sends a shopper's visit through analytics-next: a page view, 20
 * clicks, an identify and an order. */
async function visit(page, tag) {
  await page.evaluate(async (tag) => {
    const a = window.analytics;
    await a.page("Home");
    for (let i = 0; i < 20; i++) a.track("Product Clicked", { product_id: `${tag}-${i}`, price: 9 });
    await a.identify(`user-${tag}`, { plan: "gold" });
    await a.track("Order Completed", { order_id: `${tag}-o`, products: [{ price: 9 }] });
  }, tag);
}

const missing = (sent) => [...sent.ids].filter((id) => !storedIds().includes(id));

for (const delivery of ["default", "batching"]) {
  test(`analytics-next (${delivery} delivery) in Chromium: every event stored once`, async () => {
    const { context, page, sent } = await shopPage(delivery);
    await visit(page, `next-${delivery}`);
    await until(() => sent.ids.size >= 23 && missing(sent).length === 0, 30_000, "every event stored");
    assert.equal(sent.ids.size, 23);
    const expected = delivery === "batching" ? ["/v1/b"] : ["/v1/i", "/v1/p", "/v1/t"];
    assert.deepEqual([...sent.paths].sort(), expected);
    assert.ok(sent.statuses.every((s) => s === 200), `answers: ${sent.statuses}`);
    const ids = storedIds();
    assert.equal(ids.length, new Set(ids).size);
    console.log(`analytics-next ${delivery}: ${sent.ids.size} events sent on ${[...sent.paths]}, ${[...sent.ids].filter((id) => ids.includes(id)).length} stored`);
    await context.close();
  });

  test(`analytics-next (${delivery} delivery): events answered 503 are retried and stored once`, async () => {
    const { context, page, sent } = await shopPage(delivery);
    const before = refusals();
    const unlock = await lockDatabase();
    try {
      await visit(page, `outage-${delivery}`);
      await until(() => sent.statuses.includes(503), 30_000, "a 503 from the collector");
    } finally {
      await unlock();
    }
    await until(() => sent.ids.size >= 23 && missing(sent).length === 0, 60_000, "every event stored after the retries");
    const ids = storedIds();
    assert.equal(ids.length, new Set(ids).size);
    assert.ok(sent.metrics.every((s) => s === 204), `its metrics were answered ${sent.metrics}`);
    console.log(`analytics-next ${delivery} through a 503: ${sent.ids.size} events sent, ${sent.statuses.length} requests of which ${sent.statuses.filter((s) => s === 503).length} answered 503 (${refusals() - before} refused batches logged), ${sent.metrics.length} metrics posts acknowledged, all stored once`);
    await context.close();
  });
}

test("@segment/analytics-node: every event stored once, also after a 503", async () => {
  const ids = new Set();
  const sent = new Set();
  const paths = new Set();
  const client = () => {
    const a = new Analytics({ writeKey: WRITE_KEY, host: origin, maxEventsInBatch: 10, flushInterval: 200 });
    a.on("error", () => {});
    // What it put on the wire, whatever ids it gave the messages.
    a.on("http_request", ({ url, body }) => {
      paths.add(new URL(url).pathname);
      const b = typeof body === "string" ? JSON.parse(body) : body;
      for (const m of b.batch) sent.add(m.messageId);
    });
    return a;
  };
  const send = (a, tag, n) => {
    for (let i = 0; i < n; i++) {
      const messageId = `node-${tag}-${i}`;
      ids.add(messageId);
      a.track({ userId: `server-${tag}`, event: "Order Completed", messageId, properties: { order_id: `${tag}-${i}`, total: 20 } });
    }
    const identify = `node-${tag}-identify`;
    ids.add(identify);
    a.identify({ userId: `server-${tag}`, messageId: identify, traits: { plan: "gold" } });
  };
  const healthy = client();
  send(healthy, "ok", 25);
  await healthy.closeAndFlush({ timeout: 30_000 });
  assert.deepEqual([...ids].filter((id) => !sent.has(id)), [], "the messages went with the ids given");
  assert.deepEqual([...ids].filter((id) => !storedIds().includes(id)), []);

  const before = refusals();
  const unlock = await lockDatabase();
  const retried = client();
  try {
    send(retried, "outage", 5);
    await until(() => refusals() > before, 30_000, "a 503 from the collector");
  } finally {
    await unlock();
  }
  await retried.closeAndFlush({ timeout: 30_000 });
  const stored = storedIds();
  assert.deepEqual([...ids].filter((id) => !stored.includes(id)), []);
  assert.equal(stored.length, new Set(stored).size);
  assert.deepEqual([...paths], ["/v1/batch"]);
  console.log(`analytics-node: ${ids.size} events sent on ${[...paths]}, ${refusals() - before} answered 503 then retried, all stored once`);
});
