// segmint: the npm entry. `load(options)` returns a client at once; the
// wasm core loads in the background and calls made meanwhile are replayed
// in order. In Node or during server-side rendering every call is a no-op.

import initWasm from "./segmint_wasm.js";
import { Client } from "./client.js";
import { SegmintError } from "./json.js";
import { compileEngine, fetchFailure, loadClient } from "./load.js";

export { SegmintError, Client };

/**
 * Starts segmint. Returns at once; see index.d.ts for the options. A page
 * has one client: called again, load() returns it (reporting
 * `already_loaded` if the options differ) unless it failed to start.
 * @param {import("./index").LoadOptions} options
 * @returns {import("./index").SegmintClient}
 */
export function load(options) {
  return loadClient(options, startWasm, startEngine);
}

/** Vite's dev server (before Vite 8) puts pre-bundled dependencies in
 * node_modules/.vite/deps/ (deps_temp_* while re-optimizing). */
const VITE_DEPS = /\/\.vite\/deps[^/]*\/.*$/;

/**
 * Instantiates the wasm from `wasmUrl`, or else from beside this module.
 * Vite's dev server before Vite 8 serves this module from
 * node_modules/.vite/deps/ but leaves the .wasm behind (vitejs/vite#8427;
 * Vite 8 points the URL below at the package instead), so `npm run dev`
 * would fail where the production build works. There the package's own
 * copy is loaded first (no failed request or MIME warning in the dev
 * console), then the deps directory; if neither is it, the error says what
 * to configure.
 */
function startWasm(wasmUrl) {
  const init = (path) =>
    initWasm({ module_or_path: path }).catch((e) => {
      throw fetchFailure(e, path);
    });
  if (wasmUrl) return init(wasmUrl);
  // The one form bundlers resolve (and emit) as an asset: no other
  // reference to this module's URL, which webpack would inline as a path
  // of the build machine.
  return besideThis(init, new URL("segmint_wasm_bg.wasm", import.meta.url).href);
}

/** The segment engine's module (see scripts/split-wasm.mjs): beside
 * `wasmUrl` if given, else beside this module, as the first one. */
function startEngine(wasmUrl) {
  if (wasmUrl) return compileEngine(new URL("segmint_engine.wasm", new URL(wasmUrl, location.href)).href);
  return besideThis(compileEngine, new URL("segmint_engine.wasm", import.meta.url).href);
}

/** `init(beside)`, or under Vite's dev server the package's own copy
 * first (see startWasm). */
function besideThis(init, beside) {
  if (!VITE_DEPS.test(beside)) return init(beside);
  const file = beside.slice(beside.lastIndexOf("/") + 1);
  return init(beside.replace(VITE_DEPS, `/segmint/${file}`)).catch((error) =>
    init(beside).catch(() => {
      throw new Error(
        `${error && error.message ? error.message : error}. Vite's dev server moved segmint without its .wasm ` +
          `(vitejs/vite#8427): add optimizeDeps: { exclude: ["segmint"] } to vite.config, or pass load({ wasmUrl })`,
      );
    }),
  );
}
