// Personalized banners: declarative slots and personalize().
//
//   <div data-segmint-slot="hero">
//     <template data-segment="frequent-buyer">…</template>
//     <template data-segment="default">…</template>
//   </div>
//
// The wasm core decides (highest-priority segment the slot offers, unless
// the user is held out); this file renders. It lives in JavaScript because
// the no-flicker part runs before the wasm is ready: the decision the last
// page view cached is applied at once (by the stub, as the page is parsed,
// where the page has it), so a returning visitor never sees the default
// banner first. A slot without one waits, hidden, for the rules in force
// (see Client#_startRules), at most antiFlickerTimeoutMs. Templates are
// cloned, never assigned as HTML strings, and scripts in them never run.

import { invalid } from "./json.js";

const CACHE_KEY = "sgm_slots";
/** What a slot shows without a decision: its default banner. */
const FALLBACK = { template: "default", segment: null, variation: "default", fallback: true };

// Reading `localStorage` itself throws where the browser refuses storage
// (cookies blocked for the site, a sandboxed frame): inside the try.
function readCache() {
  try {
    if (typeof localStorage === "undefined") return {};
    return JSON.parse(localStorage.getItem(CACHE_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

/** A template's banner, cloned without scripts. Markup puts it in the
 * template's `content`; a framework that builds the template with DOM
 * calls (React renders JSX children so) puts it in the element itself. */
function cloneTemplate(template) {
  let fragment;
  if (template.content.hasChildNodes()) {
    fragment = document.importNode(template.content, true);
  } else {
    fragment = document.createDocumentFragment();
    for (const node of template.childNodes) fragment.append(node.cloneNode(true));
  }
  for (const script of fragment.querySelectorAll("script")) script.remove();
  return fragment;
}

function variantsOf(slotElement) {
  const variants = {};
  for (const t of slotElement.querySelectorAll(":scope > template[data-segment]")) {
    variants[t.getAttribute("data-segment")] = t;
  }
  return variants;
}

function mark(name) {
  try {
    performance.mark(`segmint:slot:${name}`);
  } catch {
    /* marks are a diagnostic */
  }
}

export class Slots {
  /**
   * @param {object} client the segmint client (track, on, _inst, _get)
   * @param {{sticky?: boolean, antiFlickerTimeoutMs?: number}} options
   */
  constructor(client, options) {
    this.client = client;
    this.sticky = options.sticky !== false;
    this.timeoutMs = options.antiFlickerTimeoutMs ?? 400;
    this.cache = readCache();
    this.slots = [];
    this.ready = false;
  }

  /** Finds declarative slots now and as the page adds them. */
  watchDocument() {
    if (typeof document === "undefined") return;
    for (const el of document.querySelectorAll("[data-segmint-slot]")) this.declarative(el);
    this.observer = new MutationObserver((records) => {
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (!(node instanceof Element)) continue;
          if (node.hasAttribute("data-segmint-slot")) this.declarative(node);
          for (const el of node.querySelectorAll("[data-segmint-slot]")) this.declarative(el);
        }
      }
      this.forgetRemoved();
    });
    this.observer.observe(document.documentElement, { childList: true, subtree: true });
  }

  /** The core failed to start: slots still waiting show their default at
   * once (not after the anti-flicker timeout), and nothing is watched any
   * more, so a later load() has the page to itself. */
  stop() {
    this.stopped = true;
    if (this.observer) this.observer.disconnect();
    if (this.onClick) document.removeEventListener("click", this.onClick, true);
    for (const slot of this.slots) if (!slot.shown) this.render(slot, FALLBACK);
    this.slots = [];
  }

  /** Slots whose element left the document (a single-page app routed
   * away) are dropped: they are not on screen, so a later segment change
   * must not render into them or count an exposure for them. (Checked
   * after the mutations, so an element moved within the page stays.) */
  forgetRemoved() {
    // personalize() may get an element the app inserts later: only a slot
    // that was in the document can leave it.
    for (const s of this.slots) if (s.element.isConnected) s.wasConnected = true;
    const gone = this.slots.filter((s) => s.wasConnected && !s.element.isConnected);
    if (!gone.length) return;
    for (const slot of gone) clearTimeout(slot.timer);
    this.slots = this.slots.filter((s) => !gone.includes(s));
  }

  declarative(el) {
    if (this.slots.some((s) => s.element === el)) return;
    const name = el.getAttribute("data-segmint-slot") || "slot";
    const templates = variantsOf(el);
    const variants = {};
    for (const [id, t] of Object.entries(templates)) variants[id] = t;
    this.add({ element: el, name, variants, original: null });
  }

  /** personalize(selectorOrElement, variants) */
  personalize(target, variants) {
    const element = typeof target === "string" ? document.querySelector(target) : target;
    if (!(element instanceof Element)) throw invalid("personalize(target)", `no element for ${target}`);
    const resolved = {};
    for (const [id, v] of Object.entries(variants || {})) {
      resolved[id] = typeof v === "string" ? document.getElementById(v) : v;
      if (!(resolved[id] instanceof HTMLTemplateElement) && typeof resolved[id] !== "function") {
        throw invalid("personalize(variants)", `variant "${id}" must be a <template>, a template id or a function`);
      }
    }
    // One slot per element, so a banner is counted as viewed once per page
    // view: a second personalize() (a component that runs it on every
    // render) takes the earlier one's place, and so does a personalize()
    // of a declarative slot. undo() gives back what the page had before
    // the first call, the declarative slot included.
    const earlier = this.slots.find((s) => s.element === element);
    if (earlier) {
      clearTimeout(earlier.timer);
      earlier.undone = earlier.replaced = true;
      this.slots = this.slots.filter((s) => s !== earlier);
    }
    const slot = {
      element,
      name: element.getAttribute("data-segmint-slot") || element.id || "slot",
      variants: resolved,
      original: earlier?.original ?? [...element.childNodes],
      declarative: earlier && (earlier.declarative || (earlier.original === null ? earlier : null)),
      exposed: earlier?.exposed,
      hiddenStyle: earlier?.hiddenStyle,
    };
    this.add(slot);
    return {
      undo: () => {
        // A later personalize() of this element is in force now.
        if (slot.replaced) return;
        slot.undone = true;
        this.slots = this.slots.filter((s) => s !== slot);
        element.replaceChildren(...slot.original);
        element.style.visibility = slot.hiddenStyle ?? "";
        const own = slot.declarative;
        if (own && element.isConnected && !this.stopped) {
          // It shares this call's exposures: a banner already counted is not counted again.
          own.undone = own.replaced = false;
          this.add(own);
        }
      },
    };
  }

  add(slot) {
    slot.shown = null; // {template, segment, variation}
    slot.wasConnected = slot.element.isConnected;
    slot.exposed = slot.exposed || new Set();
    if (this.stopped) return this.render(slot, FALLBACK);
    this.slots.push(slot);
    // A slot waits for a decision: the engine's module is wanted now.
    this.client._wantEngine();
    this.listenForClicks();
    if (this.ready) return this.decideAndRender(slot);
    // Before the core is ready: the cached decision, at once; otherwise
    // hidden until the decision, or the timeout shows the default.
    const cached = this.cache[slot.name];
    if (cached && cached.template in slot.variants) {
      // The stub may have shown it as the page was parsed: taken as it is.
      if (slot.element.getAttribute("data-segmint-cached") === cached.template) slot.shown = { ...cached, fallback: false };
      else this.render(slot, cached);
    } else {
      if (slot.hiddenStyle === undefined) slot.hiddenStyle = slot.element.style.visibility;
      slot.element.style.visibility = "hidden";
      slot.timer = setTimeout(() => {
        if (!slot.shown) this.render(slot, FALLBACK);
      }, this.timeoutMs);
    }
  }

  /** The core is ready: every slot gets its real decision. */
  start() {
    this.ready = true;
    for (const slot of [...this.slots]) this.decideAndRender(slot);
    // The cache always follows the latest decision, for the next page
    // view; a sticky slot keeps what this page view already shows.
    this.client.on("segments", () => {
      for (const slot of [...this.slots]) this.decideAndRender(slot);
    });
  }

  decide(slot) {
    const offered = Object.keys(slot.variants).filter((k) => k !== "default");
    return JSON.parse(this.client._get("decide", JSON.stringify(offered), true));
  }

  decideAndRender(slot) {
    if (slot.undone) return;
    const decision = this.decide(slot);
    this.remember(slot, decision);
    // Sticky: what the visitor already sees stays for this page view
    // (a cached decision or the fallback default).
    if (slot.shown && (this.sticky || sameShown(slot.shown, decision))) {
      this.expose(slot, slot.shown);
      return;
    }
    this.render(slot, decision);
    this.expose(slot, decision);
  }

  remember(slot, decision) {
    if (this.client._get("consentState") !== "granted") return;
    const entry = { template: decision.template, segment: decision.segment, variation: decision.variation };
    if (JSON.stringify(this.cache[slot.name]) === JSON.stringify(entry)) return;
    this.cache[slot.name] = entry;
    try {
      localStorage.setItem(CACHE_KEY, JSON.stringify(this.cache));
    } catch {
      /* without storage the next page view decides afresh */
    }
  }

  render(slot, decision) {
    clearTimeout(slot.timer);
    const variant = slot.variants[decision.template] || slot.variants.default;
    const el = slot.element;
    // A declarative slot keeps its templates; personalize() replaces.
    const keep = slot.original === null ? [...el.children].filter((n) => n instanceof HTMLTemplateElement) : [];
    if (variant instanceof HTMLTemplateElement) {
      el.replaceChildren(...keep, cloneTemplate(variant));
    } else if (typeof variant === "function") {
      variant(el, { segment: decision.segment, variation: decision.variation });
    } else {
      el.replaceChildren(...keep, ...(slot.original || []));
    }
    if (slot.hiddenStyle !== undefined) el.style.visibility = slot.hiddenStyle;
    slot.shown = { template: decision.template, segment: decision.segment, variation: decision.variation, fallback: !!decision.fallback };
    el.setAttribute("data-segmint-variation", decision.variation);
    mark(slot.name);
  }

  /** One Promotion Viewed per slot per page view (per variant shown). */
  expose(slot, shown) {
    const key = `${shown.template}|${shown.variation}`;
    if (slot.exposed.has(key)) return;
    slot.exposed.add(key);
    slot.promotion = { promotion_id: slot.name, segment: shown.segment ?? null, variation: shown.variation, creative: shown.template };
    this.client.track("Promotion Viewed", slot.promotion);
  }

  listenForClicks() {
    if (this.onClick || typeof document === "undefined") return;
    this.onClick = (e) => {
      if (!(e.target instanceof Node)) return;
      const slot = this.slots.find((s) => s.promotion && s.element.contains(e.target));
      if (slot) this.client.track("Promotion Clicked", slot.promotion);
    };
    document.addEventListener("click", this.onClick, true);
  }
}

function sameShown(shown, decision) {
  return shown.template === decision.template && shown.variation === decision.variation;
}
