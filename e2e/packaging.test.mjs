// The package as users get it: `npm pack` output installed into
// examples/, built with Vite, webpack 5, esbuild and Next.js, run in the
// Vite and Next.js dev servers, and the script-tag embed; each served and
// checked in Chromium by an event arriving at the local receiver. Also: a
// strict Content-Security-Policy with Trusted Types, the wrong MIME type
// for the .wasm, a blocked embed, a browser without WebAssembly, Node
// (server-side rendering) and the TypeScript types.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { addEmbed, addStub, launch, receiver, until, ROOT } from "./harness.mjs";

const EX = path.join(ROOT, "examples");
const bin = (name) => path.join(EX, "node_modules/.bin", name);
const run = (cmd, args, cwd = EX, env = process.env) => execFileSync(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] }).toString();

let browser, rx, strict, lax;
// Trusted Types too: nothing in segmint turns strings into HTML or script.
const CSP = "script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; require-trusted-types-for 'script'; trusted-types 'none'";

before(async () => {
  // Install the package exactly as published.
  for (const f of fs.readdirSync(EX)) if (f.endsWith(".tgz")) fs.rmSync(path.join(EX, f));
  const tarball = run("npm", ["pack", path.join(ROOT, "pkg"), "--pack-destination", EX, "--silent"]).trim().split("\n").pop();
  run("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", `./${tarball}`]);
  run(bin("vite"), ["build"], path.join(EX, "vite-app"));
  run(bin("webpack"), ["--config", "webpack/webpack.config.cjs"]);
  run("node", ["esbuild/build.mjs"]);
  const statics = [
    { prefix: "/vite/", dir: path.join(EX, "vite-app/dist") },
    { prefix: "/webpack/", dir: path.join(EX, "webpack") },
    { prefix: "/esbuild/", dir: path.join(EX, "esbuild") },
    { prefix: "/html/", dir: path.join(EX, "html") },
  ];
  rx = await receiver({ statics });
  strict = await receiver({ statics, headers: { "Content-Security-Policy": CSP } });
  lax = await receiver({ statics, headers: { "Content-Security-Policy": CSP.replace(" 'wasm-unsafe-eval'", "") } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await rx?.close();
  await strict?.close();
  await lax?.close();
});

async function visit(server, pagePath, { route } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  // wasm: every .wasm response, as "status content-type path".
  const problems = { errors: [], csp: [], wasm: [] };
  page.on("pageerror", (e) => problems.errors.push(e.message));
  page.on("response", (r) => {
    const url = new URL(r.url());
    if (url.pathname.endsWith(".wasm")) problems.wasm.push(`${r.status()} ${r.headers()["content-type"]} ${url.pathname.split("/node_modules/").pop()}`);
  });
  page.on("console", (m) => /Content.Security.Policy|Refused to/.test(m.text()) && problems.csp.push(m.text()));
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  if (route) await route(context);
  await page.goto(`${server.origin}${pagePath}`);
  return { context, page, problems };
}

const arrived = (server, bundler) => server.state.messages.find((m) => m.event === "Packaging Test" && m.properties.bundler === bundler);

for (const [bundler, pagePath] of [
  ["vite", "/vite/index.html"],
  ["webpack", "/webpack/index.html"],
  ["esbuild", "/esbuild/index.html"],
]) {
  test(`npm package built with ${bundler}: an event arrives`, async () => {
    const { context, page, problems } = await visit(rx, pagePath);
    await until(() => arrived(rx, bundler), 10_000, `the ${bundler} event`);
    assert.deepEqual(problems.errors, []);
    assert.match(await page.evaluate(() => document.body.dataset.flushed || ""), /"pending":0/);
    // The build shortens the wasm's export names; the memory is still found
    // (the benchmarks' memory figure reads it).
    assert.equal(await page.evaluate(() => window.sm._memory instanceof WebAssembly.Memory), true);
    // The bundler emitted the segment engine's module too, and it loads
    // (webpack names both by their hashes).
    await page.evaluate(() => window.sm.segmentsReady);
    assert.equal(problems.wasm.filter((w) => w.startsWith("200 application/wasm ")).length, 2, problems.wasm.join(", "));
    assert.deepEqual(problems.errors, []);
    await context.close();
    // A bare import.meta.url would make webpack inline this machine's path
    // (file:///…/node_modules/segmint/index.js) into a shop's bundle.
    for (const file of bundleFiles(bundler)) {
      assert.equal(fs.readFileSync(file, "utf8").includes(EX), false, `${file} names a path of the build machine`);
    }
  });
}

/** The JavaScript a bundler wrote for the example app. */
function bundleFiles(bundler) {
  const dir = path.join(EX, { vite: "vite-app/dist/assets", webpack: "webpack/dist", esbuild: "esbuild/dist" }[bundler]);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".js"));
  assert.notEqual(files.length, 0, `no bundle in ${dir}`);
  return files.map((f) => path.join(dir, f));
}

