// The benchmark's receiver: answers every SDK's event endpoints and config
// requests locally, and counts requests, body bytes and events, whatever
// the wire format (Segment/RudderStack/segmint batches, Amplitude's
// `events`, PostHog's gzip or base64 payloads, single events).
import http from "node:http";
import zlib from "node:zlib";

function countEvents(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return 0;
  }
  if (Array.isArray(v)) return v.length;
  if (Array.isArray(v.batch)) return v.batch.length;
  if (Array.isArray(v.events)) return v.events.length;
  if (v.event || v.type) return 1;
  return 0;
}

function decode(raw, url) {
  const compression = url.searchParams.get("compression");
  try {
    if (compression === "gzip" || compression === "gzip-js" || (raw[0] === 0x1f && raw[1] === 0x8b)) return zlib.gunzipSync(raw).toString("utf8");
  } catch {
    /* not gzip after all */
  }
  const text = raw.toString("utf8");
  if (text.startsWith("data=")) return Buffer.from(decodeURIComponent(text.slice(5).split("&")[0]), "base64").toString("utf8");
  return text;
}

export function peerReceiver() {
  const stats = { requests: 0, preflights: 0, bytes: 0, events: 0, configs: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    res.setHeader("Access-Control-Allow-Origin", req.headers.origin || "*");
    res.setHeader("Access-Control-Allow-Credentials", "true");
    res.setHeader("Access-Control-Allow-Headers", req.headers["access-control-request-headers"] || "*");
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.setHeader("Access-Control-Expose-Headers", "Retry-After, Accept-Encoding");
    if (req.method === "OPTIONS") {
      stats.preflights++;
      res.writeHead(204);
      return res.end();
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const send = (status, body) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(typeof body === "string" ? body : JSON.stringify(body));
      };
      // Configuration an SDK fetches at start, served as its vendor would.
      if (url.pathname.startsWith("/sourceConfig")) {
        stats.configs++;
        return send(200, {
          isHosted: true,
          source: { id: "bench", name: "bench", writeKey: "bench-key", enabled: true, workspaceId: "bench", config: { statsCollection: { errors: { enabled: false }, metrics: { enabled: false } } }, destinations: [] },
        });
      }
      if (/\/(decide|flags)\/?/.test(url.pathname) || url.pathname.includes("/config")) {
        stats.configs++;
        return send(200, { featureFlags: {}, sessionRecording: false, supportedCompression: ["gzip", "gzip-js"], autocapture_opt_out: true });
      }
      if (req.method !== "POST") return send(404, { error: "not found" });
      stats.requests++;
      stats.bytes += raw.length;
      stats.events += countEvents(decode(raw, url));
      if (url.pathname.startsWith("/2/httpapi")) return send(200, { code: 200 });
      if (url.pathname === "/v1/batch") res.setHeader("Accept-Encoding", "gzip");
      return send(200, { status: 1, success: true });
    });
  });
  return {
    stats,
    reset() {
      Object.assign(stats, { requests: 0, preflights: 0, bytes: 0, events: 0, configs: 0 });
    },
    listen: () => new Promise((r) => server.listen(0, "127.0.0.1", () => r(server.address().port))),
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
