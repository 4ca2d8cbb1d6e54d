// Identity in real Chromium: the anonymous-id cookie's domain is the
// registrable domain, found by probing (the browser refuses public
// suffixes), unless `cookie.domain` says otherwise.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, receiver, openWithSdk, visitorMessages } from "./harness.mjs";

let browser, rx;
before(async () => {
  rx = await receiver();
  browser = await launch({ hosts: ["*.co.uk", "*.example.com"] });
});
after(async () => {
  await browser?.close();
  await rx?.close();
});

test("the cookie goes on the registrable domain, found by probing", async () => {
  const context = await browser.newContext();
  const url = `http://shop.example.co.uk:${rx.port}/blank.html`;
  const page = await openWithSdk(context, url, { endpoint: rx.origin });
  const id = await page.evaluate(() => window.sm.anonymousId());
  const cookies = await context.cookies();
  const aid = cookies.find((c) => c.name === "sgm_aid");
  assert.equal(aid.value, id);
  // co.uk is a public suffix: the browser refused it; example.co.uk took it.
  assert.equal(aid.domain, ".example.co.uk");
  assert.equal(aid.sameSite, "Lax");
  assert.equal(aid.secure, false, "Secure only on https");
  const days = (aid.expires * 1000 - Date.now()) / 86_400_000;
  assert.ok(days > 364 && days <= 365.01, `365 days, got ${days}`);
  assert.ok(!cookies.some((c) => c.name === "sgm_probe"), "the probe cookie is cleaned up");
  // A sibling subdomain shares the id.
  const other = await openWithSdk(context, `http://www.example.co.uk:${rx.port}/blank.html`, { endpoint: rx.origin });
  assert.equal(await other.evaluate(() => window.sm.anonymousId()), id);
  await context.close();
});

test("cookie.domain overrides the probe; host-only on an IP address", async () => {
  const context = await browser.newContext();
  const page = await openWithSdk(context, `http://a.b.example.com:${rx.port}/blank.html`, {
    endpoint: rx.origin,
    cookie: { domain: "b.example.com" },
  });
  const aid = (await context.cookies()).find((c) => c.name === "sgm_aid");
  assert.equal(aid.domain, ".b.example.com");
  assert.equal(await page.evaluate(() => window.sm.anonymousId()), aid.value);
  const ipPage = await openWithSdk(context, `${rx.origin}/blank.html`, { endpoint: rx.origin });
  const ipCookie = (await context.cookies(rx.origin)).find((c) => c.name === "sgm_aid");
  assert.equal(ipCookie.domain, "127.0.0.1", "host-only");
  assert.ok(await ipPage.evaluate(() => window.sm.anonymousId()));
  await context.close();
});

test("the cookie is renewed on each visit", async () => {
  const context = await browser.newContext();
  await context.addCookies([
    { name: "sgm_aid", value: "123e4567-e89b-42d3-a456-426614174000", domain: "127.0.0.1", path: "/", expires: Math.floor(Date.now() / 1000) + 3600 },
  ]);
  const page = await openWithSdk(context, `${rx.origin}/blank.html`, { endpoint: rx.origin });
  assert.equal(await page.evaluate(() => window.sm.anonymousId()), "123e4567-e89b-42d3-a456-426614174000");
  const aid = (await context.cookies()).find((c) => c.name === "sgm_aid");
  assert.ok(aid.expires * 1000 - Date.now() > 364 * 86_400_000, "renewed to 365 days");
  await context.close();
});

test("options are validated and errors name the option", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${rx.origin}/blank.html`);
  await page.waitForFunction(() => window.segmintModule);
  const results = await page.evaluate(async (endpoint) => {
    const out = [];
    for (const options of [
      { endpoint, flushInterval: 5 },
      { endpoint: "collector.example" },
      { endpoint, flushIntervalMs: -1 },
      { endpoint, cookie: { domian: "x" } },
      { endpoint: `${endpoint}/collect?key=1` },
      endpoint, // the URL alone, not in an object
    ]) {
      const sm = window.segmintModule.load(options);
      const heard = [];
      sm.on("error", (e) => heard.push(e.code));
      const err = await sm.ready.then(() => null, (e) => e);
      const call = await sm.track("x").then(() => "ok", (e) => e.code);
      out.push({ code: err.code, option: err.option, message: err.message, heard, call });
    }
    return out;
  }, rx.origin);
  assert.deepEqual(results.map((r) => r.option), ["flushInterval", "endpoint", "flushIntervalMs", "cookie.domian", "endpoint", "options"]);
  assert.match(results[4].message, /without \?query or #fragment/);
  assert.match(results[5].message, /expected an object, such as load\(\{ endpoint/);
  for (const r of results) {
    assert.equal(r.code, "invalid_option");
    assert.deepEqual(r.heard, ["invalid_option"], "on('error') hears it too");
    assert.equal(r.call, "invalid_option", "calls after a failed start reject");
    assert.match(r.message, /option `/);
  }
  await context.close();
});

