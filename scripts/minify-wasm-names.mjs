// Shortens the names on the wasm/JS boundary in pkg/: wasm-bindgen names
// each import like `__wbg_instanceof_PageTransitionEvent_82193d5b19677567`
// and each export like `segmint_productsSearched`, and every name is
// written twice, in the wasm and in the glue. The hashes do not compress.
//
// binaryen's own pass renames them in the wasm (to `a`, `b`, ..., all from
// module `a`) and prints the mapping; this script applies the mapping to
// the glue and its type declarations, and fails the build if any name is
// not found exactly where it is expected.
//
//   node scripts/minify-wasm-names.mjs [pkgDir]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { FEATURES } from "./wasm-opt-flags.mjs";

const dir = path.resolve(process.argv[2] ?? "pkg");
const wasmFile = path.join(dir, "segmint_wasm_bg.wasm");
const glueFile = path.join(dir, "segmint_wasm.js");
const typeFiles = [path.join(dir, "segmint_wasm.d.ts"), path.join(dir, "segmint_wasm_bg.wasm.d.ts")];
const MODULE = "./segmint_wasm_bg.js";

// -g: the function names stay for scripts/split-wasm.mjs, which runs next
// and optimizes the wasm.
const stdout = execFileSync("wasm-opt", [wasmFile, "-g", "--minify-imports-and-exports-and-modules", ...FEATURES, "-o", wasmFile], {
  encoding: "utf8",
});
const map = JSON.parse(stdout.slice(stdout.indexOf("{")));

let glue = fs.readFileSync(glueFile, "utf8");
const fail = (what) => {
  throw new Error(`minify-wasm-names: ${what}; the glue's shape changed (wasm-bindgen upgrade?)`);
};
const escape = (s) => s.replace(/[$]/g, "\\$&");
// Replaces `pattern` (a regexp source with the name in it), checking how
// often it occurred.
function rename(text, pattern, replacement, expected, what) {
  const re = new RegExp(pattern, "g");
  const found = text.match(re)?.length ?? 0;
  if (!expected(found)) fail(`${what} found ${found} times`);
  return text.replace(re, () => replacement);
}

// Imports: one key each in the object the glue hands to the instance.
for (const [module, name, short] of map.imports) {
  if (module !== MODULE) fail(`import from unexpected module ${module}`);
  glue = rename(glue, `\\b${escape(name)}: function`, `${short}: function`, (n) => n === 1, `import ${name}`);
}
glue = rename(glue, `"${escape(MODULE)}": import0`, `"a": import0`, (n) => n === 1, `import module ${MODULE}`);

// Exports: the glue calls them as `wasm.<name>` (some, such as the abort
// hooks, it never calls); afterwards every such call must use a new name.
for (const [name, short] of map.exports) {
  glue = rename(glue, `\\bwasm\\.${escape(name)}\\b`, `wasm.${short}`, () => true, `export ${name}`);
}
const shortExports = new Set(map.exports.map(([, short]) => short));
for (const [, name] of glue.matchAll(/\bwasm\.([\w$]+)/g)) {
  if (!shortExports.has(name)) fail(`wasm.${name} is not an export of the minified wasm`);
}
fs.writeFileSync(glueFile, glue);

// Type declarations of the raw exports (InitOutput and the wasm's own).
for (const file of typeFiles) {
  if (!fs.existsSync(file)) continue;
  let types = fs.readFileSync(file, "utf8");
  for (const [name, short] of map.exports) {
    types = types.replace(new RegExp(`(readonly |export const )${escape(name)}:`, "g"), (_, p) => `${p}${short}:`);
  }
  fs.writeFileSync(file, types);
}

console.log(`minify-wasm-names: ${map.imports.length} imports and ${map.exports.length} exports renamed`);
