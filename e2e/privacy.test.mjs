// Consent, Global Privacy Control, reset, declarative capture and debug
// output, in real Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { addEmbed, addStub, launch, launchBlockingCookies, receiver, stubSnippet, until, visitorMessages } from "./harness.mjs";

let browser, rx;
before(async () => {
  rx = await receiver();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await rx?.close();
});

const url = (options) => `${rx.origin}/auto.html?o=${encodeURIComponent(JSON.stringify({ endpoint: rx.origin, flushIntervalMs: 100, ...options }))}`;

async function open(context, options, { gpc = false, clock = false } = {}) {
  if (gpc) {
    // navigator.globalPrivacyControl, as Firefox and Brave set it.
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true }));
  }
  const page = await context.newPage();
  if (clock) await page.clock.install();
  page.requests = [];
  page.on("request", (r) => page.requests.push(r.url()));
  await page.goto(url(options));
  await page.evaluate(() => window.smReady);
  return page;
}

const storage = (page) =>
  page.evaluate(() => ({ local: Object.keys(localStorage), session: Object.keys(sessionStorage), cookie: document.cookie }));
const sdkRequests = (page) => page.requests.filter((u) => u.includes("/v1/"));
const eventsOf = (run) => rx.state.messages.filter((m) => m.properties?.run === run);

test("pending consent: no cookie, no storage, no request until granted", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { consent: "pending", rulesUrl: `${rx.origin}/v1/rules` });
  await page.evaluate(() => window.trackMany("pending", 0, 5));
  await page.waitForTimeout(600);
  assert.deepEqual(await storage(page), { local: [], session: [], cookie: "" });
  assert.deepEqual(sdkRequests(page), [], "not even the rules");
  assert.deepEqual(await context.cookies(), []);
  await page.evaluate(() => window.sm.consent("granted"));
  await until(() => eventsOf("pending").length === 5, 5000, "the held events");
  const after = await storage(page);
  assert.match(after.cookie, /sgm_aid=[0-9a-f-]{36}/);
  assert.match(after.cookie, /sgm_consent=granted/);
  // The choice is remembered: the next page starts granted.
  const next = await open(context, { consent: "pending" });
  assert.equal(await next.evaluate(() => window.sm.consent()), "granted");
  await context.close();
});

test("consent() called before segmint is ready (a consent banner's script, the stub's queue) holds from the start: nothing is written first", async () => {
  /** A context that logs every cookie and localStorage write. */
  async function logging() {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      window.writes = [];
      const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
      Object.defineProperty(Document.prototype, "cookie", {
        configurable: true,
        get() {
          return cookie.get.call(this);
        },
        set(v) {
          // Deletions (an empty value) are not writes.
          const [name, value] = v.split(";")[0].split("=");
          if (value) window.writes.push(name.trim());
          cookie.set.call(this, v);
        },
      });
      const setItem = Storage.prototype.setItem;
      Storage.prototype.setItem = function (key, value) {
        window.writes.push(`storage:${key}`);
        return setItem.call(this, key, value);
      };
    });
    return context;
  }
  for (const state of ["pending", "denied"]) {
    const context = await logging();
    const page = await context.newPage();
    await page.goto(`${rx.origin}/blank.html`);
    const writes = await page.evaluate(
      async ([state, origin]) => {
        const { load } = await import("/pkg/index.js");
        const sm = load({ endpoint: origin, flushIntervalMs: 100 });
        sm.consent(state);
        sm.track("Held or dropped");
        await sm.ready;
        await new Promise((r) => setTimeout(r, 300));
        return window.writes;
      },
      [state, rx.origin],
    );
    // Only the choice itself: its cookie (denied) and the signal to other tabs.
    assert.deepEqual(
      writes.filter((w) => w !== "storage:sgm_consent"),
      state === "denied" ? ["sgm_consent"] : [],
      `consent("${state}")`,
    );
    assert.equal(await page.evaluate(() => document.cookie.includes("sgm_aid")), false);
    await context.close();
  }
  // The stub's queue, replayed by the embed.
  const context = await logging();
  const page = await context.newPage();
  await page.goto(`${rx.origin}/blank.html`);
  await addStub(page);
  await page.evaluate(() => window.segmint.consent("pending"));
  await addEmbed(page);
  await page.evaluate(() => window.segmint.ready);
  await page.waitForTimeout(300);
  assert.deepEqual((await page.evaluate(() => window.writes)).filter((w) => w !== "storage:sgm_consent"), []);
  await context.close();
});

