// A screenshot of the dreamed pixel game (src/pixels/) after some seconds of dreaming with key presses, in headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core). From web/, with the player built (npm run build):
//
//   node e2e/screenshot.mjs --models ../outputs/RUN/export --out dream.png [--seconds 20] [--keys "ArrowRight:1500,Space:300"]
//
// --models DIR starts `python -m worldmodels.play --no-build --port 0 --models DIR` (the checkout's .venv python, or
// --python) and plays DIR's first gym_pixels model (or --name NAME); --url URL uses a running player server instead.
// --keys: comma-separated KEY:MS presses (KEY as Playwright names it: Space, ArrowLeft, Digit1...), repeated until
// --seconds have passed; by default it cycles through the game's own keys (the key legend the page shows). The page
// is not reloaded: the dream starts from the manifest's first start strip. Prints the frames dreamed and the frame
// rate; exits 1 when the model did not dream.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    models: { type: "string" }, url: { type: "string" }, name: { type: "string" },
    out: { type: "string", default: "dream.png" }, seconds: { type: "string", default: "10" },
    keys: { type: "string" }, python: { type: "string" },
  },
});
if (!args.models === !args.url) {
  console.error("usage: node e2e/screenshot.mjs (--models DIR | --url URL) [--name NAME] [--out FILE.png] " +
    "[--seconds N] [--keys KEY:MS,...]");
  process.exit(2);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Start the player server on DIR; resolves with its URL and the process. */
function startServer(dir) {
  const venv = join(root, ".venv/bin/python");
  const python = args.python ?? (existsSync(venv) ? venv : "python3");
  const server = spawn(python, ["-m", "worldmodels.play", "--no-build", "--port", "0", "--quiet", "--newest", "0",
    "--models", resolve(dir)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((done, fail) => {
    let text = "";
    server.stdout.on("data", (chunk) => {
      text += chunk;
      const m = /serving the player on (\S+)/.exec(text);
      if (m) done({ url: m[1].replace(/\/$/, ""), server });
    });
    server.on("exit", (code) => fail(new Error(`the player server exited (${code}):\n${text}`)));
  });
}

const DEFAULT_KEYS = { " ": "Space", ArrowUp: "ArrowUp", ArrowDown: "ArrowDown", ArrowLeft: "ArrowLeft",
  ArrowRight: "ArrowRight" };

let server = null;
let browser = null;
let code = 0;
try {
  let base = args.url?.replace(/\/$/, "");
  if (args.models) ({ url: base, server } = await startServer(args.models));
  const index = await (await fetch(`${base}/models/index.json`)).json();
  const model = index.models.find((m) => m.task === "gym_pixels" && (!args.name || m.name === args.name) &&
    (!args.models || m.source === "extra"));
  if (!model) throw new Error(`no gym_pixels model${args.name ? ` named ${args.name}` : ""} is listed at ${base}`);
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
  await page.goto(`${base}/?model=${model.id}`);
  await page.waitForFunction((id) => window.__playerReady === id || !document.getElementById("error").hidden,
    model.id, { timeout: 120_000 });
  const error = await page.evaluate(() => document.getElementById("error").hidden ? "" : document.getElementById("error").textContent);
  if (error) throw new Error(`the player says: ${error}`);
  const presses = args.keys
    ? args.keys.split(",").map((p) => { const [key, ms] = p.split(":"); return { key, ms: Number(ms ?? 500) }; })
    : await page.evaluate(() => {
      const map = window.__pixels.keys();
      return map.filter((keys) => keys.length > 0).map((keys) => ({ keys, ms: 800 }));
    });
  const until = Date.now() + Number(args.seconds) * 1000;
  for (let i = 0; Date.now() < until; i++) {
    const press = presses.length ? presses[i % presses.length] : { keys: [], ms: 500 };
    const keys = press.keys ? press.keys.map((k) => DEFAULT_KEYS[k] ?? `Digit${k}`) : [press.key];
    for (const k of keys) await page.keyboard.down(k);
    await page.waitForTimeout(Math.min(press.ms, Math.max(0, until - Date.now())));
    for (const k of keys.reverse()) await page.keyboard.up(k);
  }
  const state = await page.evaluate(() => ({ frames: window.__pixels.frames(), fps: window.__pixels.fps() }));
  await page.screenshot({ path: args.out });
  console.log(`${model.label}: ${state.frames} dreamed frames at ${state.fps.toFixed(1)} frames/s; wrote ${args.out}`);
  if (errors.length) console.log(`console errors: ${errors.join(" | ")}`);
  if (state.frames === 0) code = 1;
} catch (err) {
  console.error(`screenshot failed: ${err?.message ?? err}`);
  code = 1;
} finally {
  await browser?.close();
  server?.kill();
}
process.exit(code);
