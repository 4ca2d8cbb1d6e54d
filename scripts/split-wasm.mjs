// Splits the built wasm in two: what a page needs first (recording and
// storing events, identity, consent) stays in pkg/segmint_wasm_bg.wasm;
// the segment engine (rules, the profile's aggregates, conditions, banner
// decisions), delivery's sending side (batches, answers and retries, the
// heartbeat, taking over queues other page views left) and the gzip
// encoder move to pkg/segmint_engine.wasm, which the facade fetches when a
// slot waits for a decision or flush() for answers, else at idle.
//
// What moves: every function of a segmint-core module named `lazy`
// (core/src/tracker/lazy.rs, core/src/tracker/dispatch/lazy.rs, the
// encoder's entry points in gzip.rs), and
// every function the rest of the module reaches only through them. The
// pure helpers they call (no JavaScript below them) are copied over. The core
// calls a `lazy` function only once the engine is there
// (`Tracker::engine_arrived`), so nothing left behind can reach the moved
// code before then.
//
// How: each `lazy` function's body in the first module becomes a
// `call_indirect` through a table of its own (exported as LAZY_TABLE). The
// second module imports the first's memory, globals, tables and the
// functions its code calls that reach JavaScript (exported from the first
// for it), and fills
// that table when instantiated:
//
//   WebAssembly.instantiate(engineBytes, { [MODULE]: firstModuleExports })
//
// Runs on wasm-bindgen's output, which has the function names, before any
// wasm-opt (whose inlining would fold the entry points into their
// callers); then optimizes both modules (scripts/wasm-opt-flags.mjs) and,
// unless --keep-names, drops the names.
//
//   node scripts/split-wasm.mjs [pkgDir] [--keep-names]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import binaryen from "binaryen";
import { FEATURES, OPTIMIZE } from "./wasm-opt-flags.mjs";

export const MODULE = "p";
export const LAZY_TABLE = "$lazy";
/** wasm-bindgen's shims that JavaScript calls a Rust closure through.
 * The crates describe one for every closure type they could pass (js-sys
 * has dozens), by its address, which puts each shim in the function
 * table. wasm-bindgen calls the shims of closures in use through exports
 * and never through the table, so the others are dead code only the table
 * keeps: before splitting, their slots get a stub that traps, and
 * wasm-opt drops them. */
const CLOSURE_SHIM = /^wasm_bindgen::convert::closures::_::invoke::/;
/** js-sys's waker for JSPI tasks: its vtable is static data, which puts
 * its four functions in the table, but only the JSPI task poll makes a
 * waker, and wasm-bindgen deletes that export (JSPI_POLL) and stubs the
 * spawn intrinsics in a module without JSPI exports. So where the export
 * is gone, these slots get the stub too. */
const JSPI_WAKER = /^js_sys::futures::jspi::task_waker::/;
const JSPI_POLL = "__wbg_jspi_task_poll";
/** The entry points: functions of a `lazy` module of segmint-core. */
const SEED = /^segmint_core::(\w+::)*lazy::/;

const fail = (what) => {
  throw new Error(`split-wasm: ${what}`);
};

/**
 * Splits `dir`/segmint_wasm_bg.wasm into itself and
 * `dir`/segmint_engine.wasm. Returns how many functions moved, were
 * copied, and were entry points.
 */
