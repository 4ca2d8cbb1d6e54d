// segmint: the npm entry. `load(options)` returns a client at once; the
// wasm core loads in the background and calls made meanwhile are replayed
// in order. In Node or during server-side rendering every call is a no-op.

import initWasm, * as wasm from "./segmint_wasm.js";
import { Client, inertMethods } from "./client.js";

export { SegmintError } from "./json.js";
export { Client };

/** True where segmint can run: a browser page with WebAssembly. */
function inBrowser() {
  return typeof window !== "undefined" && typeof document !== "undefined" && typeof WebAssembly !== "undefined";
}

/**
 * Starts segmint. Returns at once; see index.d.ts for the options.
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
  return new Client(options, (wasmUrl) =>
    initWasm(wasmUrl ? { module_or_path: wasmUrl } : undefined).then((exports) =>
      // The build shortens the wasm's export names: find the memory by type.
      Object.assign({ memory: Object.values(exports).find((e) => e instanceof WebAssembly.Memory) }, wasm),
    ),
  );
}