test("pending then denied: held events are dropped, nothing is kept", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { consent: "pending" });
  await page.evaluate(() => window.trackMany("denied", 0, 5));
  await page.evaluate(() => window.sm.consent("denied"));
  await page.evaluate(() => window.trackMany("denied", 5, 10));
  await page.waitForTimeout(600);
  assert.equal(eventsOf("denied").length, 0);
  const s = await storage(page);
  assert.deepEqual(s.local, []);
  assert.equal(s.cookie, "sgm_consent=denied", "only the choice is kept");
  assert.deepEqual(sdkRequests(page), []);
  await context.close();
});

test("denying after granting deletes the cookie, queue, profile and cached segments", async () => {
  rx.reset();
  const context = await browser.newContext();
  const rules = { version: "1", traits: { n: { event: "Order Completed", aggregate: "count", window_days: 30 } }, segments: [{ id: "buyer", condition: { n: { $gte: 1 } } }] };
  const page = await open(context, { rules, flushIntervalMs: 60_000 });
  await page.evaluate(() => window.sm.orderCompleted({ order_id: "o1", products: [{ product_id: "p" }] }));
  await page.evaluate(() => window.trackMany("wipe", 0, 3));
  await page.waitForTimeout(100);
  const before = await storage(page);
  assert.ok(before.local.some((k) => k.startsWith("sgm_q.")) && before.local.includes("sgm_profile"));
  assert.deepEqual(await page.evaluate(() => window.sm.segments()), ["buyer"]);
  await page.evaluate(() => window.sm.consent("denied"));
  const after = await storage(page);
  assert.deepEqual(after.local, [], "queue, profile, ids, rules cache: all gone");
  assert.deepEqual(after.session, []);
  assert.equal(after.cookie, "sgm_consent=denied");
  assert.deepEqual(await page.evaluate(() => window.sm.segments()), []);
  await page.waitForTimeout(300);
  assert.equal(eventsOf("wipe").length, 0, "the dropped queue is never sent");
  await context.close();
});

test("a choice made in one tab holds in the shopper's other open tabs", async () => {
  rx.reset();
  const context = await browser.newContext();
  // Both tabs start with the site's default, pending; the shopper answers
  // the banner in tab A.
  const a = await open(context, { consent: "pending" });
  const b = await open(context, { consent: "pending" });
  await b.evaluate(() => window.trackMany("held-in-b", 0, 3));
  await a.evaluate(() => window.sm.consent("granted"));
  await until(() => eventsOf("held-in-b").length === 3, 5000, "tab B's held events, once A granted");
  assert.equal(await b.evaluate(() => window.sm.consent()), "granted");
  const id = await a.evaluate(() => window.sm.anonymousId());
  assert.equal(await b.evaluate(() => window.sm.anonymousId()), id, "one visitor, one id");

  // Then they withdraw it in tab A: tab B stops at once and keeps nothing.
  await b.evaluate(() => window.trackMany("queued-in-b", 0, 2));
  await a.evaluate(() => window.sm.consent("denied"));
  await until(async () => (await b.evaluate(() => window.sm.consent())) === "denied", 5000, "tab B to learn of the denial");
  await b.evaluate(() => window.trackMany("after-denial", 0, 3));
  await b.waitForTimeout(400);
  assert.equal(eventsOf("after-denial").length, 0, "nothing recorded after the denial");
  assert.deepEqual((await storage(b)).local, [], "tab B wrote nothing back");
  assert.equal((await storage(b)).cookie, "sgm_consent=denied");
  assert.deepEqual((await context.cookies()).map((c) => c.name), ["sgm_consent"]);
  await context.close();
});

test("a tab that missed another tab's choice (frozen meanwhile) takes it from the cookie on its next heartbeat", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, {}, { clock: true });
  // The choice, as another tab leaves it, without the storage event this
  // tab would have heard.
  await page.evaluate(() => (document.cookie = "sgm_consent=denied; path=/"));
  assert.equal(await page.evaluate(() => window.sm.consent()), "granted", "not before the heartbeat");
  await page.clock.runFor(31_000);
  assert.equal(await page.evaluate(() => window.sm.consent()), "denied");
  await page.evaluate(() => window.trackMany("missed", 0, 2));
  await page.clock.runFor(1_000);
  assert.equal(eventsOf("missed").length, 0);
  assert.deepEqual((await storage(page)).local, []);
  await context.close();
});