test("a page has one client: load() again returns it, and clicks are recorded once", async () => {
  const context = await browser.newContext();
  rx.reset();
  const page = await openWithSdk(context, `${rx.origin}/blank.html`, { endpoint: rx.origin, flushIntervalMs: 100 });
  const result = await page.evaluate(async (endpoint) => {
    // As React StrictMode runs an effect twice: the same options (in
    // another order) are no error.
    const again = window.segmintModule.load({ flushIntervalMs: 100, endpoint });
    const errorsAfterSame = window.smErrors.length;
    const other = window.segmintModule.load({ endpoint, debug: true });
    document.body.insertAdjacentHTML("beforeend", '<button id="b" data-segmint-track="Loaded Twice">x</button>');
    document.getElementById("b").click();
    await window.sm.flush();
    return { again: again === window.sm, other: other === window.sm, errorsAfterSame, errors: window.smErrors.map((e) => e.code) };
  }, rx.origin);
  assert.deepEqual(result, { again: true, other: true, errorsAfterSame: 0, errors: ["already_loaded"] });
  assert.equal((await visitorMessages(rx, page)).filter((m) => m.event === "Loaded Twice").length, 1);
  await context.close();
});

test("a client that failed to start lets go of the page: its slots show their default at once, and after a corrected load() a click is recorded once", async () => {
  const context = await browser.newContext();
  rx.reset();
  const page = await context.newPage();
  const warnings = [];
  page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  await page.goto(`${rx.origin}/blank.html`);
  await page.waitForFunction(() => window.segmintModule);
  const result = await page.evaluate(async (endpoint) => {
    document.body.insertAdjacentHTML(
      "beforeend",
      '<div id="hero" data-segmint-slot="hero"><template data-segment="default"><p>Default hero</p></template></div>' +
        '<button id="b" data-segmint-track="After Failure">x</button>',
    );
    const failed = window.segmintModule.load({ endpoint, flushIntervl: 100, antiFlickerTimeoutMs: 30_000 });
    const hiddenWhileLoading = document.getElementById("hero").style.visibility;
    await failed.ready.catch(() => {});
    const hero = document.getElementById("hero");
    const afterFailure = { visibility: hero.style.visibility, text: hero.textContent.trim() };
    let failedHeard = 0;
    const failedTrack = failed.track;
    failed.track = (...args) => (failedHeard++, failedTrack.apply(failed, args));
    const sm = (window.sm = window.segmintModule.load({ endpoint, flushIntervalMs: 100 }));
    await sm.ready;
    document.getElementById("b").click();
    await sm.flush();
    return { replaced: sm !== failed, hiddenWhileLoading, afterFailure, failedHeard };
  }, rx.origin);
  assert.deepEqual(result, {
    replaced: true,
    hiddenWhileLoading: "hidden",
    afterFailure: { visibility: "", text: "Default hero" },
    failedHeard: 0,
  });
  assert.equal((await visitorMessages(rx, page)).filter((m) => m.event === "After Failure").length, 1);
  assert.equal(warnings.filter((w) => w.includes("[segmint]")).length, 1, "only the failed start warns: " + warnings.join("\n"));
  await context.close();
});

test("a single-page app's events carry the page they happen on", async () => {
  const context = await browser.newContext();
  rx.reset();
  const page = await openWithSdk(context, `${rx.origin}/blank.html?utm_source=ads`, { endpoint: rx.origin, flushIntervalMs: 100 });
  await page.evaluate(async () => {
    await window.sm.track("Before Navigation");
    // A client-side route change: no reload, no page() call.
    history.pushState({}, "", "/shop/p/42?utm_source=news");
    document.title = "Shoe 42";
    await window.sm.productClicked({ product_id: "p42" });
    await window.sm.flush();
  });
  const [before, after] = await visitorMessages(rx, page);
  assert.equal(before.context.page.path, "/blank.html");
  assert.deepEqual(before.context.campaign, { source: "ads" });
  assert.deepEqual(
    { path: after.context.page.path, search: after.context.page.search, title: after.context.page.title, url: after.context.page.url },
    { path: "/shop/p/42", search: "?utm_source=news", title: "Shoe 42", url: `${rx.origin}/shop/p/42?utm_source=news` },
  );
  assert.deepEqual(after.context.campaign, { source: "news" });
  await context.close();
});

