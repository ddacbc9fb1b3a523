// The benchmark page (/bench): runs src/bench-worker.ts once per configuration (WASM 1 thread, WASM 2 threads when
// the page is cross-origin isolated, WebGPU when the browser has an adapter) for the chosen models and shows one
// table, which "Copy table" puts on the clipboard as Markdown. Several models of a task can be chosen: the first is
// the baseline, and every other one gets ratio rows against it measured in the same run (speed-up for ms, rate
// ratio for frames/s and tokens/s). ?auto=1&calls=N&tokens=N&long=N&recompute=N runs at load (&warmup=S: seconds of
// untimed running before each measurement, default 5: the browser optimises WASM only after a while),
// ?breakout=ID,ID&flappy=ID
// picks the models (the browser tests use it; the result is also left in window.__bench).
import type { BenchRequest, BenchRow } from "./bench-worker";
import { chooseRuntime, WASM_PATHS } from "./shell/ort";
import { listModels, loadModel } from "./shell/loader";
import type { LoadedModel, ModelEntry, RuntimeChoice } from "./shell/types";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string) => { $("bench-status").textContent = text; };

interface Column { label: string; runtime: RuntimeChoice }

async function columns(): Promise<Column[]> {
  const cols: Column[] = [{ label: "WASM 1 thread", runtime: { backend: "wasm", threads: 1, wasmPaths: WASM_PATHS } }];
  if (crossOriginIsolated) cols.push({ label: "WASM 2 threads", runtime: { backend: "wasm", threads: 2, wasmPaths: WASM_PATHS } });
  const best = await chooseRuntime();
  if (best.backend === "webgpu") cols.push({ label: "WebGPU", runtime: { ...best, threads: 1 } });
  return cols;
}

function runInWorker(req: BenchRequest): Promise<BenchRow[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker("/bench-worker.js", { type: "module" });
    worker.onmessage = (e) => {
      const msg = e.data;
      if (msg.type === "progress") status(`${req.runtime.backend} x${req.runtime.threads}: ${msg.text}`);
      else {
        worker.terminate();
        if (msg.type === "done") resolve(msg.rows);
        else reject(new Error(msg.message));
      }
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(e.message || "benchmark worker failed to start"));
    };
    worker.postMessage(req);
  });
}

/** A result as the table shows it: ms to 0.1, ratios under 10 to 0.01 (a 10% bound must be readable) and larger
 * ones to 0.1, rates to whole numbers; "-" when not measured. */
function cell(r: BenchRow | undefined): string {
  if (!r) return "-";
  const digits = r.unit === "x" ? (r.value < 10 ? 2 : 1) : r.unit === "ms" ? 1 : 0;
  return `${r.value.toFixed(digits)} ${r.unit}`;
}

type Table = Map<string, Map<string, BenchRow>>; // "model\0measure" -> column label -> result
const SEP = "\u0000";

/** Ratio rows of each task's later models against its first (the baseline), column by column. */
function ratios(models: LoadedModel[], cols: Column[], table: Table): Table {
  const out: Table = new Map();
  for (const task of ["breakout", "flappy"]) {
    const mine = models.filter((m) => m.manifest.task === task);
    const base = mine[0]?.entry.label;
    for (const other of mine.slice(1)) {
      for (const [key, byCol] of table) {
        const [label, measure] = key.split(SEP);
        const baseRow = table.get(`${base}${SEP}${measure}`);
        if (label !== other.entry.label || !baseRow) continue;
        const row = new Map<string, BenchRow>();
        for (const c of cols) {
          const [r, b] = [byCol.get(c.label), baseRow.get(c.label)];
          if (!r || !b || r.unit === "x") continue;
          row.set(c.label, { ...r, value: r.unit === "ms" ? b.value / r.value : r.value / b.value, unit: "x" });
        }
        if (row.size) out.set(`${label}${SEP}${measure}${r0(byCol)} vs ${base}`, row);
      }
    }
  }
  return out;
}
const r0 = (byCol: Map<string, BenchRow>) => ([...byCol.values()][0]?.unit === "ms" ? ": speed-up" : ": ratio");

function markdown(cols: Column[], table: Table): string {
  const head = `| model | measure | ${cols.map((c) => c.label).join(" | ")} |`;
  const rule = `|---|---|${cols.map(() => "---:").join("|")}|`;
  const lines = [...table].map(([key, byCol]) => {
    const [label, measure] = key.split(SEP);
    const cells = cols.map((c) => cell(byCol.get(c.label)));
    return `| ${label} | ${measure} | ${cells.join(" | ")} |`;
  });
  return [`${navigator.userAgent.match(/(Chrome|Chromium|Firefox)\/[\d.]+/)?.[0] ?? "browser"}, ` +
    `${navigator.hardwareConcurrency} cores, cross-origin isolated: ${crossOriginIsolated}`, "", head, rule, ...lines].join("\n");
}

