// The script-tag stub: paste it (minified: pkg/stub.min.js, shown in
// README) before the embed's <script async>. It makes window.segmint a
// queue, so calls made before the SDK loads are kept (up to 1,000) and
// replayed in order; if the SDK never loads, calls still never throw.
// Reads answer what is known before the SDK (no ids, no segments), so
// `if (segmint.inSegment("vip"))` is false rather than a truthy queue.
// Calls that give the client's promises give settled ones (never pending:
// `await segmint.flush()` before leaving the page must not wait for an
// SDK an ad blocker stopped), so `.catch()` and `.then()` work too.
!(function (w) {
  var q = w.segmint;
  var P = w.Promise;
  // An element with id="segmint" is window.segmint too: keep only a queue
  // or a loaded client (which has `ready`), else calls would go nowhere.
  if (!Array.isArray(q) && !(q && q.ready)) q = w.segmint = [];
  if (q.ready) return;
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
