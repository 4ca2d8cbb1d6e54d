// Compiled with `tsc --noEmit --strict` by the packaging tests: the
// published types describe the whole API.
import { load, SegmintError, type SegmentChange, type SegmintClient } from "segmint";

const sm: SegmintClient = load({
  endpoint: "https://collector.example",
  writeKey: "wk",
  rulesUrl: "https://collector.example/v1/rules",
  cookie: { domain: "example.com" },
  retry: { baseMs: 500 },
  consent: "pending",
  autocapture: { clicks: false },
});
async function run(): Promise<void> {
  await sm.ready;
  await sm.track("Product Viewed", { product_id: "p1", price: 9.5, tags: ["a"], at: new Date() });
  await sm.page();
  await sm.page("Home", { section: "hero" });
  await sm.page({ section: "hero" });
  await sm.identify("u1", { plan: "pro" });
  await sm.identify({ plan: "pro" });
  await sm.productClicked({ product_id: "p1", price: 9.5 });
  await sm.productsSearched("red shoes");
  await sm.orderCompleted({ order_id: "o1", currency: "USD", products: [{ product_id: "p1", price: 9.5, quantity: 1 }] });
  // Amounts as a template prints them.
  await sm.orderCompleted({ order_id: "o2", total: "19.00", products: [{ product_id: "p1", price: "9.50", quantity: "2" }] });
  const { sent, pending }: { sent: number; pending: number } = await sm.flush();
  await sm.consent("granted");
  const state: "granted" | "pending" | "denied" = await sm.consent();
  const ids: [string | null, string | null] = [sm.anonymousId(), sm.userId()];
  const segs: string[] = sm.segments();
  const member: boolean = sm.inSegment("frequent-buyer");
  sm.traits();
  sm.reset();
  const handle = sm.personalize("#hero", { "frequent-buyer": "tpl-loyal", default: (el, info) => { el.textContent = info.variation; } });
  handle.undo();
  sm.on("segments", (c: SegmentChange) => c.entered.length).on("error", (e: SegmintError) => e.code === "batch_rejected");
  void [sent, pending, state, ids, segs, member];
}
void run;
// The script-tag global, whether the embed has run or the stub stands in.
async function inline(): Promise<void> {
  window.segmint?.track("Newsletter Signup", { source: "footer" }).catch(() => {});
  const flushed: { sent: number; pending: number } | undefined = await window.segmint?.flush();
  const known: "granted" | "pending" | "denied" | undefined = await window.segmint?.consent();
  const id: string | null | undefined = window.segmint?.anonymousId();
  void [flushed, known, id];
}
void inline;
// @ts-expect-error endpoint is required
load({});
// @ts-expect-error unknown consent state
load({ endpoint: "x", consent: "maybe" });
