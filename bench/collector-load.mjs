// Load on the reference collector: 1,000,000 events through the HTTP API
// from concurrent clients, in Segment batches of 100. Prints events/s and
// request latency (p50, p99), then /api/summary's time, the collector's
// memory, and its start time over what was stored. Starts its own
// collectors (server profile; --instances N on one database, requests
// spread over them) on an empty SQLite database unless --url is given.
//
//   node bench/collector-load.mjs [--events 1000000] [--clients 32] [--batch 100]
//                                 [--database sqlite:/tmp/x.db | postgres://...] [--instances 2]
//                                 [--url http://...]
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const total = Number(arg("events", 1_000_000));
const clients = Number(arg("clients", 32));
const perBatch = Number(arg("batch", 100));
let url = arg("url", null);
let child, tmp;

const instances = Number(arg("instances", 1));
const children = [];
let urls = url ? [url] : [];
let database;

/** Starts a collector on `database`; resolves when it answers, with its
 * url, process and start time in ms. */
async function startCollector() {
  const port = 18000 + Math.floor(Math.random() * 1000);
  const child = spawn(path.join(ROOT, "target/server/segmint-collector"), ["--listen", `127.0.0.1:${port}`, "--database", database, "--rules", path.join(ROOT, "rules.json"), "--rate-limit", "0"], { stdio: "ignore" });
  const t0 = performance.now();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 20_000; i++) {
    try {
      if ((await fetch(`${url}/api/summary`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url, child, startMs: performance.now() - t0 };
}

if (!url) {
  execFileSync("cargo", ["build", "--quiet", "--profile", "server", "-p", "segmint-collector"], { cwd: ROOT, stdio: "inherit" });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-load-"));
  database = arg("database", `sqlite:${tmp}/load.db`);
  for (let i = 0; i < instances; i++) {
    const c = await startCollector();
    children.push(c.child);
    urls.push(c.url);
  }
  url = urls[0];
  child = children[0];
}

// Realistic events (~600 bytes each, like the SDK's), prebuilt so the
// client side costs little.
const context = JSON.stringify({
  library: { name: "segmint", version: "0.1.0" },
  page: { path: "/p/sh-101", referrer: "", search: "", title: "segmint market", url: "https://shop.example/p/sh-101" },
  userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
  locale: "en-US",
  campaign: {},
  segments: ["new-user"],
});
function body(b) {
  const events = [];
  for (let i = 0; i < perBatch; i++) {
    const id = `load-${b}-${i}`;
    events.push(`{"type":"track","event":"Product Clicked","properties":{"product_id":"sh-${i}","price":19.99,"category":"shoes"},"messageId":"${id}","anonymousId":"user-${b % 5000}","timestamp":"2026-11-23T10:00:00.000Z","context":${context}}`);
  }
  return `{"batch":[${events.join(",")}],"sentAt":"2026-11-23T10:00:01.000Z"}`;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const targets = urls.map((u) => new URL(`${u}/v1/batch`));
let turn = 0;
function post(data) {
  const target = targets[turn++ % targets.length];
  return new Promise((resolve, reject) => {
    const req = http.request(
      { hostname: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers: { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": Buffer.byteLength(data) } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

const batches = Math.ceil(total / perBatch);
const latencies = new Float64Array(batches);
let next = 0, failed = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: clients }, async () => {
    for (;;) {
      const b = next++;
      if (b >= batches) return;
      const data = body(b);
      const t0 = performance.now();
      const status = await post(data);
      latencies[b] = performance.now() - t0;
      if (status !== 200) failed++;
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const sorted = Array.from(latencies).sort((a, b) => a - b);
const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const stored = (await (await fetch(`${url}/api/summary`)).json()).events;
console.log(`${total.toLocaleString()} events in ${batches.toLocaleString()} requests of ${perBatch}, ${clients} concurrent clients`);
console.log(`throughput: ${Math.round(total / seconds).toLocaleString()} events/s (${seconds.toFixed(1)} s)`);
console.log(`request latency: p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms; failed requests: ${failed}; stored: ${stored.toLocaleString()}`);
agent.destroy();

// The dashboard's read, and the collector's memory, over what is stored.
const summaryTimes = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  await (await fetch(`${url}/api/summary`)).text();
  summaryTimes.push(performance.now() - t0);
}
summaryTimes.sort((a, b) => a - b);
const rss = (pid) => {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
  } catch {
    return NaN;
  }
};
console.log(`instances: ${urls.length}; /api/summary over ${stored.toLocaleString()} events: median ${summaryTimes[2].toFixed(1)} ms; collector memory (RSS): ${children.map((c) => rss(c.pid).toFixed(1) + " MB").join(", ") || "n/a"}`);
if (children.length) {
  for (const c of children) c.kill("SIGKILL");
  const again = await startCollector();
  console.log(`start over ${stored.toLocaleString()} stored events: ${again.startMs.toFixed(0)} ms; memory after start: ${rss(again.child.pid).toFixed(1)} MB`);
  again.child.kill("SIGKILL");
}
if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