/** Vite's dev server (`npm run dev`) on the Vite app, with fresh
 * pre-bundled dependencies; batches for /v1 go to the receiver. */
async function viteDevServer(vitePackage) {
  const { createServer } = await import(pathToFileURL(path.join(EX, "node_modules", vitePackage, "dist/node/index.js")).href);
  const server = await createServer({
    root: path.join(EX, "vite-app"),
    configFile: false,
    logLevel: "silent",
    optimizeDeps: { force: true },
    server: { host: "127.0.0.1", proxy: { "/v1": rx.origin } },
  });
  await server.listen();
  server.origin = new URL(server.resolvedUrls.local[0]).origin;
  return server;
}

// Vite before 8 pre-bundles dependencies into node_modules/.vite/deps/
// without the .wasm beside them (vitejs/vite#8427); Vite 8 moves it.
for (const vitePackage of ["vite6", "vite"]) {
  test(`npm package in Vite's dev server (${vitePackage}): it starts and an event arrives`, async () => {
    const dev = await viteDevServer(vitePackage);
    try {
      const { context, page, problems } = await visit(dev, "/index.html");
      assert.equal(await page.evaluate(() => window.sm.ready.then(() => "ready", (e) => `${e.code}: ${e.message}`)), "ready");
      const me = await page.evaluate(() => window.sm.anonymousId());
      await until(() => rx.state.messages.some((m) => m.anonymousId === me && m.event === "Packaging Test"), 10_000, "the dev server's event");
      assert.deepEqual(problems.errors, []);
      // One request for each wasm, answered with it: no failed first try
      // (a 404 or an HTML page, and the MIME warning) in the dev console.
      await page.evaluate(() => window.sm.segmentsReady);
      assert.deepEqual(problems.wasm.sort(), [
        "200 application/wasm segmint/segmint_engine.wasm",
        "200 application/wasm segmint/segmint_wasm_bg.wasm",
      ]);
      assert.deepEqual(problems.errors, []);
      await context.close();

      if (vitePackage === "vite6") {
        // Where the package's own copy is not found either (a monorepo
        // with hoisted node_modules), the error says what to configure.
        const hoisted = await visit(dev, "/index.html", {
          route: (ctx) => ctx.route("**/node_modules/segmint/segmint_wasm_bg.wasm", (r) => r.fulfill({ status: 404 })),
        });
        const failure = await hoisted.page.evaluate(() => window.sm.ready.then(() => null, (e) => ({ code: e.code, message: e.message })));
        assert.equal(failure?.code, "load_failed");
        assert.match(failure.message, /optimizeDeps: \{ exclude: \["segmint"\] \}/);
        await hoisted.context.close();
      }
    } finally {
      await dev.close();
    }
  });
}

const NEXT_APP = path.join(EX, "next-app");
const NEXT = path.join(EX, "node_modules/next/dist/bin/next");
/** Next's environment: without NODE_ENV, which Next sets itself (the Vite
 * dev servers above set it to "development" in this process). */
function nextEnv() {
  const { NODE_ENV, ...env } = process.env;
  return { ...env, NEXT_TELEMETRY_DISABLED: "1", NEXT_PUBLIC_SEGMINT_ENDPOINT: rx.origin };
}

