import { load } from "segmint";
import { RX, props, expose } from "./common.js";

// ?rules=<path>: the rules document to put in force (fetched first, given
// inline), as a storefront that cached them would have them.
const rulesPath = new URLSearchParams(location.search).get("rules");
const rules = rulesPath ? fetch(rulesPath).then((r) => r.json()) : Promise.resolve(undefined);
let sm;
const ready = rules.then((doc) => {
  sm = window.sm = load({ endpoint: RX, ...(doc ? { rules: doc } : {}) });
  return sm.ready;
});
// A steady shopper: most orders are shoes, so segments settle after the
// first orders (as a real user's do) and the figure is the per-event
// profile update and evaluation, not segment changes.
const categories = ["shoes", "shoes", "shoes", "books", "toys"];
const order = (i) => ({ order_id: `o${i}`, total: 20 + (i % 30), products: [{ product_id: `p${i % 50}`, price: 5 + (i % 40), category: categories[i % 5], quantity: 1 }] });
expose("segmint", ready, (i) => sm.track("Product Clicked", props(i)), {
  wasmBytes: () => (sm._memory ? sm._memory.buffer.byteLength : 0),
  // The segment engine's module (and its gzip encoder) is fetched at idle
  // after ready: the figures after ready are taken with it there.
  settled: () => sm.segmentsReady,
  order: (i) => sm.orderCompleted(order(i)),
  // The same message under a name no trait reads: no profile update, no
  // evaluation. `order` minus this is what segments cost per event.
  sameWithoutSegments: (i) => sm.track("Order Reviewed", order(i)),
});
