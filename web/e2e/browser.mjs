// Browser tests in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) against a running
// `python -m worldmodels.play` server. tests/web/test_web.py starts the server and runs:
//
//   node e2e/browser.mjs --url http://127.0.0.1:PORT --artifacts DIR --sprite-reference FILE [--pixels-reference FILE2]
//
// It needs the shipped (trained) models for Flappy's done token and the shipped agent policy
// (models/flappy_agent/policy.json), plus the extra models the test serves: "corrupt" (an ONNX file of garbage),
// "future" (an unknown manifest format version), and the Flappy policies "hover" (flaps while the bird is in the
// lower half) and "wide" (a policy.json the player refuses). FILE holds the real flappy-bird-gymnasium's own rendered
// frames with their states (tests/web/web_fixtures.py write_flappy_sprites). The dreamed pixel game is checked on the
// first gym_pixels model listed (the test serves a real `task=gym_pixels debug=smoke` export); FILE2 holds its start
// strips as Python decodes them (web_fixtures.py write_gym_pixels: start_frames.json).
// Exit code 0 = every check passed; each check prints one line; screenshots go to DIR, and the games the agent played
// to DIR/flappy-agent-<shipped|hover>.json (tests/web/test_web.py replays them in Python).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: { url: { type: "string" }, artifacts: { type: "string", default: "test-artifacts" },
    "sprite-reference": { type: "string" }, "pixels-reference": { type: "string" } },
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

/** RGBA bytes of a canvas's pixel. */
const pixelAt = (page, id, x, y) => page.evaluate(([id, x, y]) =>
  Array.from(document.getElementById(id).getContext("2d").getImageData(x, y, 1, 1).data), [id, x, y]);