function render(cols: Column[], table: Table): void {
  const el = $<HTMLTableElement>("bench-table");
  const head = document.createElement("tr");
  for (const h of ["model", "measure", ...cols.map((c) => c.label)]) head.append(Object.assign(document.createElement("th"), { textContent: h }));
  const rows = [...table].map(([key, byCol]) => {
    const tr = document.createElement("tr");
    const [label, measure] = key.split(SEP);
    tr.append(Object.assign(document.createElement("td"), { textContent: label }),
      Object.assign(document.createElement("td"), { textContent: measure }));
    for (const c of cols) tr.append(Object.assign(document.createElement("td"), { textContent: cell(byCol.get(c.label)) }));
    return tr;
  });
  el.replaceChildren(head, ...rows);
}

async function run(models: LoadedModel[], params: URLSearchParams): Promise<string> {
  const cols = await columns();
  const table: Table = new Map();
  const settings = {
    calls: Number($<HTMLInputElement>("bench-calls").value),
    tokens: Number($<HTMLInputElement>("bench-tokens").value),
    longTokens: Number($<HTMLInputElement>("bench-long").value),
    warmupSeconds: Number(params.get("warmup") ?? 5),
    recomputeTokens: Number($<HTMLInputElement>("bench-recompute").value),
  };
  for (const model of models) {
    const { manifest } = model;
    if (manifest.task === "gym_pixels") continue; // the page lists Breakout and Flappy models only
    for (const col of cols) {
      status(`${model.entry.label}: ${col.label}...`);
      const rows = await runInWorker({
        runtime: col.runtime, task: manifest.task, manifest,
        onnx: model.onnx, prefill: model.prefill, frame: model.frame, ...settings,
      });
      for (const r of rows) {
        const key = `${model.entry.label}${SEP}${r.metric.replace(/, \d+ tokens/, "").replace(/ \(\d+ slides\)/, "")}`;
        if (!table.has(key)) table.set(key, new Map());
        table.get(key)!.set(col.label, r);
      }
      render(cols, table);
    }
  }
  for (const [key, row] of ratios(models, cols, table)) table.set(key, row);
  render(cols, table);
  const md = markdown(cols, table);
  status(`done: ${models.map((m) => m.entry.label).join(", ")}`);
  return md;
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  for (const [param, id] of [["calls", "bench-calls"], ["tokens", "bench-tokens"], ["long", "bench-long"],
    ["recompute", "bench-recompute"]]) {
    if (params.has(param)) $<HTMLInputElement>(id).value = params.get(param)!;
  }
  let entries: ModelEntry[] = [];
  const order: Record<"breakout" | "flappy", string[]> = { breakout: [], flappy: [] }; // ?breakout=a,b: a is the baseline
  try {
    entries = await listModels();
  } catch (err) {
    $("error").hidden = false;
    $("error").textContent = `Could not list models: ${err}`;
    return;
  }
  for (const task of ["breakout", "flappy"] as const) {
    const select = $<HTMLSelectElement>(`bench-${task}`);
    const mine = entries.filter((e) => e.task === task);
    select.replaceChildren(...mine.map((e) => new Option(e.label, e.id)));
    const wanted = params.get(task)?.split(",").filter(Boolean);
    if (wanted) {
      const unknown = wanted.filter((id) => !mine.some((e) => e.id === id));
      if (unknown.length) {
        $("error").hidden = false;
        $("error").textContent = `No ${task} model with id ${unknown.join(", ")} (known: ${mine.map((e) => e.id).join(", ") || "none"})`;
        (window as any).__bench = { error: $("error").textContent };
        return;
      }
      for (const o of select.options) o.selected = wanted.includes(o.value);
      order[task] = wanted;
    } else if (select.options.length) select.options[0].selected = true;
  }
  const start = async () => {
    $<HTMLButtonElement>("bench-run").disabled = true;
    $("error").hidden = true;
    try {
      const chosen = (["breakout", "flappy"] as const).flatMap((t) => {
        const picked = [...$<HTMLSelectElement>(`bench-${t}`).selectedOptions].map((o) => o.value);
        const ids = order[t].filter((id) => picked.includes(id)).concat(picked.filter((id) => !order[t].includes(id)));
        return ids.map((id) => entries.find((e) => e.id === id)).filter((e): e is ModelEntry => Boolean(e));
      });
      const models = [];
      for (const e of chosen) models.push(await loadModel(e, (l, t, what) => status(`loading ${what}: ${(l / 1e6).toFixed(1)} MB`)));
      const md = await run(models, params);
      const area = $<HTMLTextAreaElement>("bench-markdown");
      area.value = md;
      area.hidden = false;
      $<HTMLButtonElement>("bench-copy").disabled = false;
      (window as any).__bench = { markdown: md };
    } catch (err) {
      $("error").hidden = false;
      $("error").textContent = `Benchmark failed: ${err instanceof Error ? err.message : err}`;
      (window as any).__bench = { error: String(err) };
    } finally {
      $<HTMLButtonElement>("bench-run").disabled = false;
    }
  };
  $("bench-run").addEventListener("click", start);
  $("bench-copy").addEventListener("click", async () => {
    const md = $<HTMLTextAreaElement>("bench-markdown").value;
    try {
      await navigator.clipboard.writeText(md);
      status("table copied as Markdown");
    } catch {
      $<HTMLTextAreaElement>("bench-markdown").select();
      status("clipboard not available: the table is selected in the box below (Ctrl-C)");
    }
  });
  if (params.get("auto") === "1") await start();
}

main();
