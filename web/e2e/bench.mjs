// Runs the browser benchmark page (/bench?auto=1) in headless Chromium and prints its Markdown table.
//   python -m worldmodels.play --port 8000 &      then:
//   node e2e/bench.mjs --url http://127.0.0.1:8000 [--calls 20] [--tokens 2000] [--recompute 50]
//                      [--breakout ID,ID] [--flappy ID]    (model ids from /models/index.json; "" skips a task)
import { chromium } from "playwright-core";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" }, calls: { type: "string", default: "20" }, tokens: { type: "string", default: "2000" },
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
  const query = new URLSearchParams({ auto: "1", calls: args.calls, tokens: args.tokens, recompute: args.recompute });
  for (const task of ["breakout", "flappy"]) if (args[task] !== undefined) query.set(task, args[task]);
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
