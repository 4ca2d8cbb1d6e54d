// The script-tag loader:
//
//   <script async src="/segmint/embed.js" data-endpoint="https://collector.example"
//           data-write-key="storefront" data-rules-url="https://collector.example/v1/rules"></script>
//
// Reads its options from data-* attributes (more in data-options, JSON),
// loads the wasm (and later the segment engine's) from beside itself (WebAssembly.instantiateStreaming,
// falling back when the server sends the wrong MIME type), replays what
// the stub queued, in order, and becomes window.segmint.
import initWasm from "./segmint_wasm.js";
import { compileEngine, fetchFailure, loadClient } from "./load.js";

(function () {
  // Imported during server-side rendering: there is no page to load into.
  if (typeof document === "undefined") return;
  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  let options = {};
  try {
    options = data.options ? JSON.parse(data.options) : {};
  } catch (e) {
    console.warn("[segmint] data-options is not valid JSON:", e.message);
  }
  if (data.endpoint) options.endpoint = data.endpoint;
  if (data.writeKey) options.writeKey = data.writeKey;
  if (data.rulesUrl) options.rulesUrl = data.rulesUrl;
  // The sibling wasm is fetched with the hash the build put here (see
  // scripts/build.sh), so the script tag's `integrity` covers it too. A
  // wasmUrl from data-options may be another build: fetched as it is.
  let integrity;
  let engineIntegrity;
  if (!options.wasmUrl && script && script.src) {
    options.wasmUrl = new URL("segmint_wasm_bg.wasm", script.src).href;
    integrity = typeof WASM_INTEGRITY === "string" ? WASM_INTEGRITY : undefined;
    engineIntegrity = typeof ENGINE_INTEGRITY === "string" ? ENGINE_INTEGRITY : undefined;
  }

  const queued = Array.isArray(window.segmint) ? window.segmint : [];
  // The wasm is beside embed.js (or at data-options' wasmUrl): no bundler
  // moved it, so the npm entry's Vite fallback is not needed here.
  // The engine's module is beside the first one.
  const client = loadClient(
    options,
    (wasmUrl) =>
      initWasm(wasmUrl ? { module_or_path: integrity ? new Request(wasmUrl, { integrity }) : wasmUrl } : undefined).catch((e) => {
        throw fetchFailure(e, wasmUrl, integrity);
      }),
    (wasmUrl) => compileEngine(new URL("segmint_engine.wasm", wasmUrl || location.href).href, engineIntegrity),
  );
  window.segmint = client;
  for (const [method, ...args] of queued) {
    if (typeof client[method] === "function") {
      try {
        client[method](...args);
      } catch (e) {
        console.warn("[segmint] a queued call failed:", method, e);
      }
    }
  }
})();
