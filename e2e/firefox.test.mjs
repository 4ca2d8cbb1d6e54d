// The WebDriver suite (webdriver-suite.mjs) in Debian's Firefox ESR, over
// geckodriver. SEGMINT_SKIP_FIREFOX=1 skips it, as it does the Firefox
// wasm tests.
import { suite } from "./webdriver-suite.mjs";
import { firefox } from "./webdriver.mjs";

suite("Firefox", firefox, !!process.env.SEGMINT_SKIP_FIREFOX && "SEGMINT_SKIP_FIREFOX is set");
