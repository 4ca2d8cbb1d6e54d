// Writes pkg/package.json for the published `segmint` package (wasm-pack's
// generated one knows nothing of the facade, the embed or the types).
import fs from "node:fs";

const cargo = fs.readFileSync(new URL("../Cargo.toml", import.meta.url), "utf8");
const version = /\[workspace\.package\][^[]*?version\s*=\s*"([^"]+)"/s.exec(cargo)[1];
const files = fs
  .readdirSync(new URL("../pkg/", import.meta.url))
  .filter((f) => !["package.json", ".gitignore"].includes(f) && !f.endsWith(".tgz"));

const pkg = {
  name: "segmint",
  version,
  description: "Browser tracking and on-device personalization in WebAssembly: batched Segment-compatible events, local segments, personalized banners with a holdout.",
  license: "MIT",
  repository: { type: "git", url: "https://github.com/segmint/segmint" },
  keywords: ["analytics", "tracking", "segment", "personalization", "wasm", "ab-testing"],
  type: "module",
  main: "./index.js",
  module: "./index.js",
  types: "./index.d.ts",
  exports: {
    ".": { types: "./index.d.ts", default: "./index.js" },
    "./embed": "./embed.js",
    "./stub": "./stub.min.js",
    "./segmint_wasm_bg.wasm": "./segmint_wasm_bg.wasm",
    "./segmint_engine.wasm": "./segmint_engine.wasm",
    "./package.json": "./package.json",
  },
  files,
  // Only the embed has side effects (it installs window.segmint).
  sideEffects: ["./embed.js"],
};
fs.writeFileSync(new URL("../pkg/package.json", import.meta.url), JSON.stringify(pkg, null, 2) + "\n");
