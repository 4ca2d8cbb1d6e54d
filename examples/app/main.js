// The same entry for every bundler: start segmint from the installed npm
// package, record an event, and send it.
import { load } from "segmint";

const bundler = document.documentElement.dataset.bundler || "unknown";
const sm = load({ endpoint: "/", flushIntervalMs: 100 });
window.sm = sm;
sm.track("Packaging Test", { bundler });
sm.flush().then((result) => {
  document.body.dataset.flushed = JSON.stringify(result);
});
