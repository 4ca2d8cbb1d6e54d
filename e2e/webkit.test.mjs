// The WebDriver suite (webdriver-suite.mjs) in WebKitGTK, Safari's engine,
// over WebKitWebDriver on a virtual display. SEGMINT_SKIP_WEBKIT=1 skips it.
import { suite } from "./webdriver-suite.mjs";
import { webkit } from "./webdriver.mjs";

suite("WebKit", webkit, !!process.env.SEGMINT_SKIP_WEBKIT && "SEGMINT_SKIP_WEBKIT is set");
