// The page's one segmint client, started with whichever wasm loader the
// entry uses: the npm entry (index.js) or the script-tag embed (embed.js).

import * as wasm from "./segmint_wasm.js";
import { Client, inertMethods } from "./client.js";
import { SegmintError } from "./json.js";

// The page's client, shared by every copy of segmint in the page (the embed
// beside an npm bundle): a second load() (React StrictMode effects, hot
// reloading, a tag inserted twice) must not start a second core that
// records every click twice.
const RUNNING = Symbol.for("segmint.client");

/** Options as comparable text: keys sorted, the wasm's URL left out. */
function optionsKey(options) {
  const { wasmUrl, ...rest } = options || {};
  try {
    return JSON.stringify(rest, (_, v) =>
      v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
    );
  } catch {
    return NaN; // equal to nothing
  }
}

/** True in a page; false in Node or during server-side rendering. */
function inBrowser() {
  return typeof window !== "undefined" && typeof document !== "undefined";
}

/** A browser's Web Worker (a module bundled into one, a tag manager or a
 * sandbox running scripts there): no cookie or localStorage holds the
 * anonymous id and no document takes banners, so segmint refuses to
 * start, loudly, rather than drop every call as it does on the server.
 * Edge runtimes (Cloudflare Workers) define WorkerGlobalScope too, but no
 * `location`: they stay server-side. */
function inWorker() {
  return typeof WorkerGlobalScope !== "undefined" && typeof location !== "undefined";
}

const IN_WORKER =
  "segmint runs in a page, not in a Web Worker (no cookie or localStorage for the anonymous id, no document for banners): call load() in the page";

/** A wasm that could not be fetched (fetch rejects with a TypeError:
 * offline, blocked, from another origin without CORS, or not matching
 * the `integrity` it was fetched with) named in the error, with the
 * usual causes; other errors as they are. */
export function fetchFailure(error, url, integrity) {
  if (!(error instanceof TypeError) || !url) return error;
  const href = new URL(url, location.href);
  const causes = [];
  if (href.origin !== location.origin) causes.push("from another origin, its server must send Access-Control-Allow-Origin");
  if (integrity) causes.push("its content must be the wasm built with this embed.js");
  const why = causes.length ? ` (${causes.join("; ")})` : "";
  return new Error(`${error.message}: could not fetch ${href.href}${why}`);
}

/** A page without WebAssembly (iOS Lockdown Mode, hardened browsers)
 * cannot run segmint: it fails to start like any other load failure
 * (reported, slots show their default), rather than dropping calls
 * silently as on the server. */
const NO_WASM = "this browser runs no WebAssembly (turned off, as in iOS Lockdown Mode)";

/** The second wasm module (the segment engine and the gzip encoder; see
 * scripts/split-wasm.mjs), fetched and compiled: its server may send the
 * wrong MIME type, as for the first. */
export function compileEngine(url, integrity) {
  return fetch(integrity ? new Request(url, { integrity }) : url)
    .then((r) => {
      if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
      const whole = () => r.arrayBuffer().then((b) => WebAssembly.compile(b));
      return WebAssembly.compileStreaming ? WebAssembly.compileStreaming(r.clone()).catch(whole) : whole();
    })
    .catch((e) => {
      throw fetchFailure(e, url, integrity);
    });
}

/**
 * `load()` (see index.js), with the wasm started by `instantiate` and the
 * engine's module fetched by `engine`.
 * @param {import("./index").LoadOptions} options
 * @param {(wasmUrl?: string) => Promise<object>} instantiate starts the wasm
 * @param {(wasmUrl?: string) => Promise<WebAssembly.Module>} engine fetches the engine's module
 * @returns {import("./index").SegmintClient}
 */
export function loadClient(options, instantiate, engine) {
  if (inWorker()) return new Client(options, () => Promise.reject(new Error(IN_WORKER)));
  if (!inBrowser()) {
    const inert = Object.assign(Object.create(null), inertMethods, {
      ready: Promise.resolve(),
      segmentsReady: Promise.resolve(),
      personalize: () => ({ undo() {} }),
      on: () => inert,
      off: () => inert,
    });
    return inert;
  }
  const running = window[RUNNING];
  if (running && !running._failed) {
    if (optionsKey(options) !== optionsKey(running._options)) {
      running._emit(
        "error",
        new SegmintError({
          code: "already_loaded",
          message: "segmint is already loaded in this page: load() returned that client, and its first options stay in force",
        }),
      );
    }
    return running;
  }
  return (window[RUNNING] = new Client(
    options,
    (wasmUrl) =>
      (typeof WebAssembly === "undefined" ? Promise.reject(new Error(NO_WASM)) : instantiate(wasmUrl)).then((exports) =>
        // The build shortens the wasm's export names: find the memory by type.
        Object.assign({ memory: Object.values(exports).find((e) => e instanceof WebAssembly.Memory), exports }, wasm),
      ),
    engine,
  ));
}
