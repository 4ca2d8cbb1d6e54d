// segmint: the npm entry. `load(options)` returns a client at once; the
// wasm core loads in the background and calls made meanwhile are replayed
// in order. In Node or during server-side rendering every call is a no-op.

import initWasm, * as wasm from "./segmint_wasm.js";
import { Client, inertMethods } from "./client.js";
import { SegmintError } from "./json.js";

export { SegmintError, Client };

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

/** True where segmint can run: a browser page with WebAssembly. */
function inBrowser() {
  return typeof window !== "undefined" && typeof document !== "undefined" && typeof WebAssembly !== "undefined";
}

/**
 * Starts segmint. Returns at once; see index.d.ts for the options. A page
 * has one client: called again, load() returns it (reporting
 * `already_loaded` if the options differ) unless it failed to start.
 * @param {import("./index").LoadOptions} options
 * @returns {import("./index").SegmintClient}
 */
export function load(options) {
  if (!inBrowser()) {
    const inert = Object.assign(Object.create(null), inertMethods, {
      ready: Promise.resolve(),
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
  return (window[RUNNING] = new Client(options, (wasmUrl) =>
    initWasm(wasmUrl ? { module_or_path: wasmUrl } : undefined).then((exports) =>
      // The build shortens the wasm's export names: find the memory by type.
      Object.assign({ memory: Object.values(exports).find((e) => e instanceof WebAssembly.Memory) }, wasm),
    ),
  ));
}
