// webpack 5 turns `new URL("segmint_wasm_bg.wasm", import.meta.url)` into
// an emitted asset by itself: no loader or experiment is needed.
const path = require("node:path");
module.exports = {
  mode: "production",
  entry: path.resolve(__dirname, "../app/main.js"),
  output: { path: path.resolve(__dirname, "dist"), filename: "main.js", publicPath: "auto", clean: true },
  resolve: { modules: [path.resolve(__dirname, "../node_modules")] },
  stats: "errors-warnings",
};
