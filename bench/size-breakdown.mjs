// Where the wasm's bytes go, by Rust module: what grows when a change adds
// code. Reads the release build that scripts/build.sh leaves in target/,
// runs wasm-bindgen and wasm-opt on it as the build does but keeping the
// function names, and adds up each function's code by the module its name
// says it comes from.
//
//   bash scripts/build.sh && node bench/size-breakdown.mjs [--top 30] [--json]
//
// Figures are raw bytes of code (the shipped file is smaller by the names
// the build shortens on the wasm/JS boundary). Generic code is counted
// where it was instantiated from as far as its name tells: an iterator
// adapter over the tracker's data shows as `core::iter`, a closure's body
// as `core::ops`, and what wasm-bindgen generates for the exported API
// (argument conversions, with the bodies LLVM inlined into them) as
// "exported API (wasm-bindgen shims)".
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { split } from "../scripts/split-wasm.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const asJson = args.includes("--json");
const topAt = args.indexOf("--top");
const top = topAt >= 0 ? Number(args[topAt + 1]) : 0;

/** The release wasm with its names, split as scripts/build.sh splits it:
 * wasm-bindgen with --keep-debug, the split and wasm-opt keeping names.
 * `{ start, later }`: the module a page loads first, and the one it
 * fetches later. */
function namedBuild() {
  const input = path.join(ROOT, "target/wasm32-unknown-unknown/release/segmint.wasm");
  if (!fs.existsSync(input)) throw new Error(`${input} is missing: run bash scripts/build.sh first`);
  const env = { ...process.env, PATH: `${ROOT}/node_modules/.bin:${os.homedir()}/.cargo/bin:${process.env.PATH}` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-size-"));
  try {
    execFileSync("wasm-bindgen", ["--target", "web", "--keep-debug", "--out-dir", dir, "--out-name", "segmint_wasm", input], { env });
    process.env.PATH = env.PATH;
    split(dir, { keepNames: true });
    return { start: fs.readFileSync(path.join(dir, "segmint_wasm_bg.wasm")), later: fs.readFileSync(path.join(dir, "segmint_engine.wasm")) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Function body sizes, function names and data bytes of a wasm module. */
export function parseWasm(bytes) {
  let at = 8; // magic and version
  const leb = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++];
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) return result;
    }
  };
  const name = () => {
    const len = leb();
    const s = bytes.subarray(at, at + len).toString("utf8");
    at += len;
    return s;
  };
  const limits = () => {
    const flags = leb();
    leb();
    if (flags & 1) leb();
  };
  let importedFunctions = 0;
  const bodies = [];
  const names = new Map();
  let data = 0;
  while (at < bytes.length) {
    const id = bytes[at++];
    const size = leb();
    const end = at + size;
    if (id === 2) {
      for (let n = leb(); n > 0; n--) {
        name();
        name();
        const kind = bytes[at++];
        if (kind === 0) (importedFunctions++, leb());
        else if (kind === 1) (at++, limits());
        else if (kind === 2) limits();
        else if (kind === 3) at += 2;
        else if (kind === 4) (at++, leb());
      }
    } else if (id === 10) {
      for (let n = leb(); n > 0; n--) {
        const start = at;
        const len = leb();
        bodies.push(at - start + len);
        at += len;
      }
    } else if (id === 11) {
      data = size;
    } else if (id === 0 && name() === "name") {
      while (at < end) {
        const sub = bytes[at++];
        const subSize = leb();
        const subEnd = at + subSize;
        if (sub === 1) for (let n = leb(); n > 0; n--) names.set(leb(), name());
        at = subEnd;
      }
    }
    at = end;
  }
  return { functions: bodies.map((size, i) => ({ name: names.get(importedFunctions + i) || "", size })), data };
}

