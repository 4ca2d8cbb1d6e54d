// Declarative capture: events from markup, no code.
//
//   <button data-segmint-track="Wishlist Added" data-segmint-product-id="sh-101"
//           data-segmint-price="34">♡</button>
//   <form data-segmint-search> <input type="search" name="q"> </form>
//
// One delegated listener per kind on the document (capture phase, so a
// handler that stops propagation does not hide the click), so elements
// added later are captured too.

const NUMERIC = /^-?(0|[1-9]\d*)(\.\d+)?$/;

const OWN = new Set(["data-segmint-track", "data-segmint-search", "data-segmint-slot"]);

/** An attribute's value: a number where the text is one, else the text.
 * "007", and whole numbers past 2^53 (long ids a double would round),
 * stay as written. */
function valueOf(text) {
  if (!NUMERIC.test(text)) return text;
  const n = Number(text);
  return Number.isInteger(n) && !Number.isSafeInteger(n) ? text : n;
}

/** data-segmint-* attributes (but segmint's own) as properties:
 * data-segmint-product-id="7" becomes { product_id: 7 }. */
export function propertiesOf(el) {
  const props = {};
  for (const { name, value } of el.attributes) {
    if (!name.startsWith("data-segmint-") || OWN.has(name)) continue;
    props[name.slice(13).replace(/-/g, "_")] = valueOf(value);
  }
  return props;
}

function queryOf(form) {
  const named = form.getAttribute("data-segmint-search");
  const input =
    (named && form.elements.namedItem(named)) ||
    form.querySelector('input[type="search"], input[name="q"], input[name="query"], input[type="text"], input:not([type])');
  return input && typeof input.value === "string" ? input.value.trim() : "";
}

/**
 * A click on a link, or a form submitted, that leaves the page: what is
 * queued goes at once rather than at the next flush interval, so its
 * answer can arrive before the next page replaces this one. (An answer
 * no page hears keeps the events stored, and the next page sends them
 * again.) Checked once the page's own handlers have run: the event they
 * record goes too, and a link a single-page router takes over (its
 * default prevented) sends nothing early.
 */
function leaving(client, e) {
  const el = e.target instanceof Element ? e.target : null;
  const link = e.type === "click" ? el && el.closest("a[href]") : el;
  if (!link || (e.type === "click" && (e.button || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey))) return;
  if ((link.target && link.target !== "_self") || link.hasAttribute("download")) return;
  setTimeout(() => {
    if (!e.defaultPrevented && client._recorder) client.flush();
  });
}

/**
 * Listens for declarative clicks and searches (unless `autocapture` says
 * not), and for links and forms that leave the page; returns what stops
 * it.
 * @param {{track: Function, productsSearched: Function, flush: Function}} client
 * @param {boolean | {clicks?: boolean, search?: boolean}} autocapture
 * @returns {() => void}
 */
export function installCapture(client, autocapture) {
  if (typeof document === "undefined") return () => {};
  const on = (kind) => autocapture === undefined || autocapture === true || (autocapture && autocapture[kind] !== false);
  const clicks = on("clicks");
  const search = on("search");
  const listeners = [
    [
      "click",
      (e) => {
        const el = clicks && e.target instanceof Element ? e.target.closest("[data-segmint-track]") : null;
        const name = el && el.getAttribute("data-segmint-track");
        if (name) client.track(name, propertiesOf(el));
        leaving(client, e);
      },
    ],
    [
      "submit",
      (e) => {
        const form = e.target;
        if (search && form instanceof HTMLFormElement && form.hasAttribute("data-segmint-search")) {
          const query = queryOf(form);
          if (query) client.productsSearched(query, propertiesOf(form));
        }
        leaving(client, e);
      },
    ],
  ];
  for (const [type, fn] of listeners) document.addEventListener(type, fn, true);
  return () => {
    for (const [type, fn] of listeners) document.removeEventListener(type, fn, true);
  };
}
