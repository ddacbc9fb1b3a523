// Browser tests in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) against a running
// `python -m worldmodels.play` server. tests/web/test_web.py starts the server and runs:
//
//   node e2e/browser.mjs --url http://127.0.0.1:PORT --artifacts DIR
//
// It needs the shipped (trained) models for Flappy's done token, plus the extra models the test serves:
// "corrupt" (an ONNX file of garbage) and "future" (an unknown manifest format version).
// Exit code 0 = every check passed; each check prints one line; screenshots go to DIR.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: { url: { type: "string" }, artifacts: { type: "string", default: "test-artifacts" } },
});
const base = args.url.replace(/\/$/, "");
mkdirSync(args.artifacts, { recursive: true });

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

/** A raw GET whose path goes out exactly as written (browsers normalize `..` before sending). */
function rawGet(path) {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const req = http.request({ hostname, port, path, method: "GET" }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function until(page, fn, arg, timeout, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    return true;
  } catch {
    console.log(`     (timed out after ${timeout} ms waiting for ${what})`);
    return false;
  }
}

const index = await (await fetch(`${base}/models/index.json`)).json();
const pick = (pred) => index.models.find(pred);
const breakout = pick((m) => m.task === "breakout" && m.source === "shipped") ?? pick((m) => m.task === "breakout" && m.name !== "corrupt");
const flappy = pick((m) => m.task === "flappy" && m.source === "shipped");
const corrupt = pick((m) => m.name === "corrupt");
const future = pick((m) => m.name === "future");

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const consoleErrors = [];
const foreign = [];
context.on("request", (req) => {
  const host = new URL(req.url()).hostname;
  if (!["127.0.0.1"].includes(host) && !req.url().startsWith("data:") && !req.url().startsWith("blob:")) foreign.push(req.url());
});
const page = await context.newPage();
page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(`${page.url()}: ${msg.text()}`); });
page.on("pageerror", (err) => consoleErrors.push(`${page.url()}: ${err.message}`));

