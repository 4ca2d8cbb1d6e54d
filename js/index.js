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
    startWasm(wasmUrl).then((exports) =>
      // The build shortens the wasm's export names: find the memory by type.
      Object.assign({ memory: Object.values(exports).find((e) => e instanceof WebAssembly.Memory) }, wasm),
    ),
  ));
}

/** Where Vite's dev server (before Vite 8) puts pre-bundled dependencies. */
const VITE_DEPS = "/node_modules/.vite/deps/";

/**
 * Instantiates the wasm from `wasmUrl`, or else from beside this module.
 * Vite's dev server before Vite 8 serves this module from
 * node_modules/.vite/deps/ but leaves the .wasm behind (vitejs/vite#8427),
 * so `npm run dev` would fail where the production build works: there the
 * package's own copy is tried, and if that is not it either, the error
 * says what to configure.
 */
function startWasm(wasmUrl) {
  const init = (path) => initWasm(path ? { module_or_path: path } : undefined);
  if (wasmUrl) return init(wasmUrl);
  return init().catch((error) => {
    const here = import.meta.url;
    if (typeof here !== "string" || !here.includes(VITE_DEPS)) throw error;
    return init(new URL("../../segmint/segmint_wasm_bg.wasm", here)).catch(() => {
      throw new Error(
        `${error && error.message ? error.message : error}. Vite's dev server moved segmint without its .wasm ` +
          `(vitejs/vite#8427): add optimizeDeps: { exclude: ["segmint"] } to vite.config, or pass load({ wasmUrl })`,
      );
    });
  });
}
