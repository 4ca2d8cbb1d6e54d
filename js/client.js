// The segmint client: the JavaScript API of DESIGN.md. It returns at once,
// buffers calls until the wasm core is ready, and keeps the hot path
// (track) to one JSON.stringify and one call into wasm.

import { SegmintError, encode, invalid } from "./json.js";
import { installCapture } from "./capture.js";
import { Slots } from "./slots.js";
import { prefetchRules } from "./rules.js";
import { Host, fetchRules } from "./host.js";

const OK = Promise.resolve();
const noop = () => {};

/** What the core's `get(what, arg)` reads (see src/lib.rs). */
const READS = {
  anonymousId: 0,
  userId: 1,
  consentState: 2,
  segments: 3,
  inSegment: 4,
  traits: 5,
  decide: 6,
  rulesVersion: 7,
  rulesRequest: 8,
  settings: 9,
  queued: 10,
};

/** A rejected promise that does not count as unhandled: callers that
 * await see the error; fire-and-forget callers are not punished. */
function rejected(err) {
  const p = Promise.reject(err);
  p.catch(noop);
  return p;
}

/** What a client does in Node or during server-side rendering: nothing. */
export const inertMethods = {
  track: () => OK,
  page: () => OK,
  identify: () => OK,
  productClicked: () => OK,
  productsSearched: () => OK,
  orderCompleted: () => OK,
  reset: noop,
  flush: () => Promise.resolve({ sent: 0, pending: 0 }),
  consent: () => OK,
  anonymousId: () => null,
  userId: () => null,
  segments: () => [],
  inSegment: () => false,
  traits: () => ({}),
};

