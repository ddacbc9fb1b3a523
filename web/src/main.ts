// The app shell: lists the models the server found (/models/index.json), switches between the two games, loads a
// model (manifest validation, ONNX download with progress) and mounts the game; any failure is shown as a message.
// URL parameters: ?game=breakout|flappy, ?model=<id>. Browser tests: web/e2e/browser.mjs.
import { mountBreakout } from "./breakout/game";
import { mountFlappy } from "./flappy/game";
import { loadModel, listModels } from "./shell/loader";
import { chooseRuntime, configureOrt } from "./shell/ort";
import type { BreakoutManifest, FlappyManifest } from "./shell/manifest";
import type { Game, GameHost, ModelEntry, RuntimeChoice } from "./shell/types";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const errorBox = $<HTMLDivElement>("error");
const statusLine = $<HTMLParagraphElement>("status");
const select = $<HTMLSelectElement>("model-select");
const gameRoot = $<HTMLElement>("game");

let models: ModelEntry[] = [];
let current: Game | null = null;
let runtime: RuntimeChoice;
let game: "breakout" | "flappy" = "breakout";
let loadToken = 0;

function showError(text: string): void {
  errorBox.textContent = text;
  errorBox.hidden = false;
  (window as any).__playerError = text;
}

function clearError(): void {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

function progress(loaded: number, total: number, what: string): void {
  const box = $<HTMLDivElement>("loading");
  box.hidden = loaded >= total && total > 0;
  $<HTMLProgressElement>("load-progress").value = total > 0 ? loaded / total : 0;
  $<HTMLSpanElement>("load-text").textContent =
    `loading ${what}: ${(loaded / 1e6).toFixed(1)}${total > 0 ? ` / ${(total / 1e6).toFixed(1)}` : ""} MB`;
}

function fillSelect(): ModelEntry[] {
  const mine = models.filter((m) => m.task === game);
  select.replaceChildren(...mine.map((m) => new Option(m.label, m.id)));
  for (const b of document.querySelectorAll<HTMLButtonElement>("#games button")) {
    b.setAttribute("aria-pressed", String(b.dataset.game === game));
  }
  return mine;
}

async function open(id: string | undefined): Promise<void> {
  const token = ++loadToken;
  current?.dispose();
  current = null;
  gameRoot.replaceChildren();
  clearError();
  const entry = models.find((m) => m.id === id);
  if (!entry) {
    showError(`No ${game} model to play. Export one (python -m worldmodels.export <run>/checkpoints/last.ckpt) ` +
      `and restart python -m worldmodels.play, or pass --models DIR.`);
    return;
  }
  const url = new URL(location.href);
  url.searchParams.set("game", game);
  url.searchParams.set("model", entry.id);
  history.replaceState(null, "", url);
  try {
    const model = await loadModel(entry, progress);
    if (token !== loadToken) return;
    const host: GameHost = {
      root: gameRoot,
      runtime,
      status: (text) => { statusLine.textContent = text; },
      error: showError,
    };
    current = entry.task === "breakout"
      ? await mountBreakout(host, model as any as import("./shell/types").LoadedModel<BreakoutManifest>)
      : await mountFlappy(host, model as any as import("./shell/types").LoadedModel<FlappyManifest>);
    if (token !== loadToken) current.dispose();
    (window as any).__playerReady = entry.id;
  } catch (err) {
    if (token !== loadToken) return;
    gameRoot.replaceChildren();
    showError(`Could not load ${entry.label}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    $<HTMLDivElement>("loading").hidden = true;
  }
}

async function start(): Promise<void> {
  runtime = await chooseRuntime();
  configureOrt(runtime);
  $<HTMLSpanElement>("runtime").textContent =
    `onnxruntime-web: ${runtime.backend}${runtime.backend === "wasm" ? `, ${runtime.threads} thread(s)` : ""}` +
    (crossOriginIsolated ? "" : " (page not cross-origin isolated: 1 thread)");
  try {
    models = await listModels();
  } catch (err) {
    showError(`Could not list models: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const params = new URLSearchParams(location.search);
  const wanted = models.find((m) => m.id === params.get("model"));
  game = (wanted?.task ?? params.get("game") ?? models[0]?.task ?? "breakout") === "flappy" ? "flappy" : "breakout";
  const mine = fillSelect();
  select.value = wanted?.id ?? mine[0]?.id ?? "";
  select.addEventListener("change", () => open(select.value));
  for (const b of document.querySelectorAll<HTMLButtonElement>("#games button")) {
    b.addEventListener("click", () => {
      game = b.dataset.game === "flappy" ? "flappy" : "breakout";
      const list = fillSelect();
      open(list[0]?.id);
    });
  }
  await open(select.value || undefined);
}

start();
