// The browser side of the wasm core's runtime (src/runtime.rs): its timer,
// the page's lifecycle events, storage, cookies and the network. The core
// decides what is due; a Host only does what it is told and reports back
// through the one callback the core gives it, `report(kind, id, status,
// text, more)`. Written here rather than bound through web-sys: the same
// work cost the page 3.7 KB brotli more at start in bindings, closures and
// glue (measured 2026-12-05).
//
// What the host reports (src/runtime.rs has the same numbers):
//   0 the timer is due        1 a microtask to persist   2 pagehide
//   3 a page restored from the back/forward cache         4 online
//   5 offline                 6 a storage change: text = key, more = the
//     new value (only for the keys the core asked to hear, else null)
//   7 the page was hidden     8 the heartbeat (every 30 s)
//   9 a batch's answer: id, status (0 for a network error) plus 65536 when
//     the collector accepts gzip bodies, text = where a redirect ended
//     (unless it ended in a success), more = Retry-After
//   10 the rules' answer: status, text = body, more = ETag
//   11 the queue lock is held (adopting runs inside it)
// and it holds each flush's outcome for the facade (`flushed`, `settled`).

const noop = () => {};

/** localStorage (area 0) or sessionStorage (1); null where the browser
 * refuses it (disabled, a sandboxed frame). */
function storage(area) {
  try {
    return area ? sessionStorage : localStorage;
  } catch {
    return null;
  }
}

/** GETs the rules document: [status (0 for a network error), ETag, text]. */
export function fetchRules(url, etag) {
  return fetch(url, etag ? { headers: { "If-None-Match": etag } } : undefined).then(
    // A body that cannot be read is no answer either.
    (r) => r.text().then((text) => [r.status, r.headers.get("ETag"), text], () => [0, null, ""]),
    () => [0, null, ""],
  );
}

export class Host {
  constructor() {
    // Batches under way: id -> AbortController.
    this.requests = new Map();
    // Flushes: id -> its outcome, or what waits for it.
    this.flushes = new Map();
  }

  /** What the page is like at start: 1 online, 2 Global Privacy Control
   * asked for, 4 `fetch` honours `keepalive` (Firefox from 133; Chrome and
   * Safari long before; elsewhere the option is silently ignored). */
  facts() {
    return (
      (navigator.onLine === false ? 0 : 1) |
      (navigator.globalPrivacyControl === true ? 2 : 0) |
      (typeof Request === "function" && "keepalive" in Request.prototype ? 4 : 0)
    );
  }

  /** The page as events describe it, a field a line (none holds a line
   * break): href, pathname, search, referrer, title, userAgent, language,
   * hostname, protocol. */
  page() {
    const l = location;
    return [l.href, l.pathname, l.search, document.referrer, document.title, navigator.userAgent, navigator.language || "", l.hostname, l.protocol].join("\n");
  }

  /** `document.cookie` ("" where cookies are refused), and a setter. */
  cookie() {
    try {
      return document.cookie;
    } catch {
      return "";
    }
  }

  setCookie(text) {
    try {
      document.cookie = text;
    } catch {
      // Refused (a sandboxed frame): the id lives in storage alone.
    }
  }

  /** The value at `key` in storage `area` (see storage()), if any. */
  read(area, key) {
    try {
      return storage(area).getItem(key);
    } catch {
      return null;
    }
  }

  /** Writes `key`: null, or why the browser refused (QuotaExceededError). */
  write(area, key, value) {
    const s = storage(area);
    if (!s) return "localStorage unavailable";
    try {
      s.setItem(key, value);
      return null;
    } catch (e) {
      return (e && e.name) || "write refused";
    }
  }

  remove(area, key) {
    try {
      storage(area).removeItem(key);
    } catch {
      // Nothing stored, or nowhere to store it.
    }
  }

  /** segmint's keys in localStorage (`sgm_`), a key a line. */
  keys() {
    const s = storage(0);
    const keys = [];
    try {
      for (let i = 0; i < s.length; i++) {
        const key = s.key(i);
        if (key.startsWith("sgm_") && !key.includes("\n")) keys.push(key);
      }
    } catch {
      // Storage refused: no keys.
    }
    return keys.join("\n");
  }

  /** Fills `bytes` from `crypto.getRandomValues`, or from Math.random
   * where the page has no Web Crypto (ids stay unique, not unguessable). */
  random(bytes) {
    try {
      crypto.getRandomValues(bytes);
    } catch {
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.random() * 256;
    }
  }

