// esbuild does not emit assets referenced with new URL(..., import.meta.url):
// copy the .wasm next to the bundle (README says so), and it is found there.
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(here, "../package.json"));
const pkgDir = path.dirname(require.resolve("segmint/package.json"));
fs.mkdirSync(path.join(here, "dist"), { recursive: true });
await esbuild.build({
  entryPoints: [path.join(here, "../app/main.js")],
  bundle: true,
  format: "esm",
  minify: true,
  outfile: path.join(here, "dist/main.js"),
  nodePaths: [path.join(here, "../node_modules")],
  logLevel: "warning",
});
for (const wasm of ["segmint_wasm_bg.wasm", "segmint_engine.wasm"]) fs.copyFileSync(path.join(pkgDir, wasm), path.join(here, "dist", wasm));
