// Firefox and WebKit for the end-to-end suites, driven over W3C WebDriver:
// playwright-core drives only its own builds of them, which cannot be
// downloaded here. geckodriver (which scripts/setup.sh installs for the
// wasm tests) drives Debian's firefox-esr; WebKitWebDriver (Debian's
// webkit2gtk-driver) drives WebKitGTK's MiniBrowser, on a virtual X
// display (xvfb-run) since it has no headless mode. WebKitGTK is Safari's
// engine (WebKit, JavaScriptCore), not Safari: it stands in for Safari's
// storage, unload and WebAssembly behaviour, not for Safari's own
// settings such as Intelligent Tracking Prevention.

import { spawn } from "node:child_process";
import { until, freePort } from "./harness.mjs";

/**
 * Starts a WebDriver server (`command` with `args(port)`) and a session
 * with `capabilities`. Returns `{ version, goto(url), back(), window(),
 * newWindow(), switchTo(handle), closeWindow(handle), deleteCookies(), screenshot(),
 * run(body, ...args), close() }`: `run` evaluates `body` as the body of an async
 * function in the page (its arguments as `args`) and returns its result.
 */
async function session(name, command, args, capabilities, { scriptTimeoutMs } = {}) {
  const port = await freePort();
  // Its own process group, so that close() also ends what it started
  // (xvfb-run's X server and the browser).
  const driver = spawn(command, args(port), { stdio: "ignore", detached: true });
  const stop = () => {
    try {
      process.kill(-driver.pid, "SIGTERM");
    } catch {}
  };
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
    await until(async () => (await fetch(`${base}/status`).catch(() => null))?.ok, 20_000, command);
    const created = await call("POST", "/session", { capabilities: { alwaysMatch: capabilities } });
    const at = `/session/${created.sessionId}`;
    if (scriptTimeoutMs) await call("POST", `${at}/timeouts`, { script: scriptTimeoutMs });
    return {
      version: created.capabilities.browserVersion,
      goto: (url) => call("POST", `${at}/url`, { url }),
      back: () => call("POST", `${at}/back`, {}),
      /** This window's handle. */
      window: () => call("GET", `${at}/window`),
      /** Opens a new window; returns its handle (this one stays current). */
      newWindow: async () => (await call("POST", `${at}/window/new`, { type: "window" })).handle,
      /** Makes the window with `handle` the current one. */
      switchTo: (handle) => call("POST", `${at}/window`, { handle }),
      /** Closes the window with `handle` (switching to it first). */
      async closeWindow(handle) {
        await call("POST", `${at}/window`, { handle });
        await call("DELETE", `${at}/window`);
      },
      /** Deletes the current page's cookies. */
      deleteCookies: () => call("DELETE", `${at}/cookie`),
      /** The viewport as PNG bytes. */
      screenshot: async () => Buffer.from(await call("GET", `${at}/screenshot`), "base64"),
      async run(body, ...args) {
        // The result goes through JSON: WebKit's driver fails on an
        // `undefined` inside the returned object. What the page threw is
        // `thrown`, not `error`, which call() takes for the driver's own,
        // with the message first (JavaScriptCore's stacks lack it).
        const script = `const done = arguments[arguments.length - 1];
          (async (args) => { ${body} })([...arguments].slice(0, -1)).then(
            (value) => done({ value: JSON.parse(JSON.stringify(value ?? null)) }),
            (e) => done({ thrown: String(e) + (e && e.stack ? "\\n" + e.stack : "") }));`;
        const result = await call("POST", `${at}/execute/async`, { script, args });
        if (result.thrown) throw new Error(`in ${name}: ${result.thrown}`);
        return result.value;
      },
      async close() {
        await call("DELETE", at).catch(() => {});
        stop();
      },
    };
  } catch (e) {
    stop();
    throw e;
  }
}

/** Headless Firefox (see {@link session}). */
export function firefox() {
  return session("Firefox", "geckodriver", (port) => ["--port", String(port), "--log", "fatal"], {
    browserName: "firefox",
    "moz:firefoxOptions": { args: ["-headless"] },
  });
}

/** WebKitGTK's MiniBrowser on a virtual display (see {@link session});
 * `args`: more MiniBrowser flags (say `--proxy=…`); `scriptTimeoutMs`:
 * how long run() may take (WebDriver's default is 30 s). */
export function webkit({ args = [], scriptTimeoutMs } = {}) {
  // The driver starts the MiniBrowser installed beside it.
  return session("WebKit", "xvfb-run", (port) => ["-a", "WebKitWebDriver", `--port=${port}`], {
    "webkitgtk:browserOptions": { args: ["--automation", ...args] },
  }, { scriptTimeoutMs });
}
