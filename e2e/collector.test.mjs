// The demo on the real collector: the storefront in Chromium, each of the
// four banners reached by clicking, the server's own evaluation agreeing
// with the browser's for every visitor, and the dashboard (screenshot kept
// in target/artifacts/).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { launch, until, freePort, SHOPPER, ROOT } from "./harness.mjs";

let browser, collector, origin;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-demo-"));
const visitors = [];

before(async () => {
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  const bin = path.join(ROOT, "target/debug/segmint-collector");
  collector = spawn(bin, ["--listen", `127.0.0.1:${port}`, "--database", `sqlite:${dir}/demo.db`, "--rules", "rules.json", "--www", "www", "--pkg", "pkg", "--kpi-interval", "2"], {
    cwd: ROOT,
    stdio: "ignore",
  });
  await until(async () => (await fetch(`${origin}/api/summary`).catch(() => null))?.ok, 20_000, "the collector");
  browser = await launch();
});
after(async () => {
  await browser?.close();
  collector?.kill("SIGKILL");
  fs.rmSync(dir, { recursive: true, force: true });
});

const BANNER = { "frequent-buyer": "loyal", "bargain-hunter": "bargain", "category-enthusiast": "picks", "new-user": "welcome" };

/** Opens the storefront as a new visitor; `act` clicks around; returns
 * what the hero slot shows once `segment` is the visitor's top segment. */
async function become(segment, act) {
  for (let attempt = 0; attempt < 6; attempt++) {
    const context = await browser.newContext({ ...SHOPPER, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.segmint && window.segmint.anonymousId());
    await act(page);
    await page.waitForFunction((s) => window.segmint.segments()[0] === s, segment, { timeout: 10_000 });
    const hero = await page.evaluate(() => {
      const slot = document.querySelector("[data-segmint-slot=hero]");
      return { banner: slot.querySelector(".banner")?.classList[1], variation: slot.dataset.segmintVariation };
    });
    await page.evaluate(() => window.segmint.flush());
    visitors.push({ id: await page.evaluate(() => window.segmint.anonymousId()), segments: await page.evaluate(() => window.segmint.segments()) });
    if (hero.variation === "personalized") return { context, page, hero };
    // Held out (10%): this visitor sees the default banner; a new visitor draws again.
    assert.equal(hero.banner, "plain", "a held-out visitor sees the default banner");
    assert.equal(await page.isVisible("#holdout"), true);
    await context.close();
  }
  throw new Error(`held out of ${segment} six times in a row`);
}

const buy = async (page, name) => page.click(`.card:has(h3:text-is("${name}")) .buy`);

test("each of the four banners is reachable by clicking around the storefront", async () => {
  const shown = {};
  let r = await become("new-user", async (page) => {
    await page.click(`.card:has(h3:text-is("Mechanical keyboard")) .view`);
    await page.click("dialog button");
    await page.fill(".search input", "lamp");
    await page.press(".search input", "Enter");
  });
  shown["new-user"] = r.hero.banner;
  await r.context.close();

  r = await become("bargain-hunter", (page) => buy(page, "Canvas sneakers"));
  shown["bargain-hunter"] = r.hero.banner;
  await r.context.close();

  r = await become("category-enthusiast", async (page) => {
    await buy(page, "Mechanical keyboard");
    await buy(page, "Refurbished e-reader");
  });
  shown["category-enthusiast"] = r.hero.banner;
  await r.context.close();

  r = await become("frequent-buyer", async (page) => {
    for (const name of ["Trail runners, barely worn", "Rust in Action, 1st ed.", "Desk lamp, brass", "Mechanical keyboard"]) await buy(page, name);
  });
  shown["frequent-buyer"] = r.hero.banner;
  await r.page.screenshot({ path: path.join(ROOT, "target/artifacts/storefront.png") });
  await r.context.close();

  assert.deepEqual(shown, BANNER);
});

test("server-side evaluation with segmint-core gives every visitor the browser's segments", async () => {
  assert.ok(visitors.length >= 4);
  for (const v of visitors) {
    const r = await (await fetch(`${origin}/api/users/${v.id}/segments`)).json();
    assert.deepEqual(r.server, v.segments, `visitor ${v.id}`);
    assert.equal(r.agree, true);
  }
});

test("a headless browser's events are stored but left out of the dashboard's figures", async () => {
  const summary = async () => (await fetch(`${origin}/api/summary`)).json();
  const before = await summary();
  const context = await browser.newContext(); // HeadlessChrome
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => window.segmint && window.segmint.anonymousId());
  await buy(page, "Canvas sneakers");
  await page.evaluate(() => window.segmint.flush());
  const id = await page.evaluate(() => window.segmint.anonymousId());
  await context.close();
  const stored = await (await fetch(`${origin}/api/users/${id}/segments`)).json();
  assert.ok(stored.events >= 2, "its page view and order are stored");
  const after = await summary();
  assert.equal(after.bots.users, before.bots.users + 1);
  assert.ok(after.bots.events >= before.bots.events + stored.events);
  assert.equal(after.users, before.users, "no user added");
  // (Less than its own events: a late beacon of an earlier shopper may land meanwhile.)
  assert.ok(after.events - before.events < stored.events, "its events are not counted");
});