test("Global Privacy Control means denied unless the site grants", async () => {
  rx.reset();
  let context = await browser.newContext();
  let page = await open(context, {}, { gpc: true });
  assert.equal(await page.evaluate(() => window.sm.consent()), "denied");
  await page.evaluate(() => window.trackMany("gpc", 0, 3));
  await page.waitForTimeout(400);
  assert.equal(eventsOf("gpc").length, 0);
  assert.deepEqual((await storage(page)).local, []);
  await context.close();

  context = await browser.newContext();
  page = await open(context, { consent: "granted" }, { gpc: true });
  assert.equal(await page.evaluate(() => window.sm.consent()), "granted", "an explicit grant by the site wins");
  await context.close();

  context = await browser.newContext();
  page = await open(context, { respectGpc: false }, { gpc: true });
  assert.equal(await page.evaluate(() => window.sm.consent()), "granted", "respectGpc: false opts out");
  await context.close();
});

test("a visit that starts denied (a remembered choice, or Global Privacy Control) leaves nothing an earlier granted visit stored", async () => {
  for (const how of ["remembered", "gpc"]) {
    rx.reset();
    const context = await browser.newContext();
    // A granted visit: ids, traits with an email, a profile, queued events.
    const rules = { version: "1", traits: { n: { event: "Order Completed", aggregate: "count", window_days: 30 } }, segments: [] };
    const first = await open(context, { rules, flushIntervalMs: 60_000 });
    await first.evaluate(() => window.sm.identify("u1", { email: "a@example.com" }));
    await first.evaluate(() => window.trackMany("earlier", 0, 3));
    const oldId = await first.evaluate(() => window.sm.anonymousId());
    await until(async () => (await storage(first)).local.some((k) => k.startsWith("sgm_q.")), 5000, "the stored queue");
    const before = await storage(first);
    for (const key of ["sgm_uid", "sgm_traits", "sgm_aid", "sgm_profile"]) assert.ok(before.local.includes(key), key);
    assert.ok(before.cookie.includes(`sgm_aid=${oldId}`));
    await first.close();
    // Its page-hide beacon may carry the events (the granted visit's to
    // send); what stays stored must never go from the denied visit.
    await new Promise((r) => setTimeout(r, 300));
    const sent = eventsOf("earlier").length;
    // The next visit starts denied.
    if (how === "remembered") await context.addCookies([{ name: "sgm_consent", value: "denied", url: rx.origin }]);
    const next = await open(context, {}, { gpc: how === "gpc" });
    assert.equal(await next.evaluate(() => window.sm.consent()), "denied");
    const after = await storage(next);
    assert.deepEqual(after.local.filter((k) => k.startsWith("sgm_")), [], `${how}: localStorage`);
    assert.deepEqual(after.session, [], `${how}: sessionStorage`);
    assert.equal(after.cookie, how === "remembered" ? "sgm_consent=denied" : "", `${how}: cookies`);
    assert.notEqual(await next.evaluate(() => window.sm.anonymousId()), oldId, `${how}: the old id is not taken up`);
    await next.waitForTimeout(300);
    assert.equal(eventsOf("earlier").length, sent, `${how}: the stored queue is not sent`);
    await context.close();
  }
});

