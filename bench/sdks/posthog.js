import posthog from "posthog-js";
import { RX, props, expose } from "./common.js";

const ready = new Promise((resolve) => {
  posthog.init("phc_bench", {
    api_host: RX,
    autocapture: false,
    capture_pageview: false,
    capture_pageleave: false,
    disable_session_recording: true,
    disable_surveys: true,
    advanced_disable_decide: true,
    advanced_disable_flags: true,
    disable_external_dependency_loading: true,
    persistence: "localStorage",
    // Its default (10 events/s, bursts of 100) drops most of a burst.
    rate_limiting: { events_per_second: 1e6, events_burst_limit: 1e6 },
    loaded: () => resolve(),
  });
});
expose("posthog", ready, (i) => posthog.capture("Product Clicked", props(i)));
