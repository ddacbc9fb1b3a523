// Runs the browser benchmark page (/bench?auto=1) in headless Chromium and prints its Markdown table.
//   python -m worldmodels.play --port 8000 &      then:
//   node e2e/bench.mjs --url http://127.0.0.1:8000 [--calls 20] [--tokens 2000] [--long 100000] [--warmup 5]
//                      [--recompute 50]
//                      [--breakout M,M] [--flappy M]
// M: a model id from /models/index.json or a piece of its label (e.g. "(shipped, breakout_tiny)" or
// "breakout_fast/export"), matching one model of the task. The first model of a task is the baseline of the others.
// An empty list ("") skips the task.
import { chromium } from "playwright-core";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" }, calls: { type: "string", default: "20" }, tokens: { type: "string", default: "2000" },
    long: { type: "string", default: "100000" }, warmup: { type: "string", default: "5" },
    recompute: { type: "string", default: "50" }, timeout: { type: "string", default: "900" },
    breakout: { type: "string" }, flappy: { type: "string" },
  },
});
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
try {
  const page = await browser.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  const query = new URLSearchParams({ auto: "1", calls: args.calls, tokens: args.tokens, long: args.long,
    warmup: args.warmup, recompute: args.recompute });
  const { models } = await (await fetch(`${args.url.replace(/\/$/, "")}/models/index.json`)).json();
  for (const task of ["breakout", "flappy"]) {
    if (args[task] === undefined) continue;
    // A comma inside parentheses belongs to a label ("(shipped, breakout)"), not between two models.
    const ids = args[task].split(/,(?![^(]*\))/).map((want) => want.trim()).filter(Boolean).map((want) => {
      const mine = models.filter((m) => m.task === task);
      const hits = mine.filter((m) => m.id === want).concat(mine.filter((m) => m.id !== want && m.label.includes(want)));
      if (hits.length !== 1) {
        throw new Error(`--${task} ${want}: ${hits.length} models match (served: ${mine.map((m) => m.label).join("; ")})`);
      }
      return hits[0].id;
    });
    query.set(task, ids.join(","));
  }
  await page.goto(`${args.url.replace(/\/$/, "")}/bench?${query}`);
  await page.waitForFunction(() => window.__bench, null, { timeout: Number(args.timeout) * 1000, polling: 500 });
  const result = await page.evaluate(() => window.__bench);
  if (result.error) {
    console.error(`benchmark failed: ${result.error}`);
    process.exitCode = 1;
  } else {
    console.log(result.markdown);
  }
} finally {
  await browser.close();
}
