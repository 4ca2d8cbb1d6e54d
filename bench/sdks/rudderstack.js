import { RudderAnalytics } from "@rudderstack/analytics-js/bundled";
import { RX, props, expose } from "./common.js";

const ra = new RudderAnalytics();
const ready = new Promise((resolve) => {
  ra.load("bench-key", RX, {
    configUrl: RX,
    logLevel: "ERROR",
    loadIntegration: false,
    destinationsQueueOptions: {},
    onLoaded: () => resolve(),
  });
});
window.ra = ra;
expose("rudderstack", ready, (i) => ra.track("Product Clicked", props(i)));
