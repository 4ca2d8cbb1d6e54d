// Prints what a page loads for segmint: raw, gzip -9 and brotli (q11) bytes
// per file and in total.  node bench/size.mjs [--json] [files...]
// Default files: the embed (loader + wasm-bindgen glue + wasm) when built,
// else the npm entry's glue + wasm; then, apart, what the page fetches
// later (the segment engine's module).
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const asJson = args.includes("--json");
let files = args.filter((a) => !a.startsWith("--"));
let later = [];
if (!files.length) {
  later = ["pkg/segmint_engine.wasm"].filter((f) => fs.existsSync(path.join(ROOT, f)));
  files = fs.existsSync(path.join(ROOT, "pkg/embed.js"))
    ? ["pkg/embed.js", "pkg/segmint_wasm_bg.wasm"]
    : ["pkg/segmint_wasm.js", "pkg/segmint_wasm_bg.wasm"];
}

export function sizes(file) {
  const data = fs.readFileSync(path.resolve(ROOT, file));
  return {
    file,
    raw: data.length,
    gzip: zlib.gzipSync(data, { level: 9 }).length,
    brotli: zlib.brotliCompressSync(data, {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length },
    }).length,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) printSizes();

function printSizes() {
  const sum = (rows, file) => rows.reduce((t, r) => ({ file, raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }), { raw: 0, gzip: 0, brotli: 0 });
  const rows = files.map(sizes);
  const total = sum(rows, "total at start");
  const laterRows = later.map(sizes);
  if (asJson) {
    console.log(JSON.stringify({ files: rows, total, later: laterRows, laterTotal: sum(laterRows, "total later") }, null, 2));
  } else {
    const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
    console.log("file".padEnd(30) + "raw".padStart(10) + "gzip".padStart(10) + "brotli".padStart(10));
    for (const r of [...rows, total]) console.log(r.file.padEnd(30) + kb(r.raw) + kb(r.gzip) + kb(r.brotli));
    if (laterRows.length) {
      console.log("loaded later:");
      for (const r of laterRows) console.log(r.file.padEnd(30) + kb(r.raw) + kb(r.gzip) + kb(r.brotli));
    }
  }
}
