// Checks the docs: every relative link (README.md, ARCHITECTURE.md,
// CHANGELOG.md, docs/) resolves to a file, and an anchor to one of its
// headings; every JavaScript, JSX, JSON and HTML code block parses (a
// script in HTML as JavaScript); README stays short; and the figures in
// docs/performance.md are the benchmark's (scripts/docs-figures.mjs).
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const files = ["README.md", "ARCHITECTURE.md", "CHANGELOG.md", ...fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const problems = [];

/** GitHub's anchor for a heading. */
const slug = (heading) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, "")
    .replace(/[^\p{L}\p{N} -]/gu, "")
    .replace(/ /g, "-");

function anchors(file) {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1])));
}

const VOID = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]);

/** An HTML fragment: its tags balance, and its scripts parse. */
function checkHtml(code, where) {
  for (const m of code.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)) checkJs(m[1], `${where} (script)`);
  const stack = [];
  const bare = code.replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, "").replace(/<!--[\s\S]*?-->/g, "");
  for (const m of bare.matchAll(/<(\/?)([a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    const tag = name.toLowerCase();
    if (VOID.has(tag) || selfClosing) continue;
    if (!closing) stack.push(tag);
    else if (stack.pop() !== tag) return problems.push(`${where}: </${tag}> closes nothing open`);
  }
  if (stack.length) problems.push(`${where}: <${stack.join("> <")}> never closed`);
}

function checkJs(code, where, loader = "js") {
  try {
    transformSync(code, { loader, format: "esm", logLevel: "silent" });
  } catch (e) {
    problems.push(`${where}: ${e.errors?.[0]?.text || e.message}`);
  }
}

for (const file of files) {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  const prose = text.replace(/```[\s\S]*?```/g, "");
  for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1];
    if (/^[a-z]+:/.test(target)) continue; // http(s), mailto
    const [rel, hash] = target.split("#");
    const resolved = rel ? path.normalize(path.join(path.dirname(file), rel)) : file;
    if (!fs.existsSync(path.join(ROOT, resolved))) {
      problems.push(`${file}: link to ${target}: no such file`);
      continue;
    }
    if (hash && resolved.endsWith(".md") && !anchors(resolved).has(hash)) problems.push(`${file}: link to ${target}: no such heading`);
  }
  let n = 0;
  for (const m of text.matchAll(/```(\w*)\n([\s\S]*?)```/g)) {
    const [, lang, code] = m;
    const where = `${file}, code block ${++n} (${lang || "plain"})`;
    if (lang === "js" || lang === "javascript") checkJs(code, where);
    else if (lang === "jsx") checkJs(code, where, "jsx");
    else if (lang === "html") checkHtml(code, where);
    else if (lang === "json") {
      try {
        JSON.parse(code);
      } catch (e) {
        problems.push(`${where}: ${e.message}`);
      }
    }
  }
}

const readmeLines = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").length;
if (readmeLines > 260) problems.push(`README.md has ${readmeLines} lines: keep it to about 250, and move the rest to docs/`);

try {
  execFileSync(process.execPath, [path.join(ROOT, "scripts/docs-figures.mjs"), "--check"], { stdio: "pipe" });
} catch (e) {
  problems.push(String(e.stderr || e.message).trim());
}

if (problems.length) {
  console.error(`docs: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`docs: ${files.length} files, every link resolves and every code block parses`);
