// Main-thread cost of track() in Chromium with an empty queue and with
// 1,000 events already queued (issue 3: persisting must not cost time in
// proportion to the queue). Prints medians over many 100-call bursts.
//
//   node bench/track-cost.mjs [--reps 5]
import { launch, receiver, until } from "../e2e/harness.mjs";

const reps = Number(process.argv[process.argv.indexOf("--reps") + 1]) || 5;
// Cross-origin isolation gives performance.now() 5 µs resolution.
const rx = await receiver({ headers: { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } });
const browser = await launch();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(queued) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const busy = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;
  const options = {
    endpoint: rx.origin,
    maxQueueEvents: 100_000,
    // Steady state: rules are in force (cached after the first visit).
    rules: { version: "bench", traits: {}, segments: [] },
  };
  await page.goto(`${rx.origin}/auto.html?o=${encodeURIComponent(JSON.stringify(options))}`);
  await page.evaluate(() => window.smReady);
  if (!(await page.evaluate(() => crossOriginIsolated))) throw new Error("not cross-origin isolated");
  const props = { product_id: "p-123", name: "Red shoes", price: 19.99, category: "shoes" };
  // Warm up (JIT, allocator), then hold events: offline, nothing is sent.
  await page.evaluate((p) => { for (let i = 0; i < 500; i++) window.sm.track("Product Clicked", p); return window.sm.flush(); }, props);
  await until(() => page.evaluate(() => (window.sm._get ? Number(window.sm._get("queued")) : window.sm._inst.queued()) === 0), 10_000, "an empty queue");
  await context.setOffline(true);
  await page.evaluate(async ([n, p]) => { for (let i = 0; i < n; i++) window.sm.track("Product Clicked", p); await new Promise((r) => setTimeout(r, 0)); }, [queued, props]);
  // Bursts of 100 calls in one task; then the persisting microtask runs
  // before the 0 ms timer fires.
  const busy0 = await busy();
  const result = await page.evaluate(async ([p, start]) => {
    const sync = [], after = [];
    for (let b = 0; b < 10; b++) {
      const t0 = performance.now();
      for (let i = 0; i < 100; i++) window.sm.track("Product Clicked", p);
      const t1 = performance.now();
      await new Promise((r) => setTimeout(r, 0));
      sync.push(((t1 - t0) * 1000) / 100);
      after.push(((performance.now() - t1) * 1000) / 100);
    }
    return { sync, after, queued: (window.sm._get ? Number(window.sm._get("queued")) : window.sm._inst.queued()) - start };
  }, [props, 0]);
  // Main-thread busy time of the whole measurement (calls, stringify,
  // persisting, timers, and the evaluate call itself) per event.
  result.mainThread = (((await busy()) - busy0) * 1e6) / 1000;
  await context.close();
  return result;
}

const rows = [];
for (const queued of [0, 1000]) {
  const sync = [], main = [];
  for (let r = 0; r < reps; r++) {
    const m = await measure(queued);
    sync.push(...m.sync);
    main.push(m.mainThread);
  }
  rows.push({ queued, sync: median(sync), syncMin: Math.min(...sync), main: median(main) });
}
const version = browser.version();
await browser.close();
await rx.close();
console.log(`Chromium ${version}; ${reps} pages x 10 bursts of 100 track("Product Clicked", 4 properties), offline so events stay queued`);
console.log("queued before burst   track() µs per call (min)   main-thread µs per event (calls + persisting)");
for (const r of rows) console.log(`${String(r.queued).padStart(19)}   ${r.sync.toFixed(2).padStart(8)} (${r.syncMin.toFixed(2)})        ${r.main.toFixed(2).padStart(8)}`);
