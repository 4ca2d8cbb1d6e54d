// The script-tag loader:
//
//   <script async src="/segmint/embed.js" data-endpoint="https://collector.example"
//           data-write-key="storefront" data-rules-url="https://collector.example/v1/rules"></script>
//
// Reads its options from data-* attributes (more in data-options, JSON),
// loads the wasm from beside itself (WebAssembly.instantiateStreaming,
// falling back when the server sends the wrong MIME type), replays what
// the stub queued, in order, and becomes window.segmint.
import { load } from "./index.js";

(function () {
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
  if (!options.wasmUrl && script && script.src) options.wasmUrl = new URL("segmint_wasm_bg.wasm", script.src).href;

  const queued = Array.isArray(window.segmint) ? window.segmint : [];
  const client = load(options);
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
