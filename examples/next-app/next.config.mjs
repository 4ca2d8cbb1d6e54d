// The examples share one node_modules (in examples/): it is the root for
// Turbopack and for file tracing alike.
import path from "node:path";

const examples = path.resolve(import.meta.dirname, "..");
export default {
  turbopack: { root: examples },
  outputFileTracingRoot: examples,
  // The packaging tests open the dev server at 127.0.0.1.
  allowedDevOrigins: ["127.0.0.1"],
};