test("a shopper who blocks cookies in Chrome's settings: tracking, segments and banners work without storage, nothing throws", async () => {
  rx.reset();
  const context = await launchBlockingCookies();
  const problems = [];
  const rules = {
    version: "no-cookies-1",
    traits: {
      avg_price_30d: { event: "Order Completed", aggregate: "avg", property: "products.price", window_days: 30 },
      days_since_first_seen: { builtin: "days_since_first_seen" },
    },
    segments: [
      { id: "bargain-hunter", priority: 30, condition: { avg_price_30d: { $lt: 20 } } },
      { id: "new-user", priority: 10, condition: { days_since_first_seen: { $lte: 7 } } },
    ],
  };
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(e.message));
  const options = { endpoint: rx.origin, flushIntervalMs: 100, rules, sticky: false };
  await page.goto(`${rx.origin}/slots.html?o=${encodeURIComponent(JSON.stringify(options))}`);
  // The setting is in force: the page itself cannot read localStorage.
  assert.match(await page.evaluate(() => { try { return String(localStorage.length); } catch (e) { return e.name; } }), /SecurityError/);
  assert.equal(await page.evaluate(() => window.smReady), true, "load() and ready did not fail");
  const hero = () => page.evaluate(() => [...document.querySelectorAll("#hero [data-banner]")].map((e) => e.dataset.banner));
  assert.deepEqual(await hero(), ["new-user"]);
  await page.evaluate(() => {
    window.sm.track("Test Event", { run: "no-cookies" });
    window.sm.orderCompleted({ order_id: "o1", products: [{ product_id: "p", price: 5, quantity: 1 }], run: "no-cookies" });
  });
  assert.deepEqual(await page.evaluate(() => window.sm.segments()), ["bargain-hunter", "new-user"]);
  assert.deepEqual(await hero(), ["bargain-hunter"]);
  await page.evaluate(() => window.sm.flush());
  const mine = await visitorMessages(rx, page);
  assert.deepEqual(new Set(mine.map((m) => m.event)), new Set(["Test Event", "Order Completed", "Promotion Viewed"]));
  // Storage's refusal is reported once, and nothing else is.
  assert.deepEqual(await page.evaluate(() => window.smErrors.map((e) => e.code)), ["storage_unavailable"]);

  // The script-tag embed, its stub's queue replayed.
  const embed = await context.newPage();
  embed.on("pageerror", (e) => problems.push(e.message));
  await embed.goto(`${rx.origin}/blank.html`);
  await addStub(embed);
  await embed.evaluate(() => window.segmint.track("Test Event", { run: "no-cookies-embed" }));
  await addEmbed(embed);
  await until(() => eventsOf("no-cookies-embed").length === 1, 10_000, "the embed's event");
  assert.deepEqual(problems, []);
  await context.close();
});

test("in a sandboxed frame (reading document.cookie and localStorage throws), the embed runs and its events arrive", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  const logged = [];
  page.on("console", (m) => logged.push(m.text()));
  await page.goto(`${rx.origin}/blank.html`);
  const stub = stubSnippet();
  await page.evaluate(({ origin, stub }) => {
    const frame = document.createElement("iframe");
    frame.sandbox = "allow-scripts"; // an opaque origin: no cookies, no storage
    frame.srcdoc = `<script>${stub}<\/script>
      <script>
        try { document.cookie; console.log("cookie readable"); } catch (e) { console.log("cookie " + e.name); }
        segmint.on("error", (e) => console.log("segmint error " + e.code));
        segmint.track("Test Event", { run: "sandboxed" });
      <\/script>
      <script async src="${origin}/pkg/embed.js" data-endpoint="${origin}" data-options='{"flushIntervalMs":100}'><\/script>`;
    document.body.append(frame);
  }, { origin: rx.origin, stub });
  await until(() => eventsOf("sandboxed").length === 1, 10_000, "the sandboxed frame's event");
  assert.ok(logged.includes("cookie SecurityError"), logged.join("\n"));
  assert.deepEqual(logged.filter((l) => l.startsWith("segmint error")), ["segmint error storage_unavailable"]);
  assert.deepEqual(problems, []);
  await context.close();
});

test("reset() rotates the anonymous id; queued events keep the old one", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { flushIntervalMs: 60_000 });
  const first = await page.evaluate(async () => {
    await window.sm.identify("u-1", { plan: "pro" });
    window.trackMany("reset", 0, 2);
    const id = window.sm.anonymousId();
    window.sm.reset();
    window.trackMany("reset", 2, 4);
    await window.sm.flush();
    return id;
  });
  const second = await page.evaluate(() => window.sm.anonymousId());
  assert.notEqual(first, second);
  assert.equal(await page.evaluate(() => window.sm.userId()), null);
  assert.deepEqual(await page.evaluate(() => window.sm.traits()), {});
  const got = eventsOf("reset").sort((a, b) => a.properties.n - b.properties.n);
  assert.deepEqual(got.map((m) => m.anonymousId), [first, first, second, second]);
  assert.deepEqual(got.map((m) => m.userId ?? null), ["u-1", "u-1", null, null]);
  const cookie = (await context.cookies()).find((c) => c.name === "sgm_aid");
  assert.equal(cookie.value, second);
  await context.close();
});

