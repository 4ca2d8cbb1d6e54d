// The attacks of issue 29's review, replayed against a collector: anyone
// holding the public write key can send them. Prints, per attack, what it
// cost the collector (time, memory) and what it did to other requests.
// Run it on this build and on an older one (--bin) to compare.
//
//   node bench/collector-attacks.mjs [--bin target/server/segmint-collector]
//                                    [--database sqlite:/tmp/x.db | postgres://... | clickhouse://...]
//                                    [--batches 40]
//
// 1. Made-up segment names: batches of 15 events carrying 43,950 names in
//    context.segments (about 440 KB each): /api/summary's time and size
//    after 1, 2 and all batches, memory, and a small batch's latency while
//    the summary is computed.
// 2. 1,100 idle connections from one address, then another address's
//    request's latency.
// 3. A 495 KB body with 45,000 keys in one object, sent without the write
//    key: the time to the answer.
// 4. /api/recent for a visitor with 20,000 stored events (1 KB each), 8
//    requests at once: time and the collector's peak memory.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import net from "node:net";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const KEY = "public-write-key";
let bin = arg("bin", null);
if (!bin) {
  execFileSync("cargo", ["build", "--quiet", "--profile", "server", "-p", "segmint-collector"], { cwd: ROOT, stdio: "inherit" });
  bin = path.join(ROOT, "target/server/segmint-collector");
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-attacks-"));
const database = arg("database", `sqlite:${tmp}/attacks.db`);
const totalBatches = Number(arg("batches", 40));
const port = 19000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;
// Flags every collector version understands.
const child = spawn(bin, ["--listen", `127.0.0.1:${port}`, "--database", database, "--rules", path.join(ROOT, "rules.json"), "--write-key", KEY], { stdio: "ignore" });
process.on("exit", () => child.kill("SIGKILL"));
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/v1/rules`)).ok) break;
  } catch {}
  if (i > 3000) throw new Error("the collector did not start");
  await new Promise((r) => setTimeout(r, 20));
}

const rssMb = () => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))[1]) / 1024;
  } catch {
    return NaN;
  }
};
/** The peak RSS while `work` runs, sampled every 10 ms. */
async function peakDuring(work) {
  let peak = rssMb();
  const timer = setInterval(() => (peak = Math.max(peak, rssMb())), 10);
  try {
    const result = await work();
    return { result, peak: Math.max(peak, rssMb()) };
  } finally {
    clearInterval(timer);
  }
}
async function timed(fn) {
  const t0 = performance.now();
  const result = await fn();
  return { ms: performance.now() - t0, result };
}
const post = (body, headers = {}) =>
  fetch(`${base}/v1/batch`, { method: "POST", body, headers: { "Content-Type": "text/plain;charset=UTF-8", ...headers }, signal: AbortSignal.timeout(120_000) });
const withKey = (batch) => JSON.stringify({ ...batch, writeKey: KEY });
const ms = (x) => `${x.toFixed(0)} ms`;
let smallBatch = 0;
const small = () => withKey({ batch: [{ type: "track", event: "Product Viewed", messageId: `small-${smallBatch++}`, anonymousId: "bystander" }] });

console.log(`collector: ${path.relative(ROOT, bin) || bin} on ${database.replace(/:[^:@/]*@/, ":***@")}; memory at start ${rssMb().toFixed(1)} MB`);

// 1. Made-up segment names.
function namesBatch(b) {
  const events = [];
  for (let e = 0; e < 15; e++) {
    const names = Array.from({ length: 2930 }, (_, i) => (b * 50_000 + e * 3_000 + i).toString(36));
    events.push({ type: "track", event: "Product Viewed", messageId: `names-${b}-${e}`, anonymousId: `names-${b}-${e % 3}`, context: { segments: ["new-user", ...names] } });
  }
  return withKey({ batch: events });
}
async function summaryUnderWatch() {
  // A bystander's batch, sent while the summary is computed.
  const summary = timed(async () => {
    try {
      const r = await fetch(`${base}/api/summary`, { signal: AbortSignal.timeout(120_000) });
      return (await r.text()).length;
    } catch (e) {
      return `failed (${e.name})`;
    }
  });
  await new Promise((r) => setTimeout(r, 50));
  const bystander = await timed(() => post(small()).then((r) => r.status, (e) => `no answer: ${e.name}`));
  const s = await summary;
  return `/api/summary ${ms(s.ms)}, ${typeof s.result === "number" ? `${(s.result / 1024).toFixed(1)} KB` : s.result}; a small batch meanwhile ${ms(bystander.ms)} (${bystander.result})`;
}
let sent = 0;
for (const upTo of [1, 2, totalBatches]) {
  let status = [];
  const ingest = await timed(async () => {
    for (; sent < upTo; sent++) status.push((await post(namesBatch(sent))).status);
  });
  const bytes = namesBatch(0).length;
  console.log(`1. made-up names, ${upTo} batch${upTo > 1 ? "es" : ""} of ${(bytes / 1024).toFixed(0)} KB (${(15 * 2930 * upTo).toLocaleString()} names; answers ${[...new Set(status)].join("/")}, ${ms(ingest.ms)}): ${await summaryUnderWatch()}; memory ${rssMb().toFixed(1)} MB`);
}

// 2. Idle connections.
const sockets = [];
const opened = await Promise.all(
  Array.from({ length: 1100 }, () =>
    new Promise((resolve) => {
      // From another loopback address than the bystander's request.
      const s = net.connect({ port, host: "127.0.0.1", localAddress: "127.0.0.2" }, () => resolve(1));
      s.on("error", () => resolve(0));
      sockets.push(s);
    }),
  ),
);
// Let the collector accept what it will.
await new Promise((r) => setTimeout(r, 500));
// On a new connection of its own, as a shopper arriving would make.
const during = await timed(
  () =>
    new Promise((resolve) => {
      const req = http.get(`${base}/v1/rules`, { agent: false, timeout: 30_000 }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => resolve(`failed (${e.message})`));
    }),
);
console.log(`2. ${opened.reduce((a, b) => a + b, 0).toLocaleString()} idle connections: GET /v1/rules took ${ms(during.ms)} (${during.result}); memory ${rssMb().toFixed(1)} MB`);
for (const s of sockets) s.destroy();
await new Promise((r) => setTimeout(r, 500));

// 3. Many keys in one object, without the write key.
const keys = Array.from({ length: 45_000 }, (_, i) => `"k${i}":0`).join(",");
const manyKeys = `{"batch":[{"type":"track","event":"E","messageId":"keys","anonymousId":"keys","properties":{${keys}}}]}`;
const keysRun = await timed(() => post(manyKeys).then((r) => r.status));
console.log(`3. ${(manyKeys.length / 1024).toFixed(0)} KB body with 45,000 keys, no write key: answered ${keysRun.result} in ${ms(keysRun.ms)}`);

// 4. /api/recent over a visitor with many stored events.
const pad = "p".repeat(800);
for (let b = 0; b < 40; b++) {
  const events = Array.from({ length: 500 }, (_, i) => ({ type: "track", event: "Product Viewed", messageId: `recent-${b}-${i}`, anonymousId: "heavy", properties: { pad } }));
  const r = await post(withKey({ batch: events }));
  if (r.status === 429) {
    b--;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
const before = rssMb();
const recent = await peakDuring(() =>
  timed(() =>
    Promise.all(
      Array.from({ length: 8 }, () =>
        fetch(`${base}/api/recent?anonymousId=heavy`, { signal: AbortSignal.timeout(120_000) })
          .then((r) => r.text())
          .then((t) => t.length),
      ),
    ),
  ),
);
console.log(`4. 8 x /api/recent for a visitor with 20,000 events: ${ms(recent.result.ms)}, ${(recent.result.result[0] / 1024).toFixed(1)} KB each; memory ${before.toFixed(1)} MB before, peak ${recent.peak.toFixed(1)} MB`);

child.kill("SIGKILL");
fs.rmSync(tmp, { recursive: true, force: true });
