import * as amplitude from "@amplitude/analytics-browser";
import { RX, props, expose } from "./common.js";

const ready = amplitude.init("bench-key", undefined, {
  serverUrl: `${RX}/2/httpapi`,
  defaultTracking: false,
  autocapture: false,
  identityStorage: "localStorage",
  // No remote configuration (it would ask sr-client-cfg.amplitude.com).
  fetchRemoteConfig: false,
  remoteConfig: { fetchRemoteConfig: false },
}).promise;
expose("amplitude", ready, (i) => amplitude.track("Product Clicked", props(i)));