/** A port nothing listens on now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

/** `next <command>` serving the Next.js app, once it answers. */
async function nextServer(command) {
  const port = await freePort();
  const child = spawn(process.execPath, [NEXT, command, "-p", String(port), "-H", "127.0.0.1"], {
    cwd: NEXT_APP,
    env: nextEnv(),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: closing stops its workers too
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const origin = `http://127.0.0.1:${port}`;
  const close = () => {
    try {
      process.kill(-child.pid);
    } catch {
      /* already gone */
    }
  };
  try {
    await until(async () => (await fetch(origin).catch(() => null))?.ok, 60_000, `next ${command} to answer`);
  } catch (e) {
    close();
    throw new Error(`${e.message}; it said:\n${output.slice(-2000)}`);
  }
  return { origin, close };
}

// Next.js: the page is rendered on the server (importing segmint there
// must not throw) and the client component starts segmint in the browser.
// Turbopack, Next's bundler, resolves new URL(…, import.meta.url) itself.
for (const command of ["start", "dev"]) {
  test(`npm package in a Next.js app (next ${command === "start" ? "build (Turbopack) + next start" : "dev"}): an event arrives, and React renders the banner personalize() decides`, async () => {
    if (command === "start") run(process.execPath, [NEXT, "build"], NEXT_APP, nextEnv());
    const server = await nextServer(command);
    try {
      const { context, page, problems } = await visit(server, "/");
      const consoleErrors = [];
      page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
      await page.waitForFunction(() => window.sm, null, { timeout: 30_000 });
      assert.equal(await page.evaluate(() => window.sm.ready.then(() => "ready", (e) => `${e.code}: ${e.message}`)), "ready");
      const me = await page.evaluate(() => window.sm.anonymousId());
      await until(() => rx.state.messages.some((m) => m.anonymousId === me && m.properties?.bundler === "next"), 10_000, "the Next.js event");
      // No rules: the default banner, rendered by React, counted once
      // (in development StrictMode runs the component's effect twice).
      await page.waitForSelector("#hero a");
      const hero = await page.evaluate(() => {
        const el = document.getElementById("hero");
        return { html: el.innerHTML, variation: el.dataset.segmintVariation, visibility: el.style.visibility };
      });
      assert.deepEqual(hero, { html: '<a href="/new">New arrivals</a>', variation: "default", visibility: "" });
      await page.evaluate(() => {
        const link = document.querySelector("#hero a");
        link.addEventListener("click", (e) => e.preventDefault()); // stay on the page
        link.click();
      });
      await until(() => rx.state.messages.some((m) => m.anonymousId === me && m.event === "Promotion Clicked"), 10_000, "Promotion Clicked");
      const viewed = new Set(rx.state.messages.filter((m) => m.anonymousId === me && m.event === "Promotion Viewed").map((m) => m.messageId));
      assert.equal(viewed.size, 1, "one Promotion Viewed");
      assert.deepEqual(problems.errors, []);
      assert.deepEqual(consoleErrors.filter((t) => /hydrat/i.test(t)), []);
      await context.close();
    } finally {
      server.close();
    }
  });
}

test("the published files name no path of the build machine (checkout, home, cargo registry)", () => {
  // Panic locations inside crates.io dependencies would carry
  // $CARGO_HOME/registry/src/… into every shop's wasm (scripts/build.sh
  // remaps them), and the package would differ from machine to machine.
  const installed = path.join(EX, "node_modules/segmint");
  const machinePaths = [ROOT, `${os.homedir()}/`, process.env.CARGO_HOME].filter(Boolean);
  const files = fs.readdirSync(installed);
  assert.ok(files.includes("segmint_wasm_bg.wasm") && files.includes("embed.js"), files.join(", "));
  for (const f of files) {
    const text = fs.readFileSync(path.join(installed, f), "latin1");
    for (const p of machinePaths) assert.equal(text.includes(p), false, `${f} names ${p}`);
  }
});

test("script-tag embed: the stub's queue is replayed in order", async () => {
  const { context, page, problems } = await visit(rx, "/html/index.html");
  await until(() => arrived(rx, "embed"), 10_000, "the embed event");
  const mine = rx.state.messages.filter((m) => m.anonymousId === arrived(rx, "embed").anonymousId);
  assert.deepEqual(mine.map((m) => m.name || m.event), ["Embed Example", "Packaging Test"]);
  assert.equal(await page.evaluate(() => typeof window.segmint.track === "function" && !Array.isArray(window.segmint)), true, "window.segmint is the client");
  assert.equal(await page.evaluate(() => window.segmint._memory instanceof WebAssembly.Memory), true);
  // The tag inserted a second time (a tag manager firing twice): the page
  // keeps its one client, so nothing is recorded twice.
  await page.evaluate(() => (window.firstClient = window.segmint));
  await addEmbed(page);
  const same = await page.evaluate(async () => {
    await window.segmint.track("Packaging Test", { bundler: "embed twice" });
    await window.segmint.flush();
    return window.segmint === window.firstClient;
  });
  assert.equal(same, true, "window.segmint is still the first client");
  assert.equal(rx.state.messages.filter((m) => m.properties?.bundler === "embed twice").length, 1);
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test("script-tag embed: options in data-options hold, stripUrlParams among them", async () => {
  const { context, page, problems } = await visit(rx, "/blank.html?email=a%40b.example&x=1");
  await addStub(page);
  await page.evaluate(() => window.segmint.track("Packaging Test", { bundler: "embed options" }));
  await addEmbed(page, { flushIntervalMs: 100, stripUrlParams: ["email"] });
  const event = await until(() => arrived(rx, "embed options"), 10_000, "the queued event");
  assert.equal(event.context.page.url, `${rx.origin}/blank.html?x=1`);
  assert.equal(event.context.page.search, "?x=1");
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test("the stub shown in README and the HTML example is the built one", () => {
  const built = fs.readFileSync(path.join(ROOT, "pkg/stub.min.js"), "utf8").trim();
  for (const file of ["README.md", "examples/html/index.html"]) {
    assert.ok(fs.readFileSync(path.join(ROOT, file), "utf8").includes(`<script>${built}</script>`), `${file} shows pkg/stub.min.js`);
  }
  const bytes = fs.statSync(path.join(ROOT, "pkg/stub.min.js")).size;
  assert.ok(fs.readFileSync(path.join(ROOT, "README.md"), "utf8").includes(`the stub (${bytes} bytes`), `README gives the stub's size, ${bytes} bytes`);
  assert.ok(fs.readFileSync(path.join(EX, "html/index.html"), "utf8").includes(`(pkg/stub.min.js, ${bytes} bytes)`), `the HTML example gives the stub's size, ${bytes} bytes`);
});

test("the stub on a page with an element whose id is segmint (also window.segmint): calls are queued and replayed", async () => {
  const { context, page, problems } = await visit(rx, "/blank.html");
  await page.evaluate(() => document.body.insertAdjacentHTML("beforeend", '<div id="segmint">banners</div>'));
  await addStub(page);
  await page.evaluate(() => window.segmint.track("Packaging Test", { bundler: "named element" }));
  await addEmbed(page);
  await until(() => arrived(rx, "named element"), 10_000, "the queued event");
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test("the embed loads the wasm even when the server sends the wrong MIME type", async () => {
  const wrong = await receiver({ statics: [{ prefix: "/html/", dir: path.join(EX, "html") }], wrongWasmType: true });
  try {
    const { context, problems } = await visit(wrong, "/html/index.html");
    await until(() => arrived(wrong, "embed"), 10_000, "the embed event");
    assert.deepEqual(problems.errors, []);
    await context.close();
  } finally {
    await wrong.close();
  }
});

test("the embed from another origin (a CDN): works where that server sends CORS headers; without them load_failed names the wasm and the header", async () => {
  const withCors = await receiver();
  const withoutCors = await receiver({ cors: false });
  try {
    for (const cdn of [withCors, withoutCors]) {
      const { context, page, problems } = await visit(rx, "/blank.html");
      const ready = await page.evaluate(async ([cdn, shop]) => {
        await new Promise((resolve) => {
          const script = document.createElement("script");
          script.src = `${cdn}/pkg/embed.js`;
          script.dataset.endpoint = shop;
          script.onload = resolve;
          document.head.append(script);
        });
        return window.segmint.ready.then(() => "ready", (e) => `${e.code}: ${e.message}`);
      }, [cdn.origin, rx.origin]);
      if (cdn === withCors) {
        assert.equal(ready, "ready");
      } else {
        assert.match(ready, /^load_failed: .*could not fetch http:\/\/127\.0\.0\.1:\d+\/pkg\/segmint_wasm_bg\.wasm \(from another origin, its server must send Access-Control-Allow-Origin; /);
      }
      assert.deepEqual(problems.errors, []);
      await context.close();
    }
  } finally {
    await withCors.close();
    await withoutCors.close();
  }
});

test("the embed fetches its wasm with the hash built into it: a script tag's integrity covers both, and a tampered wasm never runs", async () => {
  const integrity = JSON.parse(fs.readFileSync(path.join(ROOT, "pkg/integrity.json"), "utf8"));
  // A copy of the package whose wasm lost its last byte.
  const tampered = fs.mkdtempSync(path.join(os.tmpdir(), "segmint-tampered-"));
  for (const f of ["embed.js", "segmint_wasm_bg.wasm"]) fs.copyFileSync(path.join(ROOT, "pkg", f), path.join(tampered, f));
  const wasm = fs.readFileSync(path.join(tampered, "segmint_wasm_bg.wasm"));
  fs.writeFileSync(path.join(tampered, "segmint_wasm_bg.wasm"), wasm.subarray(0, wasm.length - 1));
  const server = await receiver({ statics: [{ prefix: "/tampered/", dir: tampered }] });
  try {
    const results = [];
    for (const dir of ["pkg", "tampered"]) {
      const { context, page, problems } = await visit(server, "/blank.html");
      results.push(
        await page.evaluate(
          async ([src, integrity]) => {
            await new Promise((resolve, reject) => {
              const script = document.createElement("script");
              script.src = src;
              script.integrity = integrity;
              script.crossOrigin = "anonymous";
              script.dataset.endpoint = "/";
              script.onload = resolve;
              script.onerror = () => reject(new Error("the embed's integrity check failed"));
              document.head.append(script);
            });
            return window.segmint.ready.then(() => "ready", (e) => `${e.code}: ${e.message}`);
          },
          [`/${dir}/embed.js`, integrity["embed.js"]],
        ),
      );
      assert.deepEqual(problems.errors, []);
      await context.close();
    }
    assert.equal(results[0], "ready");
    assert.match(results[1], /^load_failed: .*could not fetch http:\/\/127\.0\.0\.1:\d+\/tampered\/segmint_wasm_bg\.wasm \(its content must be the wasm built with this embed\.js\)$/);
  } finally {
    await server.close();
    fs.rmSync(tampered, { recursive: true, force: true });
  }
});

test("a blocked embed: the stub never throws", async () => {
  const { context, page, problems } = await visit(rx, "/html/index.html", {
    route: (ctx) => ctx.route("**/embed.js", (r) => r.abort("blockedbyclient")),
  });
  await page.waitForTimeout(300);
  const state = await page.evaluate(() => {
    // Every stub method, including the ones that normally return values.
    for (const m of ["track", "page", "identify", "reset", "flush", "consent", "on", "personalize"]) window.segmint[m]("x", {});
    const sm = window.segmint;
    // Reads answer "nothing known yet" (not the truthy queue) and are not queued.
    const reads = [sm.anonymousId(), sm.userId(), sm.segments(), sm.inSegment("vip"), sm.traits()];
    sm.personalize("#hero", {}).undo();
    return { isQueue: Array.isArray(sm), queued: sm.length, reads, chained: sm.on("error", () => {}) === sm };
  });
  assert.deepEqual(state, { isQueue: true, queued: 11, reads: [null, null, [], false, {}], chained: true });
  // The calls that give the client's promises give settled ones, so code
  // written to the types (`.catch()`, `.then()`, `await`) runs on.
  const settled = await page.evaluate(async () => {
    const sm = window.segmint;
    const results = [];
    for (const m of ["track", "page", "identify", "productClicked", "productsSearched", "orderCompleted", "consent"]) {
      results.push(await sm[m]("x", {}).then((v) => v === undefined ? "resolved" : v, () => "rejected"));
    }
    results.push(await sm.flush().then((r) => r));
    return { results, queued: sm.length };
  });
  // flush(): nothing sent, and the calls queued so far (itself included) pending.
  assert.deepEqual(settled, { results: [...Array(7).fill("resolved"), { sent: 0, pending: 20 }], queued: 20 });
  assert.deepEqual(problems.errors, []);
  await context.close();
});

/** Starts the npm build (on a page with a default-only hero slot) and
 * the embed where `route` keeps the wasm from starting: what `ready`, a
 * later `track()` and `on("error")` gave, what the hero shows, and the
 * pages' uncaught errors. */
async function failedStart(route) {
  const { context, page, problems } = await visit(rx, "/blank.html", { route });
  await page.waitForFunction(() => window.segmintModule);
  const npm = await page.evaluate(async (endpoint) => {
    document.body.insertAdjacentHTML(
      "beforeend",
      '<div id="hero" data-segmint-slot="hero"><template data-segment="default"><p>Default hero</p></template></div>',
    );
    const sm = window.segmintModule.load({ endpoint });
    const heard = [];
    sm.on("error", (e) => heard.push(e.code));
    const ready = await sm.ready.then(() => null, (e) => ({ code: e.code, message: e.message }));
    const track = await sm.track("Lost").then(() => "ok", (e) => e.code);
    return { ready, track, heard, hero: document.getElementById("hero").textContent.trim() };
  }, rx.origin);
  await context.close();

  const embed = await visit(rx, "/html/index.html", { route });
  await embed.page.waitForFunction(() => window.segmint && !Array.isArray(window.segmint));
  const embedReady = await embed.page.evaluate(() => window.segmint.ready.then(() => "ready", (e) => `${e.code}: ${e.message}`));
  await embed.context.close();
  return { npm, embed: embedReady, errors: [...problems.errors, ...embed.problems.errors] };
}

test("a browser without WebAssembly (iOS Lockdown Mode): load_failed is reported, calls reject, slots show their default", async () => {
  const { npm, embed, errors } = await failedStart((ctx) => ctx.addInitScript(() => delete window.WebAssembly));
  assert.deepEqual(
    { ready: npm.ready?.code, track: npm.track, heard: npm.heard, hero: npm.hero },
    { ready: "load_failed", track: "load_failed", heard: ["load_failed"], hero: "Default hero" },
  );
  assert.match(embed, /^load_failed: .*WebAssembly/);
  assert.deepEqual(errors, []);
});

test("a wasm the browser cannot compile (as in browsers older than Chrome 96, Firefox 79, Safari 15): load_failed says so, slots show their default", async () => {
  // The engine refuses to compile the wasm with a WebAssembly.CompileError,
  // as an older one fails on reference types. (A truncated file would
  // not do for the embed: it checks the wasm's hash before compiling.)
  const { npm, embed, errors } = await failedStart((ctx) =>
    ctx.addInitScript(() => {
      const refuse = () => Promise.reject(new WebAssembly.CompileError("WebAssembly.instantiate(): invalid value type 0x6f"));
      for (const f of ["compile", "compileStreaming", "instantiate", "instantiateStreaming"]) WebAssembly[f] = refuse;
    }),
  );
  assert.equal(npm.ready?.code, "load_failed");
  assert.match(npm.ready.message, /could not compile segmint's WebAssembly: it needs Chrome or Edge 96, Firefox 79, Safari 15 or later/);
  assert.deepEqual({ track: npm.track, hero: npm.hero }, { track: "load_failed", hero: "Default hero" });
  assert.match(embed, /^load_failed: .*Safari 15 or later/);
  assert.deepEqual(errors, []);
});

test("strict CSP (script-src 'self' 'wasm-unsafe-eval', Trusted Types): the npm build and the embed work, banners render", async () => {
  for (const [bundler, pagePath] of [["vite", "/vite/index.html"], ["embed-csp", "/html/strict.html"]]) {
    const { context, page, problems } = await visit(strict, pagePath);
    await until(() => arrived(strict, bundler), 10_000, `the ${bundler} event under CSP`);
    if (bundler === "embed-csp") {
      await page.waitForFunction(() => document.querySelector("[data-segmint-slot=hero] p"));
      assert.equal(await page.textContent("[data-segmint-slot=hero] p"), "Welcome to the shop");
    }
    assert.deepEqual(await page.evaluate(() => window.cspViolations), [], bundler);
    assert.deepEqual(problems.csp, [], bundler);
    assert.deepEqual(problems.errors, [], bundler);
    await context.close();
  }
});

test("a CSP without 'wasm-unsafe-eval': load_failed says to add it (not that the browser is too old), and the slot shows its default", async () => {
  const { context, page } = await visit(lax, "/html/strict.html");
  const error = await page.evaluate(() => window.segmint.ready.then(() => null, (e) => `${e.code}: ${e.message}`));
  assert.match(error, /^load_failed: segmint could not start \(the page's Content-Security-Policy does not allow WebAssembly: add 'wasm-unsafe-eval' to its script-src\): /);
  assert.equal((await page.textContent("[data-segmint-slot=hero]")).trim(), "Welcome to the shop");
  await context.close();
});

test("importing the package (and the embed) in Node (server-side rendering) does not throw; calls are no-ops", () => {
  const out = run("node", [
    "--input-type=module",
    "-e",
    `import { load } from "segmint";
     await import("segmint/embed");
     const sm = load({ endpoint: "https://collector.example" });
     const results = [
       await sm.track("x", { a: 1 }), await sm.page(), await sm.identify("u"), await sm.orderCompleted({}),
       await sm.flush(), sm.anonymousId(), sm.segments(), sm.inSegment("a"), sm.traits(), await sm.ready,
     ];
     sm.reset(); sm.on("segments", () => {}).on("error", () => {}); sm.personalize("#x", {}).undo();
     console.log(JSON.stringify(results));`,
  ]);
  assert.equal(out.trim(), '[null,null,null,null,{"sent":0,"pending":0},null,[],false,{},null]');
});

test("in a Web Worker: load_failed says to load segmint in the page, and calls reject instead of vanishing", async () => {
  const { context, page, problems } = await visit(rx, "/blank.html");
  const result = await page.evaluate(async () => {
    const source = `
      import { load } from "${location.origin}/pkg/index.js";
      const sm = load({ endpoint: "${location.origin}" });
      const settle = (p) => p.then(() => "ok", (e) => e.code + ": " + e.message);
      postMessage({ ready: await settle(sm.ready), track: await settle(sm.track("x")), flush: await settle(sm.flush()) });`;
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })), { type: "module" });
    return new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
    });
  });
  const refused = /^load_failed: segmint could not start: segmint runs in a page, not in a Web Worker .*call load\(\) in the page$/;
  for (const [call, outcome] of Object.entries(result)) assert.match(outcome, refused, call);
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test("the TypeScript types describe the whole API, under each module resolution projects use", () => {
  // nodenext (Node ESM), bundler (Vite, Next.js), node10 (older projects).
  for (const [module, resolution] of [["nodenext", "nodenext"], ["esnext", "bundler"], ["commonjs", "node10"]]) {
    run(bin("tsc"), ["--noEmit", "--strict", "--target", "es2022", "--module", module, "--moduleResolution", resolution, "--lib", "es2022,dom", "types/usage.ts"]);
  }
});