  /** Starts listening: `core` hears what happens, `keys` (space
   * separated) are the storage keys whose new values it wants. */
  start(core, keys) {
    // Every argument always given: the wasm's glue takes numbers as
    // numbers (its debug build asserts it).
    const report = (this.report = (kind, id = 0, status = 0, text = null, more = null) => core(kind, id, status, text, more));
    const wanted = new Set(keys.split(" "));
    const on = (target, type, kind, when = () => true) =>
      target.addEventListener(type, (e) => when(e) && report(kind));
    on(window, "pagehide", 2);
    on(window, "pageshow", 3, (e) => e.persisted);
    on(window, "online", 4);
    on(window, "offline", 5);
    on(document, "visibilitychange", 7, () => document.visibilityState === "hidden");
    // Only the values asked for cross into wasm memory: queue chunks are
    // large and none of this tab's business.
    addEventListener("storage", (e) => report(6, 0, e.newValue === null ? 1 : 0, e.key, wanted.has(e.key) ? e.newValue : null));
    // Tells other tabs this page view is alive, and finds queues that
    // closed tabs left behind.
    setInterval(() => report(8), 30000);
  }

  /** (Re)arms the one timer for `ms` from now; a negative `ms` disarms. */
  arm(ms) {
    clearTimeout(this.timer);
    if (ms >= 0) this.timer = setTimeout(() => this.report(0), ms);
  }

  /** Persists once the current task's calls are done. */
  microtask() {
    queueMicrotask(() => this.report(1));
  }

  /** POSTs batch `id` as DESIGN's wire format has it: `text/plain` (a
   * CORS-simple request, no preflight an unloading page could lose). */
  post(id, url, body, keepalive) {
    const abort = new AbortController();
    this.requests.set(id, abort);
    fetch(url, {
      method: "POST",
      // A copy: `body` is a view of wasm memory, which may grow.
      body: body.slice(),
      keepalive,
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      signal: abort.signal,
    }).then(
      (r) => {
        // Read the (small) body: a keepalive request keeps its share of
        // the browser's 64 KB budget until its body is consumed.
        r.text().catch(noop);
        const gzip = (r.headers.get("Accept-Encoding") || "").includes("gzip");
        // A 307 or 308 keeps the POST and its body, and a success at the
        // end of it is one; anything else after a redirect never got the
        // events.
        const ok = r.status >= 200 && r.status < 300;
        this.answered(id, r.status + (gzip ? 65536 : 0), r.redirected && !ok ? r.url : null, r.headers.get("Retry-After"));
      },
      () => this.answered(id, 0),
    );
  }

  answered(id, status, to, retryAfter) {
    // Aborted (given up or forgotten): the core no longer waits for it.
    if (this.requests.delete(id)) this.report(9, id, status, to, retryAfter);
  }

  /** Cancels batch `id`'s request: frees its connection and its share of
   * the keepalive budget. */
  abort(id) {
    const request = this.requests.get(id);
    this.requests.delete(id);
    if (request) request.abort();
  }

  /** Hands a departing page's batch to `navigator.sendBeacon`, falling
   * back to a keepalive fetch. Nobody hears the answer: the events stay
   * stored either way. */
  beacon(url, body) {
    const type = "text/plain;charset=UTF-8";
    const blob = new Blob([body], { type });
    let taken = false;
    try {
      taken = navigator.sendBeacon(url, blob);
    } catch {
      // Refused outright (a URL sendBeacon rejects): the fetch below.
    }
    if (!taken) fetch(url, { method: "POST", body: blob, keepalive: true, headers: { "Content-Type": type } }).catch(noop);
  }

  /** GETs the rules document with `If-None-Match`. */
  rules(url, etag) {
    fetchRules(url, etag).then(([status, tag, text]) => this.rulesAnswered(status, text, tag));
  }

  /** The answer to a rules request: this host's, or the facade's at start
   * (see js/rules.js). */
  rulesAnswered(status, text, etag) {
    this.report(10, 0, status, text, etag);
  }

  /** Flush `id` has settled: `json` is {"sent":n,"pending":m}. */
  flushed(id, json) {
    const waiting = this.flushes.get(id);
    if (typeof waiting === "function") {
      this.flushes.delete(id);
      waiting(json);
    } else this.flushes.set(id, json);
  }

  /** A promise of flush `id`'s outcome (JSON text), from the core's
   * flush(). */
  settled(id) {
    const json = this.flushes.get(id);
    if (typeof json === "string") {
      this.flushes.delete(id);
      return Promise.resolve(json);
    }
    return new Promise((resolve) => this.flushes.set(id, resolve));
  }

  /** Takes the queue lock across this site's tabs (Web Locks), so two
   * never adopt the same queue; without it, or where it is refused (a
   * sandboxed frame), at once. */
  lock() {
    let held = false;
    const adopt = () => {
      held = true;
      this.report(11);
    };
    try {
      // Refused later (an opaque origin) rather than at once: adopted
      // without it all the same.
      navigator.locks.request("segmint-queue", adopt).catch(() => held || adopt());
    } catch {
      adopt();
    }
  }
}