export class Client {
  /**
   * @param {object} options load() options
   * @param {() => Promise<{Segmint: Function}>} start loads the wasm core
   * @param {(wasmUrl?: string) => Promise<WebAssembly.Module>} [engine]
   *   fetches the segment engine's module (the build's second wasm)
   */
  constructor(options, start, engine) {
    this._listeners = new Map();
    this._pending = [];
    // The core, once started: reads (ids, segments, slot decisions) use it.
    this._inst = null;
    // The core once calls may record: at start, or for a prerendered page
    // when it is shown. Until then calls wait in _pending, in order.
    this._recorder = null;
    this._hooks = [];
    this._options = options;
    // load("https://…") instead of load({ endpoint: "https://…" }): said
    // plainly, not as a string spread into options "0", "1", ...
    const plain = options == null || (typeof options === "object" && !Array.isArray(options));
    const { wasmUrl, ...coreOptions } = plain ? options || {} : {};
    // A path ("/", "/collect") means this site; anything else must be an
    // absolute URL (the core says so, naming the option).
    for (const key of ["endpoint", "rulesUrl"]) {
      const v = coreOptions[key];
      if (typeof v === "string" && v.startsWith("/") && !v.startsWith("//") && typeof location !== "undefined") {
        coreOptions[key] = new URL(v, location.href).href;
      }
    }
    // The later module (the segment engine and delivery's sending):
    // fetched at once when a slot waits for a decision or flush() for its
    // answers, else at idle once the core runs. Events wait in storage
    // until it is there.
    this._engineUrl = wasmUrl;
    this._fetchEngine = engine;
    this._engineModule = null;
    // Listening starts now, so clicks before the core is ready count too
    // (their calls wait in the buffer).
    const stopCapture = installCapture(this, coreOptions.autocapture);
    // Slots render cached decisions at once, before the core is ready;
    // the others wait for the rules in force (see _startRules).
    if (typeof document !== "undefined") {
      this._slots = new Slots(this, coreOptions);
      this._slots.watchDocument();
      this._hooks.push(() => this._rulesKnown.then(() => this._slots.start()));
    }
    // The rules, fetched beside the wasm: after the stub's queue is
    // replayed (a consent() call in it holds from the start).
    this._prefetch = Promise.resolve().then(() =>
      plain && typeof document !== "undefined" ? prefetchRules(coreOptions, this._earlyConsent()) : null,
    );
    const started = plain
      ? start(wasmUrl)
      : Promise.reject(
          new SegmintError({
            code: "invalid_option",
            message: 'option `options`: expected an object, such as load({ endpoint: "https://collector.example" })',
            option: "options",
          }),
        );
    this.ready = started.then(
      (wasm) => {
        // consent() called before the core is ready (a consent banner's
        // script, the stub's queue) holds from the start: starting as
        // granted and then switching would write the id cookie and
        // storage the shopper has not agreed to. The call is still
        // replayed in its place, which remembers the choice.
        const early = this._earlyConsent();
        if (early) coreOptions.consent = early;
        let text;
        try {
          text = JSON.stringify(coreOptions);
        } catch (e) {
          throw new SegmintError({ code: "invalid_option", message: `options: ${e.message}`, option: "options" });
        }
        try {
          // The build is split: the engine's code is not in this module.
          this._host = new Host();
          this._inst = new wasm.Segmint(text, (type, payload) => this._notice(type, payload), true, this._host);
          this._href = location.href;
        } catch (e) {
          throw typeof e === "string" ? new SegmintError(JSON.parse(e)) : e;
        }
        // The wasm memory, for the benchmarks' memory figure.
        this._memory = wasm.memory;
        this._engineArrived = this._fetchEngine ? this._startEngine(wasm.exports) : Promise.resolve();
        this._rulesKnown = Promise.all([this._startRules(), this._engineArrived]);
        this.settings = JSON.parse(this._get("settings"));
        // A page prerendered by Speculation Rules runs before anyone sees
        // it: the core starts and slots decide now, so it shows at once,
        // but nothing is recorded (no page view, no banner exposure) until
        // it is shown, and nothing at all if it never is.
        if (document.prerendering) document.addEventListener("prerenderingchange", () => this._record(), { once: true });
        else this._record();
        // Then slots decide, with whatever the buffered calls changed.
        for (const hook of this._hooks) hook(this);
        return this;
      },
      (e) => {
        if (e instanceof SegmintError) throw e;
        const why = e && e.message ? e.message : e;
        // A page whose Content-Security-Policy forbids WebAssembly: every
        // browser names the policy (Firefox "blocked by CSP"), and some
        // throw the CompileError an old browser throws.
        const csp = /Content.Security.Policy|\bCSP\b/i.test(why);
        // What an older browser says (its WebAssembly lacks reference
        // types, bulk memory or multi-value), and a damaged file too.
        const hint = csp
          ? " (the page's Content-Security-Policy does not allow WebAssembly: add 'wasm-unsafe-eval' to its script-src)"
          : typeof WebAssembly !== "undefined" && e instanceof WebAssembly.CompileError
            ? " (the browser could not compile segmint's WebAssembly: it needs Chrome or Edge 96, Firefox 79, Safari 15 or later, and an intact segmint_wasm_bg.wasm)"
            : "";
        throw new SegmintError({ code: "load_failed", message: `segmint could not start${hint}: ${why}` });
      },
    );
    // Segments under the rules at start: once the engine's module is
    // there and the rules in force are known.
    this.segmentsReady = this.ready.then(() => this._rulesKnown);
    this.segmentsReady.catch(noop);
    this.ready.catch((e) => {
      const pending = this._pending || [];
      this._pending = null;
      this._failed = e;
      // A failed client lets go of the page: a corrected load() replaces
      // it, and its clicks must not reach this one too.
      stopCapture();
      if (this._slots) this._slots.stop();
      this._emit("error", e);
      for (const [, , settle] of pending) settle(rejected(e));
    });
  }

  /** The state a consent() call made before the core ran asks for. */
  _earlyConsent() {
    const early = (this._pending || []).find(([method]) => method === "consent");
    const state = early && early[1][0];
    return ["granted", "pending", "denied"].includes(state) ? state : undefined;
  }

  /** Fetches the later module now, if it is not on its way (a slot
   * waits for a decision, flush() for answers). */
  _wantEngine() {
    if (!this._fetchEngine || this._engineModule) return;
    this._engineModule = this._fetchEngine(this._engineUrl);
    this._engineModule.catch(noop);
    if (this._engineWanted) this._engineWanted();
  }

