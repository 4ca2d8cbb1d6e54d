// A local Segment-compatible receiver for tests and the interim demo:
// records every message of every batch (by messageId), answers with
// injectable faults, serves static files (www/, pkg/) and a rules file.
//
//   node e2e/receiver.mjs --port 8787 --static www --static /pkg=pkg --rules e2e/rules.json
//
// Control API (for tests): GET /__received, POST /__reset,
// POST /__faults  {"statuses":[500,503],"retryAfter":"1","delayMs":0}
// (each batch request takes the next status; 200 once they run out),
// POST /__offline {"on":true} (drops connections without an answer),
// POST /__csp (a Content-Security-Policy's `report-uri`: kept in
// state.cspReports).
// state.redirect = path: batch requests are answered state.redirectStatus
// (301 unless set) to that path, their query added; a batch request with
// ?via= is never redirected (redirect to /v1/batch?via=307 for one that
// arrives).
// state.hang = n: the next n batch requests are never answered (a
// collector that accepts the connection and stalls); state.hung counts
// the requests left hanging.
// state.rules: a rules document served at GET /v1/rules (else the
// --rules file), after state.rulesDelayMs; state.rulesRequests counts
// the requests for it.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import crypto from "node:crypto";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ts": "text/plain; charset=utf-8",
};

