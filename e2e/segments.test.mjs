// Rules loading and the four seed segments, in real Chromium: segments
// follow the user's own events on the device, with no round trip.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { launch, receiver, until } from "./harness.mjs";

const DAY = 86_400_000;
// DESIGN.md's rules document, verbatim.
const SEED = {
  version: "2026-11-22.1",
  traits: {
    purchases_30d: { event: "Order Completed", aggregate: "count", window_days: 30 },
    avg_price_30d: { event: "Order Completed", aggregate: "avg", property: "products.price", window_days: 30 },
    top_category_share: { event: "Order Completed", aggregate: "top_share", property: "products.category", window_days: 90 },
    days_since_first_seen: { builtin: "days_since_first_seen" },
  },
  segments: [
    { id: "frequent-buyer", name: "Frequent Buyers", priority: 40, condition: { purchases_30d: { $gt: 3 } }, holdout: 0.1 },
    { id: "bargain-hunter", name: "Bargain Hunters", priority: 30, condition: { avg_price_30d: { $lt: 20 } } },
    { id: "new-user", name: "New Users", priority: 10, condition: { days_since_first_seen: { $lte: 7 } } },
    { id: "category-enthusiast", name: "Category Enthusiasts", priority: 20, condition: { top_category_share: { $gt: 0.5 } } },
  ],
};

let browser, rx, rulesFile;
before(async () => {
  rulesFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "segmint-rules-")), "rules.json");
  fs.writeFileSync(rulesFile, JSON.stringify(SEED));
  rx = await receiver({ rulesFile });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await rx?.close();
});

const pageUrl = (options) => `${rx.origin}/auto.html?o=${encodeURIComponent(JSON.stringify({ endpoint: rx.origin, ...options }))}`;

async function open(context, options, clockAt) {
  const page = await context.newPage();
  if (clockAt !== undefined) await page.clock.install({ time: clockAt });
  await page.goto(pageUrl(options));
  await page.evaluate(() => window.smReady);
  await page.evaluate(() => {
    window.changes = [];
    window.sm.on("segments", (c) => window.changes.push(c));
  });
  return page;
}

const order = (price, category) => ({
  order_id: `o-${Math.random()}`,
  products: [{ product_id: "p", price, category, quantity: 1 }],
});

test("the four seed segments follow a user's purchases on the device", async () => {
  const context = await browser.newContext();
  const t0 = Date.parse("2026-11-23T10:00:00Z");
  const page = await open(context, { rules: SEED, flushIntervalMs: 100 }, t0);
  const state = () => page.evaluate(() => ({ segments: window.sm.segments(), traits: window.sm.traits(), changes: window.changes.splice(0) }));

  let s = await state();
  assert.deepEqual(s.segments, ["new-user"], "first seen today");

  await page.evaluate((o) => window.sm.orderCompleted(o), order(50, "shoes"));
  s = await state();
  assert.deepEqual(s.segments, ["category-enthusiast", "new-user"], "1 of 1 purchases in shoes");
  assert.deepEqual(s.changes, [{ segments: ["category-enthusiast", "new-user"], entered: ["category-enthusiast"], exited: [] }]);

  await page.evaluate((o) => window.sm.orderCompleted(o), order(4, "hats"));
  await page.evaluate((o) => window.sm.orderCompleted(o), order(5, "bags"));
  s = await state();
  assert.deepEqual(s.segments, ["bargain-hunter", "new-user"], "average 19.67 < 20; no category above half");
  assert.equal(Math.round(s.traits.avg_price_30d * 100), 1967);

  await page.evaluate((o) => window.sm.orderCompleted(o), order(5, "bags"));
  s = await state();
  assert.deepEqual(s.segments, ["frequent-buyer", "bargain-hunter", "new-user"], "4 purchases > 3");
  assert.ok(await page.evaluate(() => window.sm.inSegment("frequent-buyer")));

  // Segments ride along in every event's context.
  await page.evaluate(() => window.sm.track("Checked Context"));
  await page.evaluate(() => window.sm.flush());
  const last = rx.state.messages.filter((m) => m.event === "Checked Context").at(-1);
  assert.deepEqual(last.context.segments, ["frequent-buyer", "bargain-hunter", "new-user"]);

  // Eight days later the user is no longer new.
  await page.clock.setSystemTime(t0 + 8 * DAY + 3_600_000);
  await page.evaluate(() => window.sm.track("Tick"));
  s = await state();
  assert.deepEqual(s.segments, ["frequent-buyer", "bargain-hunter"]);
  assert.deepEqual(s.changes.at(-1).exited, ["new-user"]);

  // Thirty-one days later the purchases have left the 30-day windows; the
  // 90-day category window still holds them.
  await page.clock.setSystemTime(t0 + 31 * DAY);
  await page.evaluate(() => window.sm.track("Tick"));
  s = await state();
  assert.deepEqual(s.segments, []);
  // 4 lamps of 8 purchases in 90 days is half, not most; the 5th makes it.
  for (let i = 0; i < 4; i++) await page.evaluate((o) => window.sm.orderCompleted(o), order(30, "lamps"));
  s = await state();
  assert.deepEqual(s.segments, ["frequent-buyer"]);
  await page.evaluate((o) => window.sm.orderCompleted(o), order(30, "lamps"));
  s = await state();
  assert.deepEqual(s.segments, ["frequent-buyer", "category-enthusiast"]);
  await context.close();
});

