// Firefox for the end-to-end suites, driven over W3C WebDriver by
// geckodriver (which scripts/setup.sh installs for the wasm tests):
// playwright-core drives only its own Firefox build, which cannot be
// downloaded here, while geckodriver drives Debian's firefox-esr.

import { spawn } from "node:child_process";
import net from "node:net";
import { until } from "./harness.mjs";

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts headless Firefox. Returns `{ version, goto(url), back(), run(body,
 * ...args), close() }`: `run` evaluates `body` as the body of an async
 * function in the page (its arguments as `args`) and returns its result.
 */
export async function firefox() {
  const port = await freePort();
  const driver = spawn("geckodriver", ["--port", String(port), "--log", "fatal"], { stdio: "ignore" });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, path, body) => {
    const response = await fetch(base + path, {
      method,
      headers: { "Content-Type": "application/json" },
      body: body && JSON.stringify(body),
    });
    const { value } = await response.json();
    if (value && value.error) throw new Error(`WebDriver ${value.error}: ${value.message}`);
    return value;
  };
  try {
    await until(async () => (await fetch(`${base}/status`).catch(() => null))?.ok, 10_000, "geckodriver");
    const session = await call("POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "firefox", "moz:firefoxOptions": { args: ["-headless"] } } },
    });
    const at = `/session/${session.sessionId}`;
    return {
      version: session.capabilities.browserVersion,
      goto: (url) => call("POST", `${at}/url`, { url }),
      back: () => call("POST", `${at}/back`, {}),
      async run(body, ...args) {
        const script = `const done = arguments[arguments.length - 1];
          (async (args) => { ${body} })([...arguments].slice(0, -1)).then(
            (value) => done({ value }), (e) => done({ error: String(e && e.stack || e) }));`;
        const result = await call("POST", `${at}/execute/async`, { script, args });
        if (result.error) throw new Error(`in Firefox: ${result.error}`);
        return result.value;
      },
      async close() {
        await call("DELETE", at).catch(() => {});
        driver.kill();
      },
    };
  } catch (e) {
    driver.kill();
    throw e;
  }
}
