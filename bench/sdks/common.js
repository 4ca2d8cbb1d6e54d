// Shared by the benchmark pages: where the receiver is, the event every
// SDK records, and the uniform window.bench interface the runner drives.
export const RX = new URLSearchParams(location.search).get("rx");
export const RX_HOST = new URL(RX).host;
export const props = (i) => ({ product_id: `p-${i}`, name: "Red shoes", price: 19.99, category: "shoes", position: i % 20 });
export const started = performance.now();
export function expose(name, ready, track, extra = {}) {
  window.bench = {
    name,
    ready: ready.then(() => performance.now() - started),
    // When ready resolved, from navigation start (taken then, not when the
    // runner asks).
    readyAt: ready.then(() => performance.now()),
    track,
    ...extra,
  };
}
