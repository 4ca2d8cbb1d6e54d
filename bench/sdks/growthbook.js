// GrowthBook evaluates feature conditions, not segments over a profile:
// here 20 features whose conditions are segmint's 20 bench segments, and
// attributes updated per event the way a page would compute them itself.
import { GrowthBook } from "@growthbook/growthbook";
import { expose } from "./common.js";
import RULES from "../rules20.json";

const FEATURES = Object.fromEntries(RULES.segments.map((s) => [s.id, { defaultValue: false, rules: [{ condition: s.condition, force: true }] }]));
const keys = Object.keys(FEATURES);
const gb = new GrowthBook({ features: FEATURES, attributes: {} });
// The same order stream as segmint's bench page.
const categories = ["shoes", "shoes", "shoes", "books", "toys"];
let purchases = 0, spend = 0, maxPrice = 0, minPrice = Infinity;
const perCategory = new Map();
expose("growthbook", Promise.resolve(), () => {}, {
  evaluate: (i) => {
    // What a page would keep itself to give GrowthBook these attributes.
    const price = 5 + (i % 40), category = categories[i % 5];
    purchases++;
    spend += price;
    maxPrice = Math.max(maxPrice, price);
    minPrice = Math.min(minPrice, price);
    perCategory.set(category, (perCategory.get(category) || 0) + 1);
    let top = "", topCount = 0;
    for (const [c, n] of perCategory) if (n > topCount) [top, topCount] = [c, n];
    gb.setAttributes({
      purchases_30d: purchases,
      avg_price_30d: spend / purchases,
      spend_90d: spend,
      max_price_90d: maxPrice,
      min_price_30d: minPrice,
      categories_90d: perCategory.size,
      top_category_share: topCount / purchases,
      top_category: top,
      clicks_7d: 0,
      last_search: "red shoes",
      plan: "pro",
      context: { device_type: "desktop" },
    });
    let on = 0;
    for (const k of keys) if (gb.isOn(k)) on++;
    return on;
  },
});
