// wasm-opt's flags for the release build, in one place: scripts/build.sh
// (through split-wasm.mjs and minify-wasm-names.mjs) and
// bench/size-breakdown.mjs use them.

/** The wasm features rustc and wasm-bindgen emit, which wasm-opt must be
 * told of. */
export const FEATURES = ["bulk-memory", "sign-ext", "nontrapping-float-to-int", "mutable-globals", "reference-types", "multivalue"].map(
  (f) => `--enable-${f}`,
);

/** Optimizing for size: flattening and re-relooping between -Oz rounds
 * finds about 1 KB more than -Oz alone. */
export const OPTIMIZE = ["-Oz", "--flatten", "--rereloop", "-Oz", "-Oz", "--converge"];