export function split(dir, { keepNames = false } = {}) {
  const firstFile = path.join(dir, "segmint_wasm_bg.wasm");
  const secondFile = path.join(dir, "segmint_engine.wasm");
  const { wasm: bytes, stubbed } = withoutDescribedShims(fs.readFileSync(firstFile));
  fs.writeFileSync(firstFile, bytes);

  /** `wasm` with wasm-bindgen's unused closure shims (and js-sys's unused
   * JSPI waker) out of its function table (see CLOSURE_SHIM and
   * JSPI_WAKER), and how many slots held one. */
  function withoutDescribedShims(wasm) {
    const m = read(wasm);
    const exports = exportsOf(m);
    const exported = new Set(exports.filter((e) => e.kind === binaryen.ExternalFunction).map((e) => e.value));
    const noJspi = !exports.some((e) => e.name === JSPI_POLL);
    const unused = (f) => !exported.has(f) && (CLOSURE_SHIM.test(f) || (noJspi && JSPI_WAKER.test(f)));
    let stub = null;
    let stubbed = 0;
    for (const seg of elementSegmentsOf(m)) {
      if (!seg.data.some(unused)) continue;
      const offset = binaryen.getExpressionInfo(seg.offset);
      if (offset.id !== binaryen.ConstId || seg.table === "") fail(`element segment ${seg.name} has no constant offset`);
      if (!stub) {
        stub = "segmint::split::unused_table_slot";
        m.addFunction(stub, binaryen.none, binaryen.none, [], m.unreachable());
      }
      stubbed += seg.data.filter(unused).length;
      m.removeElementSegment(seg.name);
      m.addActiveElementSegment(seg.table, seg.name, seg.data.map((f) => (unused(f) ? stub : f)), m.i32.const(offset.value));
    }
    if (!m.validate()) fail("the module with its unused table slots stubbed does not validate");
    binaryen.setDebugInfo(true);
    const out = m.emitBinary();
    m.dispose();
    return { wasm: out, stubbed };
  }

  /** Direct calls, caller -> callees, from binaryen's call graph. */
  function callGraph() {
    const dot = execFileSync("wasm-opt", [firstFile, ...FEATURES, "--print-call-graph", "-o", "/dev/null"], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    });
    const calls = new Map();
    for (const [, from, to] of dot.matchAll(/^\s*"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)";/gm)) {
      if (!calls.has(from)) calls.set(from, new Set());
      calls.get(from).add(to);
    }
    return calls;
  }

  function read(wasm = bytes) {
    const m = binaryen.readBinary(wasm);
    // The features the build enables (FEATURES), no more: binaryen would
    // write newer encodings that browsers do not read yet.
    const F = binaryen.Features;
    m.setFeatures(F.MVP | F.BulkMemory | F.BulkMemoryOpt | F.CallIndirectOverlong | F.SignExt | F.NontrappingFPToInt | F.MutableGlobals | F.ReferenceTypes | F.Multivalue);
    return m;
  }

  function functionsOf(m) {
    const list = [];
    for (let i = 0; i < m.getNumFunctions(); i++) list.push(binaryen.getFunctionInfo(m.getFunctionByIndex(i)));
    return list;
  }

  function exportsOf(m) {
    const list = [];
    for (let i = 0; i < m.getNumExports(); i++) list.push(binaryen.getExportInfo(m.getExportByIndex(i)));
    return list;
  }

  function elementSegmentsOf(m) {
    const list = [];
    for (let i = 0; i < m.getNumElementSegments(); i++) list.push(binaryen.getElementSegmentInfo(m.getElementSegmentByIndex(i)));
    return list;
  }

  const first = read();
  const functions = functionsOf(first);
  const byName = new Map(functions.map((f) => [f.name, f]));
  const exported = exportsOf(first);
  const calls = callGraph();

  // Which functions move: those the seeds reach that the rest of the
  // module (from its exports and its table) cannot reach other than
  // through a seed.
  const pinned = new Set(exported.filter((e) => e.kind === binaryen.ExternalFunction).map((e) => e.value));
  for (const seg of elementSegmentsOf(first)) for (const f of seg.data) pinned.add(f);
  const seeds = functions.filter((f) => !f.module && SEED.test(f.name)).map((f) => f.name);
  if (seeds.length === 0) fail(`no function's name matches ${SEED}: is the wasm built with its names (wasm-opt -g)?`);
  /** The functions `from` reaches along `edges` (callees by default),
   * without entering `stop`. */
  const reach = (from, stop, edges = calls) => {
    const seen = new Set();
    const todo = [...from];
    while (todo.length) {
      const f = todo.pop();
      if (seen.has(f) || stop.has(f)) continue;
      seen.add(f);
      for (const to of edges.get(f) ?? []) todo.push(to);
    }
    return seen;
  };
  const seedSet = new Set(seeds);
  const staying = reach([...pinned].filter((f) => !seedSet.has(f)), seedSet);
  const moved = new Set([...reach(seeds, new Set())].filter((f) => !staying.has(f) && !byName.get(f)?.module));
  for (const f of seeds) moved.add(f);

  // Functions the moved code calls that never reach JavaScript (string
  // comparisons, vectors, the JSON reader, the allocator) get a copy of
  // their own in the second module: a call between two instances is one
  // the engine cannot inline, and condition evaluation makes many small
  // ones. (Their state is all in the shared memory and globals.)
  const callersOf = new Map();
  for (const [from, tos] of calls) {
    for (const to of tos) {
      if (!callersOf.has(to)) callersOf.set(to, new Set());
      callersOf.get(to).add(from);
    }
  }
  const imports = functions.filter((f) => f.module).map((f) => f.name);
  const reachesJs = reach(imports, new Set(), callersOf);
  const calledByMoved = [...moved].flatMap((f) => [...(calls.get(f) ?? [])]);
  const copied = reach(calledByMoved, new Set([...moved, ...reachesJs]));
  const kept = new Set([...moved, ...copied]);

  // What the second module takes from the first: functions its code calls
  // that reach JavaScript, every global and table, the memory.
  const needed = new Set();
  for (const f of kept) for (const to of calls.get(f) ?? []) if (!kept.has(to)) needed.add(to);
  const taken = new Set(exported.map((e) => e.name));
  let counter = 0;
  const freshName = () => {
    let name;
    do name = `$${(counter++).toString(36)}`;
    while (taken.has(name));
    taken.add(name);
    return name;
  };
  if (taken.has(LAZY_TABLE)) fail(`${LAZY_TABLE} is already an export`);
  taken.add(LAZY_TABLE);
  const exportOf = new Map(); // internal name -> export name, by kind
  const exportName = (kind, internal) => {
    const key = `${kind}:${internal}`;
    const existing = exported.find((e) => e.kind === kind && e.value === internal);
    if (existing) return existing.name;
    if (!exportOf.has(key)) exportOf.set(key, freshName());
    return exportOf.get(key);
  };

  const memoryExport = exported.find((e) => e.kind === binaryen.ExternalMemory);
  if (!memoryExport) fail("the first module exports no memory");
  const globals = [];
  for (let i = 0; i < first.getNumGlobals(); i++) globals.push(binaryen.getGlobalInfo(first.getGlobalByIndex(i)));
  const tables = [];
  for (let i = 0; i < first.getNumTables(); i++) tables.push(binaryen.getTableInfo(first.getTableByIndex(i)));

  // The first module: stubs in place of the seeds, the rest of the moved
  // code gone, and exports for the second.
  const ref = (f) => byName.get(f) ?? fail(`no function ${f}`);
  first.addTable(LAZY_TABLE, seeds.length, seeds.length);
  first.addTableExport(LAZY_TABLE, LAZY_TABLE);
  seeds.forEach((name, slot) => {
    const f = ref(name);
    const params = binaryen.expandType(f.params);
    const args = params.map((type, i) => first.local.get(i, type));
    first.removeFunction(name);
    first.addFunction(name, f.params, f.results, [], first.call_indirect(LAZY_TABLE, first.i32.const(slot), args, f.params, f.results));
  });
  for (const name of moved) if (!seeds.includes(name)) first.removeFunction(name);
  for (const name of needed) first.addFunctionExport(name, exportName(binaryen.ExternalFunction, name));
  for (const g of globals) {
    if (!exported.some((e) => e.kind === binaryen.ExternalGlobal && e.value === g.name)) {
      first.addGlobalExport(g.name, exportName(binaryen.ExternalGlobal, g.name));
    }
  }
  for (const t of tables) {
    if (!exported.some((e) => e.kind === binaryen.ExternalTable && e.value === t.name)) {
      first.addTableExport(t.name, exportName(binaryen.ExternalTable, t.name));
    }
  }
  if (!first.validate()) fail("the first module does not validate");

  // The second module: the moved functions, everything else imported.
  const second = read();
  for (const e of exportsOf(second)) second.removeExport(e.name);
  for (const seg of elementSegmentsOf(second)) second.removeElementSegment(seg.name);
  for (const f of functionsOf(second)) {
    if (kept.has(f.name)) continue;
    second.removeFunction(f.name);
    if (needed.has(f.name)) {
      second.addFunctionImport(f.name, MODULE, exportName(binaryen.ExternalFunction, f.name), f.params, f.results);
    }
  }
  for (const g of globals) {
    second.removeGlobal(g.name);
    second.addGlobalImport(g.name, MODULE, exportName(binaryen.ExternalGlobal, g.name), g.type, g.mutable);
  }
  for (const t of tables) second.addTableImport(t.name, MODULE, exportName(binaryen.ExternalTable, t.name));
  const memory = first.getMemoryInfo();
  second.setMemory(memory.initial, memory.max ?? -1, null, [], false, false, memoryExport.value);
  second.addMemoryImport(memoryExport.value, MODULE, memoryExport.name);
  second.addTable(LAZY_TABLE, seeds.length, seeds.length);
  second.addTableImport(LAZY_TABLE, MODULE, LAZY_TABLE);
  second.addActiveElementSegment(LAZY_TABLE, "lazy", seeds, second.i32.const(0));
  if (!second.validate()) fail("the second module does not validate");

  // With the names: wasm-opt drops them below, unless asked to keep them.
  binaryen.setDebugInfo(true);
  fs.writeFileSync(firstFile, first.emitBinary());
  fs.writeFileSync(secondFile, second.emitBinary());
  first.dispose();
  second.dispose();
  // Both optimized as the build optimizes, without their names.
  const strip = keepNames ? ["-g"] : ["--strip-debug", "--strip-producers"];
  for (const file of [firstFile, secondFile]) {
    execFileSync("wasm-opt", [file, ...OPTIMIZE, ...strip, ...FEATURES, "-o", file]);
  }

  return { moved: moved.size, copied: copied.size, seeds: seeds.length, stubbed };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? "pkg");
  const { moved, copied, seeds, stubbed } = split(dir, { keepNames: process.argv.includes("--keep-names") });
  const size = (f) => fs.statSync(path.join(dir, f)).size;
  console.log(
    `split-wasm: ${moved} functions (${seeds} entry points) moved to segmint_engine.wasm, ${copied} copied there ` +
      `(${size("segmint_engine.wasm")} bytes); ` +
      `segmint_wasm_bg.wasm keeps ${size("segmint_wasm_bg.wasm")} bytes; ` +
      `${stubbed} unused closure shims and waker functions dropped from the function table`,
  );
}