try {
  // --- Breakout: the paddle follows the keys, the dream layer paints frames
  check(Boolean(breakout), `a Breakout model is listed (${breakout?.label})`);
  await page.goto(`${base}/?model=${breakout.id}`);
  const ready = await until(page, (id) => window.__playerReady === id && window.__breakout, breakout.id, 60_000, "Breakout to load");
  check(ready, "Breakout loads");
  // Left first (the game's random serve may leave the paddle at the right edge), then Right, then Left again.
  const hold = async (key, ms) => {
    await page.keyboard.down(key);
    await page.waitForTimeout(ms);
    await page.keyboard.up(key);
    return page.evaluate(() => window.__breakout.paddleX());
  };
  const x0 = await hold("ArrowLeft", 1000);
  const x1 = await hold("ArrowRight", 1200);
  check(x1 > x0, `holding Right moves the paddle right (x ${x0} -> ${x1})`);
  const x2 = await hold("a", 600);
  check(x2 < x1, `holding A moves it back left (x ${x1} -> ${x2})`);
  const dreamed = await until(page, () => window.__breakout.dreamFrames() >= 3, null, 60_000, "dream frames");
  const dreamFrames = await page.evaluate(() => window.__breakout.dreamFrames());
  check(dreamed, `the dream layer produces frames (${dreamFrames} so far; ${await page.textContent("#dream-fps")})`);
  await page.screenshot({ path: join(args.artifacts, "breakout.png") });

  // --- Flappy: frames advance, Space changes the trajectory, the model's done token ends the game, R restarts
  check(Boolean(flappy), `a shipped Flappy model is listed (${flappy?.label})`);
  await page.goto(`${base}/?model=${flappy.id}`);
  check(await until(page, (id) => window.__playerReady === id && window.__flappy && window.__flappy.frames() > 5,
    flappy.id, 60_000, "Flappy frames"), "Flappy loads and frames advance");
  // Not pressing, gravity pulls the bird down ever faster; one Space sends it up. So the frames after the press
  // must move up clearly faster than the last unpressed frame did (3+ px/frame). The page records every frame's bird y
  // and the frame at which the flap was sent (window.__flappy.trace/flaps), so a test process slowed by a busy
  // machine misses none of them. A start context may end in a crash first, or die right after the flap; then restart
  // and try again (at most 3 games).
  let lastDy = NaN, rise = NaN, ok = false;
  for (let attempt = 0; attempt < 3 && !ok; attempt++) {
    if (attempt > 0) {
      const r = await page.evaluate(() => window.__flappy.restarts());
      await page.keyboard.press("r");
      await until(page, (n) => window.__flappy.restarts() > n && window.__flappy.frames() > 1, r, 20_000, "a restart");
    }
    const game = await page.evaluate(() => window.__flappy.restarts());
    await until(page, () => window.__flappy.trace().length > 4 || window.__flappy.done(), null, 20_000, "4 frames");
    await page.keyboard.press("Space");
    await until(page, (g) => window.__flappy.restarts() !== g || window.__flappy.done()
      || (window.__flappy.flaps().length > 0 && window.__flappy.trace().length > window.__flappy.flaps()[0] + 5),
    game, 20_000, "5 frames after the flap");
    const r = await page.evaluate(() => ({ game: window.__flappy.restarts(), trace: window.__flappy.trace(),
      flaps: window.__flappy.flaps() }));
    if (r.game !== game || r.flaps.length === 0) continue;
    const before = r.trace.slice(0, r.flaps[0] + 1); // made before the flap was sent
    const after = r.trace.slice(r.flaps[0] + 1, r.flaps[0] + 5);
    if (before.length < 2 || after.length < 2) continue;
    lastDy = before.at(-1) - before.at(-2);
    const ys = [before.at(-1), ...after];
    rise = Math.min(...ys.slice(1).map((y, i) => y - ys[i]));
    ok = rise < lastDy - 3;
  }
  check(ok, `pressing Space changes the bird's trajectory (last dy without: ${lastDy.toFixed(1)} px/frame, min dy after: ${rise.toFixed(1)})`);
  await page.screenshot({ path: join(args.artifacts, "flappy.png") });
  const hasFrameGraph = Boolean((await (await fetch(`${base}${flappy.manifest}`)).json()).frame_onnx);
  const decoder = await page.evaluate(() => window.__flappy.decoder());
  check(decoder === (hasFrameGraph ? "frame graph" : "per token"),
    `the worker decodes with ${hasFrameGraph ? "the export's frame graph" : "one call per token"} (${decoder})`);
  const died = await until(page, () => window.__flappy.done(), null, 60_000, "the model's done token");
  check(died, `with no input the game ends on the model's done token (after ${await page.evaluate(() => window.__flappy.frames())} frames)`);
  await page.screenshot({ path: join(args.artifacts, "flappy-game-over.png") });
  const before = await page.evaluate(() => ({ restarts: window.__flappy.restarts(), ctx: window.__flappy.contextIndex() }));
  await page.keyboard.press("r");
  const restarted = await until(page, (r) => window.__flappy.restarts() > r && !window.__flappy.done() && window.__flappy.frames() > 2,
    before.restarts, 30_000, "a restart");
  check(restarted, "R restarts the game and frames advance again");
  const contexts = new Set([before.ctx]);
  for (let i = 0; i < 4; i++) {
    const r = await page.evaluate(() => window.__flappy.restarts());
    await page.keyboard.press("r");
    await until(page, (n) => window.__flappy.restarts() > n, r, 10_000, "a restart");
    contexts.add(await page.evaluate(() => window.__flappy.contextIndex()));
  }
  check(contexts.size > 1, `restarts use different start contexts (${[...contexts].join(", ")})`);
  const stream = await page.textContent("#token-stream");
  check(stream && stream.length > 0, "the token-stream panel shows tokens");

  // --- Bad model files show an error message, never a blank canvas
  for (const [entry, expect] of [[corrupt, /not an ONNX model|corrupt/i], [future, /format version/i]]) {
    check(Boolean(entry), `test model "${entry?.name}" is listed`);
    await page.goto(`${base}/?model=${entry.id}`);
    const shown = await until(page, () => !document.getElementById("error").hidden, null, 30_000, "the error box");
    const text = (await page.textContent("#error")) ?? "";
    check(shown && expect.test(text), `${entry.name} model shows a clear error: "${text.slice(0, 140)}"`);
    await page.screenshot({ path: join(args.artifacts, `error-${entry.name}.png`) });
  }
  // The page's own console errors from loading a bad model are expected; count only the good pages' errors.
  const goodErrors = consoleErrors.filter((e) => !/corrupt|future/.test(e));

  // --- The benchmark page measures the chosen models, the first of a task being the baseline of the others
  const breakouts = index.models.filter((m) => m.task === "breakout" && m.source === "shipped");
  const chosen = `breakout=${breakouts.map((m) => m.id).join(",")}&flappy=${flappy.id}`;
  await page.goto(`${base}/bench?auto=1&calls=2&tokens=1000&long=1000&warmup=0.2&recompute=2&${chosen}`);
  const benched = await until(page, () => window.__bench, null, 240_000, "the benchmark page");
  const bench = benched ? await page.evaluate(() => window.__bench) : { error: "timed out" };
  const rows = (bench.markdown ?? "").split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| model"));
  const of = (m) => rows.filter((l) => l.startsWith(`| ${m.label} |`));
  check(!bench.error && [...breakouts, flappy].every((m) => of(m).length >= 2) &&
    rows.every((l) => /\d/.test(l.split("|")[3])), `the bench page fills its table (${rows.length} rows${bench.error ? `; ${bench.error}` : ""})`);
  if (breakouts.length > 1) {
    const speedup = of(breakouts[1]).find((l) => l.includes(`denoiser call (batch 1): speed-up vs ${breakouts[0].label}`));
    check(Boolean(speedup) && Number(speedup.split("|")[3].trim().split(" ")[0]) > 0,
      `the bench page rates ${breakouts[1].name} against ${breakouts[0].name}: ${speedup?.split("|")[3].trim()}`);
  }
  await page.goto(`${base}/bench?auto=1&calls=1&breakout=no-such-model`);
  await until(page, () => window.__bench, null, 20_000, "the bench page's error");
  const wrong = await page.evaluate(() => window.__bench?.error ?? "");
  check(wrong.includes("no-such-model"), `an unknown model id on the bench page is an error: ${wrong}`);

  // --- The server refuses path traversal
  for (const path of ["/../pyproject.toml", "/%2e%2e/%2e%2e/etc/passwd", "/ort/../../worldmodels/play.py"]) {
    const res = await rawGet(path);
    check(res.status === 403 || res.status === 404, `path traversal ${path} refused (HTTP ${res.status})`);
  }
  check(goodErrors.length === 0, `no console errors on the game pages${goodErrors.length ? `: ${goodErrors.join(" | ")}` : ""}`);
  check(foreign.length === 0, `no request left 127.0.0.1${foreign.length ? `: ${foreign.join(", ")}` : ""}`);
} catch (err) {
  check(false, `browser test crashed: ${err?.stack ?? err}`);
  await page.screenshot({ path: join(args.artifacts, "crash.png") }).catch(() => {});
} finally {
  await browser.close();
}
console.log(failures.length ? `${failures.length} browser check(s) failed` : "all browser checks passed");
process.exit(failures.length ? 1 : 0);