const near = (rgb, want, tolerance = 6) => want.every((v, i) => Math.abs(rgb[i] - v) <= tolerance);
const BACKGROUND_DAY = [78, 192, 202]; // background-day.png's sky, as the env renders it
const SCHEMATIC_SKY = [112, 197, 206]; // src/flappy/render.ts

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
const pixels = pick((m) => m.task === "gym_pixels");
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
  // Nothing moves before the player serves: not the ball, not the dream (in either mode).
  await page.waitForTimeout(1500);
  const idle = await page.evaluate(() => ({ tick: window.__breakout.tick(), waiting: window.__breakout.waiting(),
    dreamFrames: window.__breakout.dreamFrames(), prompt: document.getElementById("breakout-serve").hidden ? "" :
      document.getElementById("breakout-serve").textContent, lives: document.getElementById("breakout-lives").textContent }));
  check(idle.tick === 0 && idle.waiting && idle.lives === "3" && /press a key to serve/i.test(idle.prompt) &&
    idle.dreamFrames === 0, `before a key the game waits to serve (${JSON.stringify(idle)})`);
  await page.click("#dream-autonomous");
  await page.waitForTimeout(1000);
  const dreaming = await page.evaluate(() => [window.__breakout.tick(), window.__breakout.dreamFrames()]);
  check(dreaming.join() === "0,0", `the autonomous dream waits for the serve too (ticks, dream frames: ${dreaming})`);
  await page.click("#dream-autonomous");
  // Left first (the game's random serve may leave the paddle at the right edge), then Right, then Left again. The
  // first key serves.
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
  // With the paddle left alone the ball is lost; then the game waits for a key again, and Space serves.
  // (On a slow machine the keys above may already have served again after a lost ball, even to a game over and
  // a new game with 3 lives: either way the game must stop and wait, so wait for that, not for a lives count.)
  const lost = await until(page, () => window.__breakout.waiting() && window.__breakout.tick() > 0, null, 30_000,
    "a lost ball");
  const t0 = await page.evaluate(() => window.__breakout.tick());
  await page.waitForTimeout(600);
  const after = await page.evaluate(() => ({ tick: window.__breakout.tick(), waiting: window.__breakout.waiting(),
    prompt: !document.getElementById("breakout-serve").hidden, status: document.getElementById("status").textContent }));
  check(lost && after.waiting && after.tick === t0 && after.prompt && /press a key to serve/i.test(after.status),
    `after a lost ball the game waits for a key (${JSON.stringify(after)})`);
  await page.keyboard.press("Space");
  check(await until(page, (t) => window.__breakout.tick() > t + 5, t0, 10_000, "ticks after Space"),
    "Space serves again");
  check(await page.getByRole("checkbox", { name: /agent/i }).count() === 0, "the Breakout page has no agent toggle");

  // --- The dreamed pixel game (gym_pixels): a real start strip on screen at once, then the keys drive the dream alone
  check(Boolean(pixels), `a gym_pixels model is listed (${pixels?.label})`);
  {
    const pm = await (await fetch(`${base}${pixels.manifest}`)).json();
    const gameId = pm.game.env_id ?? pm.game.dataset_id;
    const strips = args["pixels-reference"] ? JSON.parse(readFileSync(args["pixels-reference"], "utf8")) : null;
    const frameBytes = pm.frame.height * pm.frame.width * 3;
    const pythonFrame = (strip, k) => Array.from(Buffer.from(strips.frames_u8[strip], "base64").subarray(k * frameBytes, (k + 1) * frameBytes));
    // The graph is held back (until these checks are done): the canvas shows the first strip's newest real frame.
    const heldPixels = (route) => setTimeout(() => route.continue().catch(() => {}), 3000);
    await page.route("**/*.onnx", heldPixels);
    await page.goto(`${base}/?model=${pixels.id}`);
    const shownEarly = await until(page, () => window.__pixels && window.__pixels.frame().length > 0, null, 2_500, "the start strip");
    const early = await page.evaluate(() => ({ frames: window.__pixels.frames(), frame: window.__pixels.frame(),
      start: document.getElementById("pixels-start").textContent }));
    const canvasSize = await page.evaluate(() => document.getElementById("pixels-canvas").width);
    const scale = canvasSize / pm.frame.width;
    const probes = [[3, 5], [pm.frame.width >> 1, pm.frame.height >> 1], [pm.frame.width - 2, pm.frame.height - 3]];
    const painted = [];
    for (const [x, y] of probes) {
      const rgb = (await pixelAt(page, "pixels-canvas", x * scale + (scale >> 1), y * scale + (scale >> 1))).slice(0, 3);
      const want = early.frame.slice((y * pm.frame.width + x) * 3, (y * pm.frame.width + x) * 3 + 3);
      painted.push(rgb.every((v, i) => v === want[i]));
    }
    check(shownEarly && early.frames === 0 && /strip 1 of/.test(early.start) && painted.every(Boolean),
      `before the model has loaded the pixel game shows its first real start frame, scaled ${scale}x (${early.start}; probes ${painted})`);
    if (strips) {
      const decoded = await page.evaluate(() => Promise.all([0, 1].map((i) => window.__pixels.startFrames(i))));
      const same = decoded.every((frames, i) => frames.length === 4 && frames.every((f, k) => {
        const want = pythonFrame(i, k);
        return f.length === want.length && f.every((v, j) => v === want[j]);
      }));
      check(same && early.frame.every((v, j) => v === pythonFrame(0, 3)[j]),
        "the start strips decode to Python's frames (png_frames), byte for byte");
    }
    await page.unroute("**/*.onnx", heldPixels);
    const dreaming = await until(page, (id) => window.__playerReady === id && window.__pixels.frames() >= 5, pixels.id,
      60_000, "dreamed frames");
    const badge = await page.textContent("#pixels-badge");
    const title = await page.textContent("#pixels-title");
    check(dreaming && badge === "DREAM" && title.includes(gameId), `the pixel game dreams, labelled "${badge}: ${title}"`);
    // Each action's keys, held, send it (and the page says so); the frame counter keeps climbing.
    const chords = await page.evaluate(() => window.__pixels.keys());
    const playwrightKey = (k) => ({ " ": "Space" })[k] ?? (k.length === 1 ? `Digit${k}` : k);
    const sent = [];
    const f0 = await page.evaluate(() => window.__pixels.frames());
    for (const [action, keys] of chords.entries()) {
      if (!keys.length) continue;
      for (const k of keys) await page.keyboard.down(playwrightKey(k));
      const seen = await until(page, (a) => window.__pixels.action() === a, action, 5_000, `action ${action}`);
      const shown = await page.textContent("#pixels-action");
      for (const k of [...keys].reverse()) await page.keyboard.up(playwrightKey(k));
      sent.push(seen && shown === pm.frame.actions[action]);
    }
    const idle = await until(page, (a) => window.__pixels.action() === a, chords.findIndex((k) => k.length === 0) === -1 ? 0
      : chords.findIndex((k) => k.length === 0), 5_000, "the idle action");
    const f1 = await page.evaluate(() => window.__pixels.frames());
    const fps = Number(await page.textContent("#pixels-fps"));
    const legend = await page.textContent("#pixels-keys");
    check(sent.length > 0 && sent.every(Boolean) && idle, `each action's keys send it (${pm.frame.actions.join(", ")}: ${sent}); legend "${legend}"`);
    check(f1 > f0 && fps > 0, `dreamed frames advance while playing (${f0} -> ${f1}, ${fps} frames/s)`);
    await page.screenshot({ path: join(args.artifacts, "pixels.png") });
    // R and the button restart from the next start strip; the dream goes on from there.
    const restartWith = async (how) => {
      const before = await page.evaluate(() => ({ restarts: window.__pixels.restarts(), start: window.__pixels.startIndex() }));
      if (how === "R") await page.keyboard.press("r");
      else await page.click("#pixels-restart");
      const again = await until(page, (b) => window.__pixels.restarts() > b.restarts && window.__pixels.startIndex() !== b.start &&
        window.__pixels.frames() >= 2, before, 30_000, `a restart with ${how}`);
      const after = await page.evaluate(() => ({ start: window.__pixels.startIndex(), text: document.getElementById("pixels-start").textContent }));
      check(again && after.start === (before.start + 1) % pm.start_frames.length,
        `${how} restarts from the next start strip (${before.start} -> ${after.start}, "${after.text}")`);
    };
    await restartWith("R");
    await restartWith("the button");
    await page.goto(`${base}/?game=pixels`);
    const byGame = await until(page, () => window.__pixels && window.__pixels.frames() > 0, null, 60_000, "?game=pixels");
    check(byGame && await page.evaluate(() => new URL(location.href).searchParams.get("game")) === "pixels",
      "?game=pixels opens the dreamed pixel game");
  }

  // --- Flappy: frames advance, Space changes the trajectory, the model's done token ends the game, R restarts
  check(Boolean(flappy), `a shipped Flappy model is listed (${flappy?.label})`);
  // The graphs are held back (up to 4 s, until these checks are done): meanwhile the canvas shows the real start
  // frames, with the game's sprites, and the page says what is loading.
  const held = (route) => setTimeout(() => route.continue().catch(() => {}), 4000);
  await page.route("**/*.onnx", held);
  const opened = Date.now();
  await page.goto(`${base}/?model=${flappy.id}`);
  const early = await until(page, () => window.__flappy && /^start context frame/.test(window.__flappy.shown()) &&
    window.__flappy.timings().firstDraw, null, 3_500, "the start frames");
  const first = await page.evaluate(() => ({ shown: window.__flappy?.shown(), view: window.__flappy?.view(),
    frames: window.__flappy?.frames(), loading: document.getElementById("loading").hidden ? "" :
      document.getElementById("load-text").textContent }));
  const sky = await pixelAt(page, "flappy-canvas", 5, 5);
  check(early && Date.now() - opened < 3_900 && first.frames === 0 && first.view === "sprites" && near(sky, BACKGROUND_DAY),
    `before the model has loaded the canvas shows the real start frames with the game's sprites (${JSON.stringify(first)}, sky ${sky})`);
  check(/file 1 of 2/.test(first.loading) && /MB/.test(first.loading), `the page says what is loading: "${first.loading}"`);
  await page.screenshot({ path: join(args.artifacts, "flappy-start.png") });
  await page.unroute("**/*.onnx", held);
  check(await until(page, (id) => window.__playerReady === id && window.__flappy && window.__flappy.frames() > 5,
    flappy.id, 60_000, "Flappy frames"), "Flappy loads and frames advance");
  const t = await page.evaluate(() => window.__flappy.timings());
  console.log(`     (Flappy: first frame drawn ${(t.firstDraw - t.mounted).toFixed(0)} ms after mounting; model frames ` +
    `after ${(t.started - t.mounted).toFixed(0)} ms, its graphs held back until the checks above)`);
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
  // "Schematic view" draws the flat renderer, and back.
  const redrawn = (sky) => until(page, (sky) => {
    const d = document.getElementById("flappy-canvas").getContext("2d").getImageData(5, 5, 1, 1).data;
    return sky.every((v, i) => Math.abs(d[i] - v) <= 6);
  }, sky, 5_000, `the sky ${sky}`);
  await page.click("#flappy-schematic");
  await redrawn(SCHEMATIC_SKY);
  const flat = [await page.evaluate(() => window.__flappy.view()), await pixelAt(page, "flappy-canvas", 5, 5)];
  await page.click("#flappy-schematic");
  await redrawn(BACKGROUND_DAY);
  const back = [await page.evaluate(() => window.__flappy.view()), await pixelAt(page, "flappy-canvas", 5, 5)];
  check(flat[0] === "schematic" && near(flat[1], SCHEMATIC_SKY, 1) && back[0] === "sprites" && near(back[1], BACKGROUND_DAY),
    `the schematic view toggles (${flat[0]} ${flat[1]}, then ${back[0]} ${back[1]})`);
  // The sprites sit where the game draws them: the env's own frames against the player's drawing of the same state.
  const reference = JSON.parse(readFileSync(args["sprite-reference"], "utf8"));
  const misdrawn = async (frame, birdShift) => {
    const state = { ...frame.state, birdY: frame.state.birdY + birdShift };
    const rgba = await page.evaluate(([s, p]) => window.__flappy.spriteFrame(s, p), [state, frame.pose]);
    const rgb = Buffer.from(frame.rgb_b64, "base64");
    let wrong = 0;
    for (let i = 0; i < reference.width * reference.height; i++) {
      if ([0, 1, 2].some((c) => Math.abs(rgba[i * 4 + c] - rgb[i * 3 + c]) > 48)) wrong++;
    }
    return wrong;
  };
  const off = [];
  for (const frame of reference.frames) off.push(await misdrawn(frame, 0));
  const control = await misdrawn(reference.frames[0], 1);
  check(reference.frames.length >= 4 && off.every((n) => n <= 4) && control > 100,
    `the sprite frames match the env's own rendering (pixels off per frame: ${off.join(", ")}; bird 1 px lower: ${control})`);

  // --- Flappy: "Agent plays". The shipped policy, then "hover" (many flaps whatever the shipped policy's skill):
  // the toggle is enabled once the policy runs in the worker; while it is on the agent chooses every frame's action,
  // the keys are ignored, and the action the decoder holds is the agent's; "wide" is refused in one line.
  {
    const policies = index.policies ?? [];
    const shippedPolicy = policies.find((p) => p.task === "flappy" && p.source === "shipped");
    const hover = policies.find((p) => p.name === "hover");
    const wide = policies.find((p) => p.name === "wide");
    check(Boolean(shippedPolicy && hover && wide), `the agent policies are listed (${policies.map((p) => p.label).join("; ")})`);
    const agentState = () => page.evaluate(() => window.__flappy.agent());
    const openFlappy = async (policy) => {
      await page.goto(`${base}/?model=${flappy.id}&policy=${policy.id}`);
      return until(page, (id) => window.__playerReady === id && window.__flappy && window.__flappy.frames() > 2,
        flappy.id, 60_000, "Flappy frames");
    };
    const playAgent = async (policy, name, minFrames, minFlaps) => {
      await openFlappy(policy);
      const toggle = page.getByRole("checkbox", { name: /agent/i });
      const ready = await until(page, () => window.__flappy.agent().ready, null, 30_000, `the ${name} policy`);
      const before = await agentState();
      check(ready && await toggle.isEnabled() && before.frames === 0 && before.policy === policy.label &&
        (await page.textContent("#flappy-agent-note")).includes(policy.label),
      `with the ${name} policy "Agent plays" is enabled (${JSON.stringify(before)})`);
      await toggle.check();
      await page.keyboard.press("Space"); // ignored: the agent plays
      const played = await until(page, ([frames, flaps]) => {
        const a = window.__flappy.agent();
        return a.frames >= frames && a.flaps >= flaps;
      }, [minFrames, minFlaps], 45_000, `${minFrames} agent frames with ${minFlaps}+ flaps`);
      const a = await agentState();
      const readout = await page.textContent("#flappy-agent-action");
      const keyFlaps = await page.evaluate(() => window.__flappy.flaps().length);
      check(played && a.on && a.mismatches === 0 && a.obsMismatches === 0, `the ${name} agent's actions reach the ` +
        `model: ${a.frames} frames, ${a.flaps} flaps, every one the action the decoder was fed (mismatches ` +
        `${a.mismatches}, observation mismatches ${a.obsMismatches}; restarts ${await page.evaluate(() => window.__flappy.restarts())})`);
      check(a.ignoredKeys >= 1 && keyFlaps === 0 && /^agent: (flap|noop)$/.test(readout),
        `while the ${name} agent plays the keys are ignored (${a.ignoredKeys} ignored, ${keyFlaps} sent) and it shows "${readout}"`);
      const games = await page.evaluate(() => window.__flappy.agentGames());
      writeFileSync(join(args.artifacts, `flappy-agent-${name}.json`), JSON.stringify({ policy: policy.label, games }));
      return games;
    };
    await playAgent(shippedPolicy, "shipped", 60, 0);
    // Off again: the agent stops choosing, the keys play.
    await page.getByRole("checkbox", { name: /agent/i }).uncheck();
    await page.waitForTimeout(300);
    const offAt = (await agentState()).frames;
    const r = await page.evaluate(() => window.__flappy.restarts());
    await page.keyboard.press("r");
    await until(page, (n) => window.__flappy.restarts() > n && window.__flappy.frames() > 2, r, 20_000, "a restart");
    await page.keyboard.press("Space");
    await until(page, () => window.__flappy.flaps().length > 0, null, 5_000, "a flap from the keys");
    const off = { ...(await agentState()), keyFlaps: await page.evaluate(() => window.__flappy.flaps().length),
      readout: await page.textContent("#flappy-agent-action") };
    check(!off.on && off.frames === offAt && off.keyFlaps > 0 && off.readout === "agent: off",
      `turned off, the agent stops and the keys flap again (${JSON.stringify(off)})`);
    // The hover policy flaps whenever the bird is low: each flap must lift the dreamed bird within 3 frames. Flaps
    // on a game's first or last two frames cannot be judged, and its dreams often end after about 30 frames with one
    // flap each: 3 judged flaps are enough.
    const games = await playAgent(hover, "hover", 90, 6);
    await page.screenshot({ path: join(args.artifacts, "flappy-agent.png") });
    let flapsSeen = 0, lifted = 0;
    for (const g of games) {
      for (let k = 1; k + 2 < g.frames.length; k++) {
        if (g.frames[k].agent?.action !== 1 || g.frames[k + 2].agent === null) continue;
        flapsSeen++;
        const y0 = g.frames[k - 1].birdY;
        if (Math.min(...g.frames.slice(k, k + 3).map((f) => f.birdY)) < y0 - 2) lifted++;
      }
    }
    check(flapsSeen >= 3 && lifted >= 0.8 * flapsSeen, `the hover agent's flaps lift the dreamed bird (${lifted} of ${flapsSeen})`);
    await page.getByRole("checkbox", { name: /agent/i }).uncheck();
    // A policy.json the player cannot use: the toggle stays disabled, the reason is shown, the keys play.
    await openFlappy(wide);
    await until(page, () => /needs/.test(document.getElementById("flappy-agent-note").textContent), null, 20_000, "the refusal");
    const refused = await page.evaluate(() => ({ disabled: document.getElementById("flappy-agent").disabled,
      note: document.getElementById("flappy-agent-note").textContent, ready: window.__flappy.agent().ready,
      frames: window.__flappy.frames(), error: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent }));
    check(refused.disabled && !refused.ready && /shape \[1,8\], the flappy agent needs \[1,12\]/.test(refused.note) &&
      refused.frames > 2 && refused.error === "", `a policy the player refuses leaves the toggle disabled: ${JSON.stringify(refused)}`);
  }

  // Without the sprites (404) the page draws schematically and says why in one line.
  const bare = await context.newPage();
  await bare.route("**/sprites/**", (route) => route.fulfill({ status: 404, body: "404 not found" }));
  await bare.goto(`${base}/?model=${flappy.id}`);
  const noted = await until(bare, () => document.getElementById("flappy-sprites-note")?.hidden === false, null, 20_000,
    "the note");
  const fallback = await bare.evaluate(() => ({ view: window.__flappy?.view(), note: document.getElementById("flappy-sprites-note").textContent,
    locked: document.getElementById("flappy-schematic").checked && document.getElementById("flappy-schematic").disabled }));
  check(noted && fallback.view === "schematic" && fallback.locked && /404/.test(fallback.note) &&
    near(await pixelAt(bare, "flappy-canvas", 5, 5), SCHEMATIC_SKY, 1), `without sprites: ${JSON.stringify(fallback)}`);
  await bare.close();

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
