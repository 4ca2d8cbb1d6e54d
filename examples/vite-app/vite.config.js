export default { base: "./", build: { outDir: "dist", emptyOutDir: true }, logLevel: "warn" };
