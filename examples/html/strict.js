segmint.track("Packaging Test", { bundler: "embed-csp" });
