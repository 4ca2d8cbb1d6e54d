// Checks the byte budgets in budgets.json against the built package (pkg/):
// what a page loads at start through the embed and through the npm entry,
// the stub snippet, and the wasm's memory at start. Bytes are
// deterministic, so a build over a budget fails, with the figure and the
// budget; timings are benchmarks (bench/), never checked here.
//
//   node scripts/check-budgets.mjs [--json]
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { budgets } = JSON.parse(fs.readFileSync(path.join(ROOT, "budgets.json"), "utf8"));

const brotli = (data) =>
  zlib.brotliCompressSync(data, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  }).length;

/** The bytes of a budget's files: each file as built, or, for `bundle`,
 * the npm entry as a bundler ships it (esbuild, minified, ES2020). */
async function contents(budget) {
  const parts = (budget.files || []).map((f) => fs.readFileSync(path.join(ROOT, f)));
  if (budget.bundle) {
    const out = await esbuild.build({
      entryPoints: [path.join(ROOT, budget.bundle)],
      bundle: true,
      minify: true,
      format: "esm",
      target: "es2020",
      write: false,
      logLevel: "silent",
      // The wasm is fetched by URL, counted below as a file of its own.
      loader: { ".wasm": "file" },
      outdir: "/tmp/segmint-budget-bundle",
    });
    for (const f of out.outputFiles) if (f.path.endsWith(".js")) parts.push(Buffer.from(f.contents));
  }
  return parts;
}

/** Initial linear memory of a wasm module (its memory section), in bytes. */
function wasmInitialMemory(file) {
  const b = fs.readFileSync(path.join(ROOT, file));
  let at = 8;
  const leb = () => {
    let n = 0, shift = 0, byte;
    do {
      byte = b[at++];
      n += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return n;
  };
  while (at < b.length) {
    const id = b[at++];
    const size = leb();
    const end = at + size;
    if (id === 5) {
      leb(); // count
      leb(); // flags
      return leb() * 65536;
    }
    at = end;
  }
  throw new Error(`${file}: no memory section`);
}

async function measure(budget) {
  if (budget.measure === "wasm-memory") return wasmInitialMemory(budget.files[0]);
  const parts = await contents(budget);
  return parts.reduce((n, data) => n + (budget.measure === "raw" ? data.length : brotli(data)), 0);
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const rows = [];
for (const budget of budgets) rows.push({ ...budget, figure: await measure(budget) });
if (process.argv.includes("--json")) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  for (const r of rows) {
    const target = r.target ? `; target ${kb(r.target)}` : "";
    console.log(`${r.figure <= r.max ? "ok  " : "OVER"} ${r.name}: ${kb(r.figure)} (${r.figure} B), budget ${kb(r.max)}${target}`);
  }
}
const over = rows.filter((r) => r.figure > r.max);
if (over.length) {
  for (const r of over) console.error(`over budget: ${r.name} is ${r.figure} B, its budget ${r.max} B (budgets.json)`);
  process.exit(1);
}