test("an order counts once: reloading the thank-you page does not make a Frequent Buyer, while the event is still sent", async () => {
  rx.reset();
  const context = await browser.newContext();
  const thanks = { order_id: "o-1001", total: 34, products: [{ product_id: "sh-101", category: "shoes", price: 34, quantity: 1 }] };
  const seen = [];
  for (let view = 0; view < 5; view++) {
    // The shop's thank-you page calls orderCompleted() on every view.
    const page = await open(context, { rules: SEED, flushIntervalMs: 100 });
    await page.evaluate((o) => window.sm.orderCompleted(o), thanks);
    seen.push(await page.evaluate(() => [window.sm.traits().purchases_30d, window.sm.segments()]));
    await page.evaluate(() => window.sm.flush());
    await page.close();
  }
  assert.deepEqual(seen, Array(5).fill([1, ["category-enthusiast", "new-user"]]));
  // The collector still gets each view's event (its messageIds differ;
  // delivery is at least once, so a copy may come twice).
  const orders = () =>
    new Set(rx.state.messages.filter((m) => m.event === "Order Completed" && m.properties.order_id === "o-1001").map((m) => m.messageId)).size;
  await until(() => orders() >= 5, 10_000, "five Order Completed");
  assert.equal(orders(), 5);
  await context.close();
});

test("the profile persists: a returning visitor is still in their segments", async () => {
  const context = await browser.newContext();
  const t0 = Date.parse("2026-11-23T10:00:00Z");
  const page = await open(context, { rules: SEED }, t0);
  for (let i = 0; i < 4; i++) await page.evaluate((o) => window.sm.orderCompleted(o), order(10, "books"));
  assert.ok(await page.evaluate(() => window.sm.inSegment("frequent-buyer")));
  await page.close();
  const again = await open(context, { rules: SEED }, t0 + 2 * DAY);
  // 4 purchases, $10 each, all books, first seen 2 days ago.
  assert.deepEqual(await again.evaluate(() => window.sm.segments()), ["frequent-buyer", "bargain-hunter", "category-enthusiast", "new-user"]);
  await context.close();
});

