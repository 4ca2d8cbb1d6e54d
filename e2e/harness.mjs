// Shared set-up for the end-to-end suites: Debian's Chromium driven by
// playwright-core, the local receiver serving the built package (pkg/),
// test pages and the demo, and helpers to load segmint in a page.

import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createReceiver } from "./receiver.mjs";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Chromium's flags: quiet and offline except for our own hosts. Extra
 * host names (e.g. shop.example.co.uk) resolve to 127.0.0.1; `args` are
 * further command-line flags. */
function chromiumArgs({ hosts = [], args = [] } = {}) {
  const rules = [...hosts.map((h) => `MAP ${h} 127.0.0.1`), "MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1", "EXCLUDE localhost"];
  return [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    `--host-resolver-rules=${rules.join(", ")}`,
    ...args,
  ];
}

/** Debian's Chromium (see chromiumArgs for `hosts` and `args`).
 * `bfcache`: keep the back/forward cache, which playwright turns off by
 * default. */
export function launch({ hosts = [], args = [], bfcache = false } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    ...(bfcache ? { ignoreDefaultArgs: ["--disable-back-forward-cache"] } : {}),
    args: chromiumArgs({ hosts, args }),
  });
}

/** A browser context on its own profile whose settings block every
 * site's cookies and storage, as a shopper can in Chrome's settings
 * ("Block all cookies"): `document.cookie` stays empty and reading
 * `localStorage` throws a SecurityError. Close the context to close it. */
export async function launchBlockingCookies() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "segmint-nocookies-"));
  await fs.mkdir(path.join(dir, "Default"));
  await fs.writeFile(
    path.join(dir, "Default", "Preferences"),
    JSON.stringify({ profile: { default_content_setting_values: { cookies: 2 } } }),
  );
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: chromiumArgs(),
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  return context;
}

/** A receiver serving pkg/ at /pkg/, e2e/pages/ at / (and `extra`). */
export async function receiver(options = {}) {
  const statics = [
    ...(options.statics || []),
    { prefix: "/pkg/", dir: path.join(ROOT, "pkg") },
    { prefix: "/www/", dir: path.join(ROOT, "www") },
    { prefix: "/", dir: path.join(ROOT, "e2e/pages") },
  ];
  const r = createReceiver({ ...options, statics });
  const port = await r.listen(0);
  r.origin = `http://127.0.0.1:${port}`;
  r.port = port;
  return r;
}

/** The stub snippet README shows (pkg/stub.min.js). */
export const stubSnippet = () => readFileSync(path.join(ROOT, "pkg/stub.min.js"), "utf8");

/** Runs the stub snippet in `page`: window.segmint becomes a queue. */
export async function addStub(page) {
  await page.addScriptTag({ content: stubSnippet() });
}

/** Adds the script-tag embed to `page` (endpoint "/", batches after
 * 100 ms), as a tag manager would; resolves once it has run. */
export function addEmbed(page, options = { flushIntervalMs: 100 }) {
  return page.evaluate(
    (options) =>
      new Promise((resolve) => {
        const script = document.createElement("script");
        script.src = "/pkg/embed.js";
        script.dataset.endpoint = "/";
        script.dataset.options = JSON.stringify(options);
        script.onload = resolve;
        document.head.append(script);
      }),
    options,
  );
}

/** Opens the blank test page and starts segmint with `options` in it;
 * the client is window.sm. Page errors fail the test. */
export async function openWithSdk(context, url, options) {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.problems = problems;
  await page.goto(url);
  await page.waitForFunction(() => window.segmintModule);
  await page.evaluate((options) => {
    window.smErrors = [];
    window.sm = window.segmintModule.load(options);
    window.sm.on("error", (e) => window.smErrors.push({ code: e.code, message: e.message, status: e.status }));
    return window.sm.ready.then(() => true);
  }, options);
  return page;
}

/** The messages `rx` got from the visitor in `page` (by `window.sm`'s
 * anonymous id). Tests count these rather than everything received: a
 * page an earlier test closed may still be handing its last batch over. */
export async function visitorMessages(rx, page) {
  const me = await page.evaluate(() => window.sm.anonymousId());
  return rx.state.messages.filter((m) => m.anonymousId === me);
}

/** Polls `fn` until it returns a truthy value (or throws after `ms`). */
/** A TCP port free on 127.0.0.1 now. */
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

// Headless Chromium says "HeadlessChrome", which the collector counts as a
// bot: shoppers in the tests present the user agent of the browser it is.
export const SHOPPER = { userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36" };

export async function until(fn, ms = 15_000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Ids tracked in a page, per message kind: each test records them
 * itself and compares with what the receiver got. */
export function tally(expected, received) {
  const counts = new Map();
  for (const id of received) counts.set(id, (counts.get(id) || 0) + 1);
  const lost = expected.filter((id) => !counts.has(id));
  let duplicates = 0;
  for (const id of expected) duplicates += Math.max(0, (counts.get(id) || 0) - 1);
  return { tracked: expected.length, received: received.length, lost: lost.length, duplicates, lostIds: lost };
}

/** GrowthBook hash v2 (what decides holdouts), computed independently of
 * segmint. */
function fnv1a32(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h += (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24);
  }
  return h >>> 0;
}
export const gbHashV2 = (seed, value) => (fnv1a32(String(fnv1a32(seed + value))) % 10000) / 10000;
