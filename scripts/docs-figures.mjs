// Copies the benchmark's headline figures out of bench/RESULTS.md (and
// bench/RESULTS-webkit.md) into docs/performance.md, between the
// `figures` markers, so the page cannot drift from the last run.
//
//   node scripts/docs-figures.mjs           rewrite the page
//   node scripts/docs-figures.mjs --check   fail if the page is out of date
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PAGE = path.join(ROOT, "docs/performance.md");
const START = "<!-- figures: copied from bench/RESULTS*.md by scripts/docs-figures.mjs; do not edit -->";
const END = "<!-- end of figures -->";

/** The run's date line and its first table (the headline figures). */
function headline(file) {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8").split("\n");
  const written = text.find((l) => l.startsWith("Written by"));
  const first = text.findIndex((l) => l.startsWith("| SDK"));
  let last = first;
  while (text[last + 1]?.startsWith("|")) last++;
  const note = text.slice(last + 1).find((l) => l.startsWith("Ratios are"));
  return [`From [${file}](../${file}): ${written.replace(/^Written by /, "written by ")}`, "", ...text.slice(first, last + 1), "", ...(note ? [note, ""] : [])];
}

export function figures() {
  return [START, "", "### Chromium", "", ...headline("bench/RESULTS.md"), "### WebKit", "", ...headline("bench/RESULTS-webkit.md"), END].join("\n");
}

const page = fs.readFileSync(PAGE, "utf8");
const from = page.indexOf(START);
const to = page.indexOf(END);
if (from < 0 || to < 0) throw new Error(`${PAGE} lacks the figures markers`);
const updated = page.slice(0, from) + figures() + page.slice(to + END.length);
if (process.argv.includes("--check")) {
  if (updated !== page) {
    console.error("docs/performance.md's figures differ from bench/RESULTS*.md: run node scripts/docs-figures.mjs");
    process.exit(1);
  }
} else {
  fs.writeFileSync(PAGE, updated);
}