test("a shopper's open tabs share one profile and identity: a purchase in one counts in every tab and on the next page", async () => {
  rx.reset();
  const context = await browser.newContext();
  // Product pages opened in new tabs, then purchases in two of them.
  const [a, b] = [await open(context, { rules: SEED, flushIntervalMs: 100 }), await open(context, { rules: SEED, flushIntervalMs: 100 })];
  for (let i = 0; i < 3; i++) await a.evaluate((o) => window.sm.orderCompleted(o), order(50, "shoes"));
  await until(() => b.evaluate(() => window.sm.traits().purchases_30d === 3), 5000, "tab B to count tab A's purchases");
  await b.evaluate((o) => window.sm.orderCompleted(o), order(50, "books"));
  assert.ok(await b.evaluate(() => window.sm.inSegment("frequent-buyer")), "4 purchases across the tabs");
  await until(() => a.evaluate(() => window.sm.inSegment("frequent-buyer")), 5000, "tab A to count tab B's purchase");
  // The next page: all four, not the last writer's own.
  const next = await open(context, { rules: SEED });
  assert.equal(await next.evaluate(() => window.sm.traits().purchases_30d), 4);

  // Signing in in one tab, and out (reset) in another.
  await a.evaluate(() => window.sm.identify("u-42", { plan: "pro" }));
  await until(() => b.evaluate(() => window.sm.userId() === "u-42" && window.sm.traits().plan === "pro"), 5000, "tab B to know the user");
  await b.evaluate(() => window.sm.track("Tab Test", { run: "signed-in" }));
  await until(() => rx.state.messages.some((m) => m.properties?.run === "signed-in"), 5000, "tab B's event");
  assert.equal(rx.state.messages.find((m) => m.properties?.run === "signed-in").userId, "u-42");
  const before = await a.evaluate(() => window.sm.anonymousId());
  await b.evaluate(() => window.sm.reset());
  const fresh = await b.evaluate(() => window.sm.anonymousId());
  assert.notEqual(fresh, before);
  await until(() => a.evaluate((id) => window.sm.anonymousId() === id && window.sm.userId() === null, fresh), 5000, "tab A to follow the reset");
  assert.deepEqual(await a.evaluate(() => window.sm.segments()), ["new-user"], "the profile went with the reset");
  await context.close();
});

test("product pages opened at once, each counting a view on load, lose none of the views from the shared profile", async () => {
  // A trait over page-load events: the shopper opens six product pages in
  // new tabs at once, and each records its view within milliseconds of
  // the others, before hearing of their writes.
  const rules = {
    version: "views.1",
    traits: { views_30d: { event: "Product Viewed", aggregate: "count", window_days: 30 } },
    segments: [{ id: "browser", condition: { views_30d: { $gte: 10 } } }],
  };
  const context = await browser.newContext();
  const first = await open(context, { rules });
  const tabs = await Promise.all(
    Array.from({ length: 6 }, async () => {
      const page = await context.newPage();
      await page.goto(pageUrl({ rules }));
      await page.evaluate(() => window.smReady);
      await page.evaluate(() => window.sm.track("Product Viewed", {}));
      return page;
    }),
  );
  // Then bursts in every tab at once.
  await Promise.all([first, ...tabs].map((p) => p.evaluate(() => {
    for (let i = 0; i < 5; i++) window.sm.track("Product Viewed", { i });
  })));
  const views = () => Promise.all([first, ...tabs].map((p) => p.evaluate(() => window.sm.traits().views_30d)));
  const total = 6 + 7 * 5;
  await until(async () => (await views()).every((n) => n === total), 5000, `every tab to count ${total} views`).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await views())}`);
  });
  assert.ok(await first.evaluate(() => window.sm.inSegment("browser")));
  const next = await open(context, { rules });
  assert.equal(await next.evaluate(() => window.sm.traits().views_30d), total, "the next page");
  await context.close();
});

test("five tabs recording for 3 s, interleaved, keep every event in the shared profile", async () => {
  // Steady browsing in several tabs at once: each tab records every 20-70
  // ms, so writes cross all the time. (The build before the fix kept 287
  // and 292 of about 340.)
  const rules = { version: "views.2", traits: { views_30d: { event: "Product Viewed", aggregate: "count", window_days: 30 } }, segments: [] };
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 5; i++) tabs.push(await open(context, { rules }));
  const recorded = await Promise.all(
    tabs.map((p) =>
      p.evaluate(async () => {
        let n = 0;
        for (const end = Date.now() + 3000; Date.now() < end; n++) {
          window.sm.track("Product Viewed", {});
          await new Promise((r) => setTimeout(r, 20 + Math.random() * 50));
        }
        return n;
      }),
    ),
  );
  const total = recorded.reduce((a, b) => a + b, 0);
  const views = () => Promise.all(tabs.map((p) => p.evaluate(() => window.sm.traits().views_30d)));
  await until(async () => (await views()).every((n) => n === total), 5000, `every tab to count ${total} views`).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await views())}`);
  });
  await context.close();
});

