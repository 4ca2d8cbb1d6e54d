// Load on the reference collector: 1,000,000 events through the HTTP API
// from concurrent clients, in Segment batches of 100. Prints events/s and
// request latency (p50, p99). Starts its own collector (server profile)
// on an empty SQLite database unless --url is given.
//
//   node bench/collector-load.mjs [--events 1000000] [--clients 32] [--batch 100]
//                                 [--database sqlite:/tmp/x.db | postgres://...] [--url http://...]
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

if (!url) {
  execFileSync("cargo", ["build", "--quiet", "--profile", "server", "-p", "segmint-collector"], { cwd: ROOT, stdio: "inherit" });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-load-"));
  const database = arg("database", `sqlite:${tmp}/load.db`);
  const port = 18000 + Math.floor(Math.random() * 1000);
  url = `http://127.0.0.1:${port}`;
  child = spawn(path.join(ROOT, "target/server/segmint-collector"), ["--listen", `127.0.0.1:${port}`, "--database", database, "--rate-limit", "0"], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/api/summary`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
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
const target = new URL(`${url}/v1/batch`);
function post(data) {
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
child?.kill("SIGKILL");
if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