  /** The later module instantiated over the core's exports once fetched
   * (at idle unless wanted sooner), and the core told. Resolves then, or
   * once a first try failed (reported: segments stay as the visitor had
   * them, slots show their default, events wait in storage). A failed
   * fetch is tried again when the browser comes online, or after a
   * while: without it this page view sends nothing. */
  _startEngine(exports) {
    const attempt = (tries) => {
      const wanted = new Promise((resolve) => (this._engineWanted = resolve));
      if (this._engineModule) this._engineWanted();
      else if (tries > 0) {
        const again = () => this._wantEngine();
        const timer = setTimeout(again, 15000 * tries);
        addEventListener("online", again);
        // However it came to be wanted (online, the timer, a slot,
        // flush()), this try's triggers go: none may start the next one.
        wanted.then(() => {
          removeEventListener("online", again);
          clearTimeout(timer);
        });
      } else if (typeof requestIdleCallback === "function") requestIdleCallback(() => this._wantEngine(), { timeout: 2000 });
      else setTimeout(() => this._wantEngine(), 200);
      return wanted
        .then(() => this._engineModule)
        .then((module) => WebAssembly.instantiate(module, { p: exports }))
        .then(
          () => this._inst.call(8, undefined, ""),
          (e) => {
            this._emit(
              "error",
              new SegmintError({ code: "load_failed", message: `segmint's later module could not load: ${e && e.message ? e.message : e}` }),
            );
            this._engineModule = null;
            if (tries < 4) attempt(tries + 1);
          },
        );
    };
    return attempt(0);
  }

  /** Makes the rules fetch the core wants now, with the request begun
   * beside the wasm when it is that one. Resolves once the rules in force
   * are known: cached, inline, fetched, or none to be had (no rulesUrl,
   * a failed fetch, a bad document, consent not granted). */
  _startRules() {
    const wanted = this._get("rulesRequest");
    if (!wanted) return Promise.resolve();
    const { url, etag } = JSON.parse(wanted);
    return this._prefetch
      .then((pre) => (pre && pre.url === url && pre.etag === etag ? pre.answer : fetchRules(url, etag)))
      .then(([status, tag, text]) => this._host.rulesAnswered(status, text, tag))
      .catch(noop);
  }

  /** Calls may record from now on: the buffered ones first, in order. */
  _record() {
    const pending = this._pending;
    this._pending = null;
    this._recorder = this._inst;
    for (const [method, args, settle] of pending) settle(this[method](...args));
  }

  /** Runs `hook(client)` once the core is ready (slots, capture). */
  _whenReady(hook) {
    if (this._inst) hook(this);
    else this._hooks.push(hook);
  }

  _notice(type, payload) {
    if (type === "debug") {
      console.info("[segmint]", payload);
      return;
    }
    const data = JSON.parse(payload);
    this._emit(type, type === "error" ? new SegmintError(data) : data);
  }

  _emit(type, data) {
    const fns = this._listeners.get(type);
    if (!fns) {
      if (type === "error") console.warn("[segmint]", data.message);
      return;
    }
    for (const fn of [...fns]) {
      try {
        fn(data);
      } catch (e) {
        console.error("[segmint] a listener for", type, "threw", e);
      }
    }
  }

  /** A call made before the core is ready: replayed, in order, once it
   * is; rejected if it never will be. */
  _wait(method, args) {
    if (this._failed) return rejected(this._failed);
    const p = new Promise((resolve) => this._pending.push([method, args, resolve]));
    // It may settle as a rejection: never an unhandled one.
    p.catch(noop);
    return p;
  }

  _fail(err) {
    this._emit("error", err);
    return rejected(err);
  }

  /** The core, told first if the URL changed since the last call: a
   * single-page app navigates without a reload, and an event carries the
   * page it happens on. (A string comparison here; the core re-reads the
   * page only when it changed.) */
  _core() {
    const inst = this._inst;
    if (location.href !== this._href) {
      this._href = location.href;
      inst.call(6, undefined, "");
    }
    return inst;
  }

  /** What the core reads out (READS), once it runs; `current`: for the
   * page as it is now (see _core). */
  _get(what, arg, current) {
    return (current ? this._core() : this._inst).get(READS[what], arg);
  }

  /** Result of a wasm call: undefined, or an error as JSON text. */
  _result(err) {
    return err === undefined ? OK : this._fail(new SegmintError(JSON.parse(err)));
  }

  /** Record a custom event. Resolves once queued. */
  track(event, properties) {
    if (!this._recorder) return this._wait("track", [event, properties]);
    if (typeof event !== "string") return this._fail(invalid("track(event)", "expected a string"));
    let json;
    try {
      json = encode(properties, "properties");
    } catch (e) {
      return this._fail(e);
    }
    const err = this._core().call(0, event, json);
    return err === undefined ? OK : this._result(err);
  }