test("a page that stays open revalidates its rules once per TTL and takes the new ones, and so do the shop's other open tabs", async () => {
  fs.writeFileSync(rulesFile, JSON.stringify(SEED));
  const context = await browser.newContext();
  const requests = [];
  context.on("request", (req) => req.url().endsWith("/v1/rules") && requests.push(req));
  // A single-page app's page lives on; its timers run on a fake clock.
  const page = await open(context, { rulesUrl: `${rx.origin}/v1/rules`, rulesTtlSeconds: 60 }, Date.now());
  await until(() => page.evaluate(() => window.sm._get("rulesVersion") === "2026-11-22.1"), 5000, "rules");
  // Another tab of the shop (the fake clock is the context's), whose rules
  // stay fresh for an hour.
  const other = await open(context, { rulesUrl: `${rx.origin}/v1/rules`, rulesTtlSeconds: 3600 });
  assert.equal(await other.evaluate(() => window.sm._get("rulesVersion")), "2026-11-22.1", "from the cache");
  // The storefront publishes new rules: a segment everyone is in.
  const next = structuredClone(SEED);
  next.version = "2026-11-24.1";
  next.segments.push({ id: "everyone", priority: 1, condition: {} });
  fs.writeFileSync(rulesFile, JSON.stringify(next));
  await page.clock.runFor(31_000); // a heartbeat, within the TTL
  await page.waitForTimeout(300);
  assert.equal(requests.length, 1, "no request before the TTL");
  await page.clock.runFor(60_000); // heartbeats past the TTL
  await until(() => page.evaluate(() => window.sm._get("rulesVersion") === "2026-11-24.1"), 5000, "the new rules");
  assert.deepEqual(await page.evaluate(() => window.sm.segments()), ["new-user", "everyone"]);
  assert.equal(requests.length, 2, "one revalidation");
  assert.ok(requests[1].headers()["if-none-match"], "with the ETag");
  // The other tab takes them from the first one's fetch, at once.
  await until(() => other.evaluate(() => window.sm._get("rulesVersion") === "2026-11-24.1"), 5000, "the other tab to take the new rules");
  assert.ok(await other.evaluate(() => window.sm.inSegment("everyone")));
  assert.equal(requests.length, 2, "no request of its own");
  fs.writeFileSync(rulesFile, JSON.stringify(SEED));
  await context.close();
});

test("rules load from rulesUrl, are cached, revalidated with the ETag, and a bad document keeps the last good one", async () => {
  fs.writeFileSync(rulesFile, JSON.stringify(SEED));
  const context = await browser.newContext();
  const options = { rulesUrl: `${rx.origin}/v1/rules`, rulesTtlSeconds: 0 };
  const page = await open(context, options);
  await until(() => page.evaluate(() => window.sm._get("rulesVersion") === "2026-11-22.1"), 5000, "rules");
  assert.deepEqual(await page.evaluate(() => window.sm.segments()), ["new-user"]);
  await page.close();

  // The next page uses the cached document at once, before any answer.
  rx.state.delayMs = 0;
  const requests = [];
  const onRequest = (req) => req.url().endsWith("/v1/rules") && requests.push(req);
  context.on("request", onRequest);
  const second = await context.newPage();
  await second.route("**/v1/rules", async (route) => {
    await new Promise((r) => setTimeout(r, 500)); // a slow revalidation
    await route.continue();
  });
  await second.goto(pageUrl(options));
  const atReady = await second.evaluate(() => window.smReady.then(() => window.sm._get("rulesVersion")));
  assert.equal(atReady, "2026-11-22.1", "cached rules are in force at once");
  await until(() => requests.length > 0, 3000, "the revalidation");
  assert.ok(requests[0].headers()["if-none-match"], "revalidated with If-None-Match");
  const response = await requests[0].response();
  assert.equal(response.status(), 304);
  await second.close();

  // A bad document: reported with its path, the last good rules stay.
  const bad = structuredClone(SEED);
  bad.version = "2026-11-23.1";
  bad.segments[2].condition = { purchases_30d: { $gt: "3" } };
  fs.writeFileSync(rulesFile, JSON.stringify(bad));
  const third = await open(context, options);
  await until(() => third.evaluate(() => window.smErrors.some((e) => e.code === "invalid_rules")), 5000, "invalid_rules");
  const err = await third.evaluate(() => window.smErrors.find((e) => e.code === "invalid_rules"));
  assert.equal(err.message, "segments[2].condition.purchases_30d.$gt: expected a number");
  assert.equal(await third.evaluate(() => window.sm._get("rulesVersion")), "2026-11-22.1");

  // A failed fetch is reported too, and changes nothing.
  fs.rmSync(rulesFile);
  const fourth = await open(context, options);
  await until(() => fourth.evaluate(() => window.smErrors.some((e) => e.code === "rules_fetch_failed")), 5000, "rules_fetch_failed");
  assert.equal(await fourth.evaluate(() => window.sm._get("rulesVersion")), "2026-11-22.1");
  fs.writeFileSync(rulesFile, JSON.stringify(SEED));
  await context.close();
});

