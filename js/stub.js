// The script-tag stub: paste it (minified: pkg/stub.min.js, shown in
// README) before the embed's <script async>. It makes window.segmint a
// queue, so calls made before the SDK loads are kept (up to 1,000) and
// replayed in order; if the SDK never loads, calls still never throw.
// Reads answer what is known before the SDK (no ids, no segments), so
// `if (segmint.inSegment("vip"))` is false rather than a truthy queue.
// Calls that give the client's promises give settled ones (never pending:
// `await segmint.flush()` before leaving the page must not wait for an
// SDK an ad blocker stopped), so `.catch()` and `.then()` work too. It
// also shows a returning visitor's banners as the page is parsed.
!(function (w) {
  var q = w.segmint;
  var P = w.Promise;
  // An element with id="segmint" is window.segmint too: keep only a queue
  // or a loaded client (which has `ready`), else calls would go nowhere.
  if (!Array.isArray(q) && !(q && q.ready)) q = w.segmint = [];
  if (q.ready) return;
  // A returning visitor's banner is in the first paint: as the page is
  // parsed, each declarative slot shows the banner the last page view
  // decided for it (sgm_slots), before the embed arrives. A template is
  // used once the parser is past it (its content is whole); the embed
  // takes the slot over as it is (data-segmint-cached). No cache (a first
  // visit, storage refused): nothing is watched.
  try {
    var d = w.document,
      cache = JSON.parse(w.localStorage.sgm_slots),
      paint = function () {
        d.querySelectorAll("[data-segmint-slot]").forEach(function (slot) {
          try {
            var name = slot.getAttribute("data-segmint-slot") || "slot",
              shown = cache[name],
              t = slot.querySelector(':scope>template[data-segment="' + shown.template + '"]'),
              banner;
            for (var n = t; d.readyState == "loading" && n && !n.nextSibling; ) n = n.parentNode;
            if (n && slot.dataset.segmintCached == null) {
              banner = t.content.cloneNode(1);
              banner.querySelectorAll("script").forEach(function (s) {
                s.remove();
              });
              slot.append(banner);
              slot.dataset.segmintCached = shown.template;
              slot.dataset.segmintVariation = shown.variation;
              performance.mark("segmint:slot:" + name);
            }
          } catch (e) {}
        });
      },
      watch = new MutationObserver(paint);
    watch.observe(d, { childList: 1, subtree: 1 });
    d.addEventListener("DOMContentLoaded", function () {
      paint();
      watch.disconnect();
    });
  } catch (e) {}
  var known = { anonymousId: null, userId: null, segments: [], inSegment: !1, traits: {} };
  "track page identify reset productClicked productsSearched orderCompleted flush consent on off personalize anonymousId userId segments inSegment traits"
    .split(" ")
    .forEach(function (m) {
      q[m] =
        q[m] ||
        function () {
          if (m in known) return known[m];
          if (q.length < 1000) q.push([m].concat([].slice.call(arguments)));
          // personalize() hands back something to undo; on, off and
          // reset chain, as ever.
          if (m == "personalize") return { undo: function () {} };
          if (!P || /^(on|off|reset)$/.test(m)) return q;
          return P.resolve(m == "flush" ? { sent: 0, pending: q.length } : void 0);
        };
    });
})(window);