/** The module a function's name places it in. */
export function moduleOf(fullName) {
  // Crate disambiguators (core[c5930c85a12de822]) and hashes (::h0123…).
  let n = fullName.replace(/\[[0-9a-f]+\]/g, "").replace(/::h[0-9a-f]{16}$/, "");
  if (!n) return "(unnamed)";
  if (/ shim\b/.test(n) || /^segmint_\w+$/.test(n) || /^__(wbg|wbindgen|externref)/.test(n)) return "exported API (wasm-bindgen shims)";
  // <Type as Trait>::method and <Type>::method: the type's module, or the
  // trait's for a primitive or generic type (<u64 as core::fmt::Display>).
  if (n.startsWith("<")) {
    const [type, rest = ""] = n.slice(1).split(/ as (.*)/s);
    n = type.split(">::")[0];
    if (!n.includes("::") && rest.includes("::")) n = rest.replace(/^&?(dyn )?/, "");
  }
  if (/^(__multi3|__rustc|memcmp|memcpy|memset|memmove|fmax|fmin)/.test(n)) return "compiler builtins";
  const parts = n.split("::");
  if (parts[0] === "segmint_core") return `core/src/${parts[1]}.rs`;
  if (parts[0] === "segmint") return parts.length > 2 ? `src/${parts[1]}.rs` : "src/lib.rs";
  if (["core", "alloc", "std"].includes(parts[0])) return parts.slice(0, 2).join("::");
  return parts[0].replace(/<.*$/, "");
}

/** The breakdown of one module's code, by Rust module. */
function breakdown({ functions, data }) {
  const groups = new Map();
  for (const f of functions) {
    const key = moduleOf(f.name);
    const g = groups.get(key) || { module: key, functions: 0, bytes: 0 };
    g.functions++;
    g.bytes += f.size;
    groups.set(key, g);
  }
  const all = [...groups.values(), { module: "data (strings, tables)", functions: 0, bytes: data }].sort((a, b) => b.bytes - a.bytes);
  const total = all.reduce((t, r) => t + r.bytes, 0);
  // A breakdown without names says nothing (a tool upgrade that drops
  // them, or a name section this parser misreads): fail rather than print it.
  const unnamed = groups.get("(unnamed)")?.bytes || 0;
  if (!functions.length || unnamed > total / 10) {
    console.error(`size-breakdown: ${unnamed} of ${total} bytes of code have no name; the breakdown would mislead`);
    process.exit(1);
  }
  const largest = [...functions].sort((a, b) => b.size - a.size).slice(0, top);
  return { total, functions: functions.length, modules: all, largest };
}

function print(title, { total, functions, modules, largest }) {
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`.padStart(9);
  // Modules under 0.5 KB, in one row.
  const small = modules.filter((r) => r.bytes < 512);
  const rows = modules.filter((r) => r.bytes >= 512);
  if (small.length) {
    rows.push({
      module: `(${small.length} modules under 0.5 KB)`,
      functions: small.reduce((t, r) => t + r.functions, 0),
      bytes: small.reduce((t, r) => t + r.bytes, 0),
    });
  }
  console.log(`\n${title}`);
  console.log(`${"module".padEnd(40)}${"functions".padStart(10)}${"code".padStart(9)}${"share".padStart(7)}`);
  for (const r of rows) {
    console.log(`${r.module.padEnd(40)}${String(r.functions || "").padStart(10)}${kb(r.bytes)}${`${((100 * r.bytes) / total).toFixed(1)}%`.padStart(7)}`);
  }
  console.log(`${"total".padEnd(40)}${String(functions).padStart(10)}${kb(total)}`);
  if (largest.length) {
    console.log(`\nlargest functions:`);
    for (const f of largest) console.log(`${kb(f.size)}  ${f.name.replace(/\[[0-9a-f]+\]/g, "")}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = namedBuild();
  const start = breakdown(parseWasm(built.start));
  const later = breakdown(parseWasm(built.later));
  if (asJson) {
    console.log(JSON.stringify({ start, later }, null, 2));
  } else {
    print("segmint_wasm_bg.wasm (loaded at start)", start);
    print("segmint_engine.wasm (loaded later: the segment engine, the gzip encoder)", later);
  }
}