test("the later wasm module (segment engine, delivery's sending) comes after the page starts: what was recorded meanwhile counts and is sent then, and a failed fetch is tried again", async () => {
  const context = await browser.newContext();
  const engineRequests = [];
  context.on("request", (req) => req.url().endsWith("/segmint_engine.wasm") && engineRequests.push(req.url()));
  let release;
  const held = new Promise((resolve) => (release = resolve));
  await context.route("**/segmint_engine.wasm", async (route) => {
    await held;
    await route.continue();
  });
  const page = await context.newPage();
  await page.goto(pageUrl({ rules: SEED, flushIntervalMs: 50 }));
  await page.waitForFunction(() => window.sm && window.sm._recorder);
  // Recording works before it: four orders, no segments yet, none sent.
  for (let i = 0; i < 4; i++) await page.evaluate((o) => window.sm.orderCompleted(o), order(10, "books"));
  assert.deepEqual(await page.evaluate(() => window.sm.segments()), []);
  await until(() => engineRequests.length === 1, 5000, "the later module requested at idle");
  const me = await page.evaluate(() => window.sm.anonymousId());
  const mine = () => rx.state.messages.filter((m) => m.anonymousId === me);
  await page.waitForTimeout(300); // four flush intervals: nothing may go yet
  assert.equal(mine().length, 0, "nothing sent before the later module");
  const flushed = page.evaluate(() => window.sm.flush());
  release();
  assert.deepEqual(await flushed, { sent: 4, pending: 0 }, "the four orders, once it is there");
  await page.evaluate(() => window.sm.segmentsReady);
  assert.deepEqual(await page.evaluate(() => window.sm.segments()), ["frequent-buyer", "bargain-hunter", "category-enthusiast", "new-user"]);
  assert.deepEqual(await page.evaluate(() => window.smErrors), []);
  await page.close();

  // No rules and no gzip: the module is still fetched (it sends). A
  // failed fetch is reported, and tried again once the browser is online.
  let fail = true;
  await context.unroute("**/segmint_engine.wasm");
  await context.route("**/segmint_engine.wasm", (route) => (fail ? route.abort() : route.continue()));
  const plain = await context.newPage();
  await plain.goto(pageUrl({ compress: false, flushIntervalMs: 50 }));
  await plain.evaluate(() => window.smReady);
  await plain.evaluate(() => window.sm.track("Viewed", {}));
  await until(() => plain.evaluate(() => window.smErrors.some((e) => e.code === "load_failed")), 10_000, "load_failed reported");
  fail = false;
  await plain.evaluate(() => dispatchEvent(new Event("online")));
  await until(() => rx.state.messages.some((m) => m.anonymousId === me && m.event === "Viewed"), 10_000, "sent after the retry");
  await context.close();
});