test("stripUrlParams: the named URL parameters leave the page in no event, whatever their case", async () => {
  const context = await browser.newContext();
  rx.reset();
  // A sign-in link's landing page, with the shopper's email and a token.
  const page = await openWithSdk(context, `${rx.origin}/blank.html?Email=a%40b.example&utm_source=news&x=1#access_token=s3cr3t`, {
    endpoint: rx.origin,
    flushIntervalMs: 100,
    stripUrlParams: ["email", "access_token", "token"],
  });
  await page.evaluate(async () => {
    await window.sm.page();
    // A client-side route change to a reset-password page.
    history.pushState({}, "", "/account/reset?token=t0k3n&step=2");
    await window.sm.track("Reset Viewed");
    await window.sm.flush();
  });
  const [landing, reset] = await visitorMessages(rx, page);
  assert.equal(landing.context.page.url, `${rx.origin}/blank.html?utm_source=news&x=1`);
  assert.equal(landing.context.page.search, "?utm_source=news&x=1");
  assert.equal(landing.properties.url, `${rx.origin}/blank.html?utm_source=news&x=1`);
  assert.deepEqual(landing.context.campaign, { source: "news" });
  assert.equal(reset.context.page.url, `${rx.origin}/account/reset?step=2`);
  const sent = JSON.stringify(rx.state.batches);
  for (const secret of ["a%40b.example", "a@b.example", "s3cr3t", "t0k3n"]) assert.ok(!sent.includes(secret), `${secret} was sent`);
  await context.close();
});

test("a page that keeps 20 KB of state in its query still records its events (URL cut to 2 KB)", async () => {
  const context = await browser.newContext();
  rx.reset();
  const page = await openWithSdk(context, `${rx.origin}/blank.html`, { endpoint: rx.origin });
  const errors = await page.evaluate(async () => {
    // A single-page app writes its state into the URL (no request: a
    // server would refuse a request line this long).
    history.replaceState({}, "", `/configure?utm_source=news&state=${"x".repeat(20_000)}`);
    await window.sm.orderCompleted({ order_id: "big-url", total: 20, products: [{ product_id: "p", price: 20 }] });
    await window.sm.flush();
    return window.smErrors;
  });
  assert.deepEqual(errors, []);
  const [order] = await visitorMessages(rx, page);
  assert.equal(order.event, "Order Completed");
  assert.equal(order.context.page.url.length, 2048);
  assert.deepEqual(order.context.campaign, { source: "news" });
  await context.close();
});

test("values JSON cannot carry are refused with a code, and nothing else is lost", async () => {
  const context = await browser.newContext();
  rx.reset();
  const page = await openWithSdk(context, `${rx.origin}/blank.html`, { endpoint: rx.origin });
  const codes = await page.evaluate(async () => {
    const cyclic = { a: 1 };
    cyclic.self = cyclic;
    const cases = [
      { fn() {} },
      { s: Symbol("x") },
      { big: 10n },
      { deep: { n: NaN } },
      { list: [1, Infinity] },
      cyclic,
      { get broken() { throw new Error("a getter that throws"); } },
      "not an object",
      [1, 2],
    ];
    const out = [];
    for (const c of cases) out.push(await window.sm.track("Bad", c).then(() => "ok", (e) => `${e.code} ${e.path || e.argument}`));
    out.push(await window.sm.track("Too Big", { x: "y".repeat(40_000) }).then(() => "ok", (e) => e.code));
    // What JSON.stringify writes: toJSON, undefined in an array, nesting.
    await window.sm.track("Good", { ok: true, at: new Date(0), list: [1, undefined, "x"], nested: { n: 2, gone: undefined } });
    await window.sm.flush();
    return out;
  });
  assert.deepEqual(codes, [
    "unserializable_value properties.fn",
    "unserializable_value properties.s",
    "unserializable_value properties.big",
    "unserializable_value properties.deep.n",
    "unserializable_value properties.list[1]",
    "unserializable_value properties",
    "unserializable_value properties",
    "invalid_argument properties",
    "invalid_argument properties",
    "event_too_large",
  ]);
  const sent = await visitorMessages(rx, page);
  assert.deepEqual(sent.map((m) => m.event), ["Good"]);
  assert.deepEqual(sent[0].properties, { ok: true, at: "1970-01-01T00:00:00.000Z", list: [1, null, "x"], nested: { n: 2 } });
  await context.close();
});