test("declarative capture: clicks and searches from markup, static and added later", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, {});
  await page.evaluate(() => {
    document.body.insertAdjacentHTML(
      "beforeend",
      `<button id="static" data-segmint-track="Wishlist Added" data-segmint-product-id="sh-101" data-segmint-price="34.5" data-segmint-sku="007" data-segmint-variant-id="12345678901234567891" data-segmint-size="10.50">♡</button>
       <form id="search" data-segmint-search action="javascript:void 0"><input type="search" name="q"></form>`,
    );
  });
  await page.click("#static");
  await page.fill("#search input", "red shoes");
  await page.press("#search input", "Enter");
  // An element added after load, with a handler that stops propagation.
  await page.evaluate(() => {
    const b = document.createElement("a");
    b.id = "late";
    b.href = "#";
    b.textContent = "late";
    b.setAttribute("data-segmint-track", "Late Click");
    b.setAttribute("data-segmint-n", "-3");
    b.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); });
    document.body.append(b);
  });
  await page.click("#late");
  await page.evaluate(() => window.sm.flush());
  const byName = (n) => rx.state.messages.find((m) => m.event === n);
  assert.deepEqual(byName("Wishlist Added").properties, { product_id: "sh-101", price: 34.5, sku: "007", variant_id: "12345678901234567891", size: 10.5 });
  assert.deepEqual(byName("Products Searched").properties, { query: "red shoes" });
  assert.deepEqual(byName("Late Click").properties, { n: -3 });
  // One listener per kind on the document, whatever the number of elements.
  const cdp = await context.newCDPSession(page);
  const doc = await cdp.send("Runtime.evaluate", { expression: "document" });
  const { listeners } = await cdp.send("DOMDebugger.getEventListeners", { objectId: doc.result.objectId });
  assert.deepEqual(listeners.map((l) => l.type).filter((t) => t === "click" || t === "submit").sort(), ["click", "submit"]);
  const onButton = await cdp.send("Runtime.evaluate", { expression: "document.getElementById('static')" });
  assert.deepEqual((await cdp.send("DOMDebugger.getEventListeners", { objectId: onButton.result.objectId })).listeners, []);
  await context.close();
});

test("autocapture can be turned off per kind", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await open(context, { autocapture: { clicks: false } });
  await page.evaluate(() =>
    document.body.insertAdjacentHTML(
      "beforeend",
      `<button id="b" data-segmint-track="Nope">x</button><form id="f" data-segmint-search action="javascript:void 0"><input name="q" value="lamps"></form>`,
    ),
  );
  await page.click("#b");
  await page.evaluate(() => document.getElementById("f").requestSubmit());
  await page.evaluate(() => window.sm.flush());
  assert.equal(rx.state.messages.filter((m) => m.event === "Nope").length, 0);
  assert.equal((await visitorMessages(rx, page)).filter((m) => m.event === "Products Searched").length, 1);
  await context.close();
});

test("debug: true (or localStorage.segmint_debug) logs events, batches, retries, rules and segments", async () => {
  rx.reset();
  const context = await browser.newContext();
  const page = await context.newPage();
  const lines = [];
  page.on("console", (m) => m.text().startsWith("[segmint]") && lines.push(m.text()));
  await page.goto(`${rx.origin}/blank.html`);
  await page.evaluate(() => localStorage.setItem("segmint_debug", "1"));
  rx.state.faults = [503];
  const rules = { version: "dbg-1", traits: {}, segments: [{ id: "everyone", condition: {} }] };
  await page.goto(url({ rules, retry: { baseMs: 50, capMs: 100 } }));
  await page.evaluate(() => window.smReady);
  await page.evaluate(() => window.sm.track("Debugged", { a: 1 }));
  await until(() => rx.state.messages.some((m) => m.event === "Debugged"), 5000, "delivery after a retry");
  await page.waitForTimeout(100);
  const text = lines.join("\n");
  assert.match(text, /rules dbg-1 in force/);
  assert.match(text, /segments \{"segments":\["everyone"\]/);
  assert.match(text, /event Debugged \{"a":1\}/);
  assert.match(text, /batch of 1 event\(s\)/);
  assert.match(text, /batch answered 503: retry in \d+ ms/);
  assert.match(text, /batch answered 200: 1 event\(s\) done/);
  await context.close();
});
