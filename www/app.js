// The demo storefront's behaviour. Everything segmint-related is the
// public API: load(), track helpers, segments(), traits(), on("segments").
import { load } from "/pkg/index.js";
import { PRODUCTS, CATEGORIES, COLOURS } from "./products.js";

const origin = location.origin;
// sticky: false so the banner changes the moment a click makes you a
// member (a real store keeps banners stable within a page view).
const sm = load({ endpoint: origin, rulesUrl: `${origin}/v1/rules`, writeKey: "demo", flushIntervalMs: 1000, sticky: false });
window.segmint = sm; // for poking at from the console
sm.page("Storefront");

let filter = "all";
const $ = (id) => document.getElementById(id);
const money = (n) => `$${n.toFixed(2)}`;

function renderChips() {
  $("chips").replaceChildren(
    ...CATEGORIES.map((c) => {
      const b = document.createElement("button");
      b.textContent = c;
      b.className = c === filter ? "chip on" : "chip";
      b.onclick = () => {
        filter = c;
        renderChips();
        renderGrid();
      };
      return b;
    }),
  );
}

function visible() {
  if (filter === "all") return PRODUCTS;
  if (filter === "under20") return PRODUCTS.filter((p) => p.price < 20);
  if (filter === "favourite") return PRODUCTS.filter((p) => p.category === sm.traits().top_category);
  if (filter.startsWith("q:")) {
    const q = filter.slice(2).toLowerCase();
    return PRODUCTS.filter((p) => p.name.toLowerCase().includes(q) || p.category.includes(q));
  }
  return PRODUCTS.filter((p) => p.category === filter);
}

function renderGrid() {
  $("grid").replaceChildren(
    ...visible().map((p) => {
      const card = document.createElement("article");
      card.className = "card";
      card.dataset.productId = p.product_id;
      card.innerHTML = `<div class="icon"></div><h3></h3><p class="meta"></p><p class="price"></p>
        <div class="actions"><button class="view">View</button><button class="buy">Buy</button></div>`;
      const icon = card.querySelector(".icon");
      icon.textContent = p.name[0];
      icon.style.background = COLOURS[p.category];
      card.querySelector("h3").textContent = p.name;
      card.querySelector(".meta").textContent = `${p.category} · sold by ${p.seller}`;
      card.querySelector(".price").textContent = money(p.price);
      card.querySelector(".view").onclick = () => view(p);
      card.querySelector(".buy").onclick = () => buy(p, card);
      return card;
    }),
  );
}

function view(p) {
  sm.productClicked({ product_id: p.product_id, name: p.name, category: p.category, price: p.price });
  const d = $("product");
  d.innerHTML = `<h2></h2><p class="big"></p><p></p><form method="dialog"><button>Close</button></form>`;
  d.querySelector("h2").textContent = p.name;
  d.querySelector(".big").textContent = money(p.price);
  d.querySelector("p:not(.big)").textContent = `Category: ${p.category}. Sold by ${p.seller}.`;
  d.showModal();
}

let orders = 0;
async function buy(p, card) {
  orders++;
  await sm.orderCompleted({
    order_id: `demo-${Date.now()}-${orders}`,
    total: p.price,
    revenue: p.price,
    currency: "USD",
    products: [{ product_id: p.product_id, name: p.name, category: p.category, price: p.price, quantity: 1 }],
  });
  card.classList.add("bought");
  setTimeout(() => card.classList.remove("bought"), 600);
  sm.flush();
}

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = new FormData(e.target).get("q").trim();
  if (!q) return;
  // With declarative capture on, the form's data-segmint-search attribute
  // already sends "Products Searched"; the grid just filters.
  filter = `q:${q}`;
  renderChips();
  renderGrid();
});

document.addEventListener("click", (e) => {
  const f = e.target.closest("[data-filter]");
  if (!f) return;
  filter = f.dataset.filter;
  renderChips();
  renderGrid();
});

$("reset").onclick = () => {
  sm.reset();
  renderProfile();
};

function renderProfile() {
  $("aid").textContent = sm.anonymousId() || "…";
  const hero = document.querySelector("[data-segmint-slot=hero]");
  const held = hero.dataset.segmintVariation === "holdout";
  $("holdout").hidden = !held;
  const segs = sm.segments();
  $("segments").replaceChildren(
    ...(segs.length ? segs : ["(none yet)"]).map((s) => {
      const span = document.createElement("span");
      span.className = "seg";
      span.textContent = s;
      return span;
    }),
  );
  $("traits").textContent = JSON.stringify(sm.traits(), (k, v) => (typeof v === "number" ? Math.round(v * 100) / 100 : v), 1);
}

async function renderBatches() {
  try {
    const res = await fetch(`${origin}/api/recent?anonymousId=${encodeURIComponent(sm.anonymousId() || "")}`);
    if (!res.ok) return;
    const { batches } = await res.json();
    $("batches").replaceChildren(
      ...batches.slice(-8).reverse().map((b) => {
        const li = document.createElement("li");
        li.textContent = `${new Date(b.at).toLocaleTimeString()} · ${b.events.length} event(s): ${b.events.join(", ")}`;
        return li;
      }),
    );
  } catch {
    /* the panel is best-effort */
  }
}

sm.ready.then(() => setTimeout(renderProfile));
// After the slots have re-rendered (their listener runs after this one).
sm.on("segments", () => setTimeout(renderProfile));
sm.on("error", (e) => console.warn("segmint:", e.code, e.message));
setInterval(renderBatches, 1000);
renderChips();
renderGrid();