export function createReceiver({ statics = [], rulesFile = null, wrongWasmType = false, headers = {}, cors: allowCors = true } = {}) {
  const state = {};
  // What the receiver got, and the faults it injects: all cleared.
  const reset = () =>
    Object.assign(state, {
      batches: [], // {at, status, ids, bytes, gzip}
      messages: [], // every message received with a 2xx answer
      faults: [],
      retryAfter: null,
      delayMs: 0,
      offline: false,
      requests: 0,
      hang: 0,
      hung: 0,
      redirect: null,
      redirectStatus: 301,
      cspReports: [], // the "csp-report" of each violation report
      rules: null,
      rulesDelayMs: 0,
      rulesRequests: 0,
    });
  reset();

  const cors = (req, res) => {
    res.setHeader("Access-Control-Allow-Origin", req.headers.origin || "*");
    res.setHeader("Access-Control-Allow-Credentials", "true");
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.setHeader("Access-Control-Allow-Headers", "Content-Type, If-None-Match");
    res.setHeader("Access-Control-Expose-Headers", "Retry-After, Accept-Encoding, ETag");
    res.setHeader("Vary", "Origin");
  };

  const json = (res, status, body) => {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  };

  const readBody = (req) =>
    new Promise((resolve, reject) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
    });

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    if (allowCors) cors(req, res);
    if (req.method === "OPTIONS") {
      res.writeHead(204);
      res.end();
      return;
    }
    try {
      if (url.pathname === "/v1/batch" && req.method === "POST") {
        state.requests++;
        const raw = await readBody(req);
        if (state.offline) {
          req.socket.destroy();
          return;
        }
        if (state.redirect && !url.searchParams.has("via")) {
          state.batches.push({ at: Date.now(), status: state.redirectStatus, ids: [], bytes: raw.length });
          // The request's own query goes along (compression=gzip).
          const query = url.search ? (state.redirect.includes("?") ? "&" : "?") + url.search.slice(1) : "";
          res.writeHead(state.redirectStatus, { Location: state.redirect + query });
          res.end();
          return;
        }
        if (state.hang > 0) {
          state.hang--;
          state.hung++;
          return;
        }
        if (state.delayMs) await new Promise((r) => setTimeout(r, state.delayMs));
        const gzip = url.searchParams.get("compression") === "gzip";
        let body;
        try {
          body = JSON.parse((gzip ? zlib.gunzipSync(raw) : raw).toString("utf8"));
        } catch (e) {
          state.batches.push({ at: Date.now(), status: 400, ids: [], bytes: raw.length, gzip });
          return json(res, 400, { error: "malformed JSON" });
        }
        const batch = Array.isArray(body.batch) ? body.batch : [];
        const status = state.faults.length ? state.faults.shift() : 200;
        const ids = batch.map((m) => m.messageId);
        state.batches.push({ at: Date.now(), status, ids, bytes: raw.length, gzip, sentAt: body.sentAt });
        if (status >= 200 && status < 300) for (const m of batch) state.messages.push(m);
        if (status === 503 || status === 429) {
          if (state.retryAfter) res.setHeader("Retry-After", state.retryAfter);
        }
        res.setHeader("Accept-Encoding", "gzip");
        return json(res, status, status < 300 ? { success: true } : { error: `injected ${status}` });
      }
      if (url.pathname === "/v1/rules" && (state.rules || rulesFile)) {
        state.rulesRequests++;
        if (state.rulesDelayMs) await new Promise((r) => setTimeout(r, state.rulesDelayMs));
        const text = state.rules ? JSON.stringify(state.rules) : fs.readFileSync(rulesFile);
        const etag = '"' + crypto.createHash("sha256").update(text).digest("hex").slice(0, 16) + '"';
        res.setHeader("ETag", etag);
        res.setHeader("Cache-Control", "no-cache");
        if (req.headers["if-none-match"] === etag) {
          res.writeHead(304);
          return res.end();
        }
        res.writeHead(200, { "Content-Type": "application/json" });
        return res.end(text);
      }
      if (url.pathname === "/api/recent") {
        // What the demo page shows: the batches that carried this user's events.
        const aid = url.searchParams.get("anonymousId");
        const byId = new Map(state.messages.map((m) => [m.messageId, m]));
        const batches = state.batches
          .filter((b) => b.status < 300)
          .map((b) => ({ at: b.at, events: b.ids.map((id) => byId.get(id)).filter((m) => m && m.anonymousId === aid).map((m) => m.event || m.name || m.type) }))
          .filter((b) => b.events.length);
        return json(res, 200, { batches });
      }
      if (url.pathname === "/__received") {
        const ids = state.messages.map((m) => m.messageId);
        return json(res, 200, { messages: state.messages, batches: state.batches, ids, requests: state.requests });
      }
      if (url.pathname === "/__reset" && req.method === "POST") {
        reset();
        return json(res, 200, { ok: true });
      }
      if (url.pathname === "/__faults" && req.method === "POST") {
        const f = JSON.parse((await readBody(req)).toString() || "{}");
        state.faults = f.statuses || [];
        state.retryAfter = f.retryAfter ?? null;
        state.delayMs = f.delayMs || 0;
        return json(res, 200, { ok: true });
      }
      if (url.pathname === "/__offline" && req.method === "POST") {
        state.offline = !!JSON.parse((await readBody(req)).toString() || "{}").on;
        return json(res, 200, { ok: true });
      }
      if (url.pathname === "/__csp" && req.method === "POST") {
        const report = JSON.parse((await readBody(req)).toString() || "{}");
        state.cspReports.push(report["csp-report"] || report);
        res.writeHead(204);
        return res.end();
      }
      if (req.method === "GET" || req.method === "HEAD") return serveStatic(url, res);
      json(res, 404, { error: "not found" });
    } catch (e) {
      json(res, 500, { error: String(e) });
    }
  });

  function serveStatic(url, res) {
    for (const { prefix, dir } of statics) {
      if (!url.pathname.startsWith(prefix)) continue;
      let rel = decodeURIComponent(url.pathname.slice(prefix.length));
      if (rel === "" || rel.endsWith("/")) rel += "index.html";
      const file = path.join(dir, path.normalize(rel).replace(/^(\.\.[/\\])+/, ""));
      if (!file.startsWith(path.resolve(dir)) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) continue;
      const ext = path.extname(file);
      let type = TYPES[ext] || "application/octet-stream";
      if (ext === ".wasm" && wrongWasmType) type = "application/octet-stream";
      res.writeHead(200, { "Content-Type": type, "Cache-Control": "no-store", ...headers });
      return res.end(fs.readFileSync(file));
    }
    json(res, 404, { error: "not found" });
  }

  return {
    state,
    reset,
    server,
    listen(port = 0, host = "127.0.0.1") {
      return new Promise((resolve) => server.listen(port, host, () => resolve(server.address().port)));
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// Command line: serve until killed.
if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const statics = [];
  let port = 8787;
  let rulesFile = null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--port") port = Number(args[++i]);
    else if (args[i] === "--rules") rulesFile = args[++i];
    else if (args[i] === "--static") {
      const spec = args[++i];
      const [prefix, dir] = spec.includes("=") ? spec.split("=") : ["/", spec];
      statics.push({ prefix: prefix.endsWith("/") ? prefix : prefix + "/", dir: path.resolve(dir) });
    }
  }
  statics.sort((a, b) => b.prefix.length - a.prefix.length);
  const r = createReceiver({ statics, rulesFile });
  r.listen(port).then((p) => console.log(`receiver on http://127.0.0.1:${p}`));
}