  /** Record a page view: page(), page(name), page(properties), page(name, properties). */
  page(name, properties) {
    if (!this._recorder) return this._wait("page", [name, properties]);
    if (name !== null && typeof name === "object") [name, properties] = [undefined, name];
    if (name !== undefined && name !== null && typeof name !== "string") return this._fail(invalid("page(name)", "expected a string"));
    // The core reads the page afresh for a page view.
    this._href = location.href;
    return this._call(() => this._recorder.call(1, name ?? undefined, encode(properties, "properties")));
  }

  /** identify(userId, traits) or identify(traits). */
  identify(userId, traits) {
    if (!this._recorder) return this._wait("identify", [userId, traits]);
    if (userId !== null && typeof userId === "object") [userId, traits] = [undefined, userId];
    if (typeof userId === "number") userId = String(userId);
    if (userId !== undefined && userId !== null && typeof userId !== "string") {
      return this._fail(invalid("identify(userId)", "expected a string"));
    }
    return this._call(() => this._core().call(2, userId ?? undefined, encode(traits, "traits")));
  }

  /** Segment e-commerce "Product Clicked"; requires product_id. */
  productClicked(properties) {
    if (!this._recorder) return this._wait("productClicked", [properties]);
    return this._call(() => this._core().call(3, undefined, encode(properties ?? {}, "properties")));
  }

  /** Segment e-commerce "Products Searched" with `query`. */
  productsSearched(query, properties) {
    if (!this._recorder) return this._wait("productsSearched", [query, properties]);
    if (typeof query !== "string") return this._fail(invalid("productsSearched(query)", "expected a string"));
    return this._call(() => this._core().call(4, query, encode(properties, "properties")));
  }

  /** Segment e-commerce "Order Completed"; requires order_id and products. */
  orderCompleted(order) {
    if (!this._recorder) return this._wait("orderCompleted", [order]);
    return this._call(() => this._core().call(5, undefined, encode(order ?? {}, "order")));
  }

  _call(f) {
    try {
      return this._result(f());
    } catch (e) {
      return this._fail(e instanceof SegmintError ? e : new SegmintError({ code: "invalid_argument", message: String(e) }));
    }
  }

  /** Forget the user: new anonymous id; queued events still go out. */
  reset() {
    if (this._recorder) this._recorder.call(7, undefined, "");
    else if (this._pending) this._pending.push(["reset", [], noop]);
  }


  /** Send everything queued now; resolves to {sent, pending}. */
  flush() {
    if (!this._recorder) return this._wait("flush", []);
    // Answers are heard once the later module is there.
    this._wantEngine();
    return this._host.settled(this._recorder.flush()).then(JSON.parse);
  }

  /** consent("granted" | "denied" | "pending"), remembered in a cookie. */
  consent(state) {
    if (!this._recorder) return this._wait("consent", [state]);
    if (state === undefined) return Promise.resolve(this._get("consentState"));
    return this._result(this._recorder.call(9, String(state), ""));
  }

  /** The anonymous id (null until ready). */
  anonymousId() {
    return this._inst ? this._get("anonymousId") : null;
  }

  /** The user id after identify (null until then). */
  userId() {
    return this._inst ? this._get("userId") ?? null : null;
  }

  /** Current segment ids, highest priority first. */
  segments() {
    return this._inst ? JSON.parse(this._get("segments", undefined, true)) : [];
  }

  /** Whether the user is in segment `id`. */
  inSegment(id) {
    return this._inst ? this._get("inSegment", String(id), true) !== undefined : false;
  }

  /** The user's traits: from identify, and computed from the rules. */
  traits() {
    return this._inst ? JSON.parse(this._get("traits", undefined, true)) : {};
  }

  /**
   * Shows the variant for the user's segment in an element: variants map
   * segment ids (and "default") to a <template>, a template id, or a
   * function (element, {segment, variation}). Returns {undo()}. A missing
   * element or a bad variant is reported as `invalid_argument` (on
   * "error"), never thrown; its handle does nothing.
   */
  personalize(target, variants) {
    if (!this._slots) return { undo() {} };
    try {
      return this._slots.personalize(target, variants);
    } catch (e) {
      // A page without the element (a layout that lacks it) keeps
      // running: the error is reported, and the handle does nothing.
      this._fail(e instanceof SegmintError ? e : invalid("personalize", String(e)));
      return { undo() {} };
    }
  }

  /** on("segments" | "error", listener) */
  on(type, fn) {
    if (typeof fn !== "function") return this;
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return this;
  }

  /** Removes a listener added with on(). */
  off(type, fn) {
    this._listeners.get(type)?.delete(fn);
    return this;
  }
}
