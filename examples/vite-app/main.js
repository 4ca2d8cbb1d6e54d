// Vite resolves `new URL("segmint_wasm_bg.wasm", import.meta.url)` inside
// the package and emits the .wasm as an asset: nothing to configure.
import "../app/main.js";