test("the dashboard shows events, segment sizes and conversion by segment, at 1280 and 390 px", async () => {
  fs.mkdirSync(path.join(ROOT, "target/artifacts"), { recursive: true });
  for (const width of [1280, 390]) {
    const page = await browser.newPage({ ...SHOPPER, viewport: { width, height: 900 } });
    await page.goto(`${origin}/dashboard`);
    await page.waitForFunction(() => Number(document.getElementById("events").textContent.replace(/\D/g, "")) > 0);
    await page.waitForFunction(() => [...document.querySelectorAll("img[data-chart]")].every((i) => i.src && i.complete && i.naturalWidth > 0));
    const rows = await page.evaluate(() => [...document.querySelectorAll("#segments tr")].map((tr) => tr.firstChild.textContent));
    assert.deepEqual(rows, ["Frequent Buyers", "Bargain Hunters", "Category Enthusiasts", "New Users"]);
    const layout = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - innerWidth,
      charts: [...document.querySelectorAll("img[data-chart]")].map((img) => {
        const panel = img.parentElement;
        const style = getComputedStyle(panel);
        const inner = panel.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return { chart: img.dataset.chart, fills: img.getBoundingClientRect().width / inner, drawnAt: img.naturalWidth };
      }),
      cells: [...document.querySelectorAll("#segments td")].map((td) => td.textContent),
    }));
    assert.ok(layout.overflow <= 0, `${width} px: the page is ${layout.overflow} px wider than the window`);
    for (const c of layout.charts) {
      assert.ok(c.fills > 0.97, `${width} px: ${c.chart} fills ${(100 * c.fills).toFixed(0)}% of its card`);
      assert.ok(c.drawnAt <= width, `${width} px: ${c.chart} drawn ${c.drawnAt} px wide`);
    }
    // Every segment has an arm nobody was shown yet (held out or not):
    // it reads n/a, not 0.0%, and too few users is not enough data.
    assert.ok(layout.cells.some((t) => t.includes("n/a")), layout.cells.join(" | "));
    assert.ok(!layout.cells.some((t) => t.includes("0.0% / $0.00")), layout.cells.join(" | "));
    assert.ok(layout.cells.some((t) => t.includes("not enough data")));
    await page.screenshot({ path: path.join(ROOT, `target/artifacts/dashboard-${width}.png`), fullPage: true });
    await page.close();
  }
  const summary = await (await fetch(`${origin}/api/summary`)).json();
  const exposed = summary.segments.reduce((n, s) => n + s.personalized.exposed + s.holdout.exposed, 0);
  assert.ok(exposed >= 4, "exposures are counted");
  assert.equal((await fetch(`${origin}/favicon.ico`)).status, 200);
});
