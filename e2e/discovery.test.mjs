// Segments the data discovered, adopted into the rules document, are
// evaluated the same on the device and on the collector: synthetic
// traffic with planted groups, `segmint-collector discover --write`, then
// shoppers in Chromium on the storefront served with the new document.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { launch, until, freePort, SHOPPER, ROOT } from "./harness.mjs";

let browser, collector, origin, adopted;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-discovery-"));
const bin = path.join(ROOT, "target/debug/segmint-collector");

before(async () => {
  const database = `sqlite:${dir}/events.db`;
  execFileSync(bin, ["generate", "--database", database, "--users", "600", "--seed", "4"], { stdio: "ignore" });
  const rules = path.join(dir, "rules.json");
  execFileSync(bin, ["discover", "--database", database, "--rules", path.join(ROOT, "rules.json"), "--write", rules], { stdio: "ignore" });
  adopted = JSON.parse(fs.readFileSync(rules, "utf8"));
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  collector = spawn(bin, ["--listen", `127.0.0.1:${port}`, "--database", database, "--rules", rules, "--www", "www", "--pkg", "pkg"], { cwd: ROOT, stdio: "ignore" });
  await until(async () => (await fetch(`${origin}/api/summary`).catch(() => null))?.ok, 20_000, "the collector");
  browser = await launch();
});
after(async () => {
  await browser?.close();
  collector?.kill("SIGKILL");
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A shopper who does `act` on the storefront; returns their id and the
 * segments the device evaluated, once delivered. */
async function shopper(act) {
  const context = await browser.newContext({ ...SHOPPER, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => window.segmint && window.segmint.anonymousId());
  await act(page);
  await page.evaluate(() => window.segmint.flush());
  const id = await page.evaluate(() => window.segmint.anonymousId());
  const segments = await page.evaluate(() => window.segmint.segments());
  await context.close();
  return { id, segments };
}

const view = (page, name) => page.click(`.card:has(h3:text-is("${name}")) .view`).then(() => page.click("dialog button"));
const buy = (page, name) => page.click(`.card:has(h3:text-is("${name}")) .buy`);

test("the adopted rules document carries the proposals and their traits", () => {
  const discovered = adopted.segments.filter((s) => s.id.startsWith("discovered-"));
  assert.ok(discovered.length >= 2, JSON.stringify(adopted.segments.map((s) => s.id)));
  const reads = JSON.stringify(discovered.map((s) => s.condition));
  for (const name of Object.keys(adopted.traits)) assert.ok(adopted.traits[name].event || adopted.traits[name].builtin, name);
  for (const m of reads.matchAll(/"([a-z_0-9]+)":\{"\$/g)) assert.ok(m[1] in adopted.traits, `${m[1]} is defined`);
});

test("device and collector put each shopper in the same segments, discovered ones included", async (t) => {
  const shoppers = [
    // Browses and searches, never buys.
    await shopper(async (page) => {
      for (const name of ["Mechanical keyboard", "Desk lamp, brass", "Canvas sneakers"]) await view(page, name);
      for (const q of ["lamp", "book", "shoe", "desk", "rust"]) {
        await page.fill(".search input", q);
        await page.press(".search input", "Enter");
      }
    }),
    // Buys often, cheaply.
    await shopper(async (page) => {
      for (const name of ["Canvas sneakers", "Rust in Action, 1st ed.", "Canvas sneakers", "Rust in Action, 1st ed.", "Canvas sneakers"]) await buy(page, name);
    }),
  ];
  let inDiscovered = 0;
  for (const s of shoppers) {
    // Delivery is asynchronous: wait until the collector has every event
    // the device evaluated, then compare.
    let last;
    await until(
      async () => {
        last = await (await fetch(`${origin}/api/users/${s.id}/segments`)).json();
        return JSON.stringify(last.server) === JSON.stringify(s.segments);
      },
      20_000,
      `shopper ${s.id}'s segments on the collector`,
    ).catch(() => {});
    assert.deepEqual(last.server, s.segments, `shopper ${s.id}: device ${JSON.stringify(s.segments)}, collector ${JSON.stringify(last)}`);
    if (s.segments.some((id) => id.startsWith("discovered-"))) inDiscovered++;
  }
  t.diagnostic(`segments: ${shoppers.map((s) => JSON.stringify(s.segments)).join(", ")}`);
  assert.ok(inDiscovered >= 1, `no shopper in a discovered segment: ${JSON.stringify(shoppers)}`);
});

test("the discovery page runs a discovery and shows the rules JSON to adopt, at 1280 and 390 px", async () => {
  fs.mkdirSync(path.join(ROOT, "target/artifacts"), { recursive: true });
  for (const width of [1280, 390]) {
    const page = await browser.newPage({ ...SHOPPER, viewport: { width, height: 900 } });
    await page.goto(`${origin}/dashboard/discover`);
    await page.click("#run");
    await page.waitForSelector("#proposals tr", { timeout: 60_000 });
    const rows = await page.$$eval("#proposals tr", (trs) => trs.map((tr) => tr.children[1].textContent));
    assert.ok(rows.length >= 2 && rows.every((name) => name.startsWith("Discovered ")), rows.join(" | "));
    // Adopt all but the first.
    await page.click("#proposals tr:first-child input");
    await page.click("#show");
    const rules = JSON.parse(await page.inputValue("#json"));
    const ids = rules.segments.map((s) => s.id);
    const proposed = await page.$$eval("#proposals input", (inputs) => inputs.map((i) => i.dataset.id));
    assert.ok(!ids.includes(proposed[0]), `${proposed[0]} was not chosen`);
    for (const id of proposed.slice(1)) assert.ok(ids.includes(id), `${id} is adopted`);
    assert.ok(ids.includes("frequent-buyer"), "the document's own segments stay");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    assert.ok(overflow <= 0, `${width} px: the page is ${overflow} px wider than the window`);
    await page.screenshot({ path: path.join(ROOT, `target/artifacts/discover-${width}.png`), fullPage: true });
    await page.close();
  }
});
