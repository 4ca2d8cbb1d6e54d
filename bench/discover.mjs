// Segment discovery's run time: synthetic storefront traffic with planted
// groups (segmint-collector generate) for N users in a temporary SQLite
// database, then segmint-collector discover over it. Prints both times,
// the database's size and discovery's peak memory.
//
//   node bench/discover.mjs [--users 1000000] [--seed 1]
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const users = Number(arg("users", 1_000_000));
const seed = arg("seed", "1");
execFileSync("cargo", ["build", "--quiet", "--profile", "server", "-p", "segmint-collector"], { cwd: ROOT, stdio: "inherit" });
const bin = path.join(ROOT, "target/server/segmint-collector");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-discover-"));
const database = `sqlite:${tmp}/events.db`;
try {
  let t0 = performance.now();
  execFileSync(bin, ["generate", "--database", database, "--users", String(users), "--seed", seed], { stdio: ["ignore", "inherit", "inherit"] });
  const generated = (performance.now() - t0) / 1000;
  const bytes = fs.readdirSync(tmp).reduce((n, f) => n + fs.statSync(path.join(tmp, f)).size, 0);
  console.log(`generated ${users.toLocaleString()} users in ${generated.toFixed(1)} s; database ${(bytes / 1e9).toFixed(2)} GB`);
  t0 = performance.now();
  // /usr/bin/time -v gives the peak memory (maximum resident set size).
  const run = spawnSync("/usr/bin/time", ["-v", bin, "discover", "--database", database, "--rules", path.join(ROOT, "rules.json"), "--seed", seed], { encoding: "utf8" });
  const seconds = (performance.now() - t0) / 1000;
  if (run.status !== 0) throw new Error(run.stderr);
  const peak = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(run.stderr)?.[1] ?? NaN) / 1024;
  console.log(run.stdout.split("\n\n")[0]);
  console.log(`discover over ${users.toLocaleString()} users: ${seconds.toFixed(1)} s on ${os.cpus().length} cores, peak memory ${peak.toFixed(0)} MB`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
