import { AnalyticsBrowser } from "@segment/analytics-next";
import { RX_HOST, props, expose } from "./common.js";

const batching = new URLSearchParams(location.search).get("batching") === "1";
const segmentIo = { apiKey: "bench", apiHost: `${RX_HOST}/v1`, protocol: "http" };
if (batching) segmentIo.deliveryStrategy = { strategy: "batching", config: { size: 100, timeout: 1000 } };
// Settings as the CDN would serve them, given inline: no request to Segment.
const analytics = AnalyticsBrowser.load(
  { writeKey: "bench", cdnSettings: { integrations: { "Segment.io": segmentIo }, plan: { track: { __default: { enabled: true } } } } },
  { integrations: { "Segment.io": segmentIo } },
);
expose(batching ? "segment-batching" : "segment", analytics, (i) => analytics.track("Product Clicked", props(i)));
