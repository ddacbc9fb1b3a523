// The app shell: lists the models the server found (/models/index.json), switches between the games (Breakout, Flappy
// and the dreamed pixel game of gym_pixels models), loads a model's manifest (validated), mounts the game on it at
// once and downloads the graphs the game plays meanwhile (with progress); any failure is shown as a message.
// The agent policies the server lists (policy.json) go to the game of their task, which offers "Agent plays" with the
// first one (or ?policy=<id>).
// URL parameters: ?game=breakout|flappy|pixels, ?model=<id>, ?policy=<id>. Browser tests: web/e2e/browser.mjs.
import { mountBreakout } from "./breakout/game";
import { mountFlappy } from "./flappy/game";
import { mountPixels } from "./pixels/game";
import { listIndex, loadGraphs, loadManifest, playedGraphs } from "./shell/loader";
import type { Task } from "./shell/manifest";
import { chooseRuntime, configureOrt } from "./shell/ort";
import type { Game, GameHost, ModelEntry, PolicyEntry, RuntimeChoice } from "./shell/types";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const errorBox = $<HTMLDivElement>("error");
const statusLine = $<HTMLParagraphElement>("status");
const select = $<HTMLSelectElement>("model-select");
const gameRoot = $<HTMLElement>("game");

let models: ModelEntry[] = [];
let policies: PolicyEntry[] = []; // agent policies (policy.json), the first of a task plays its game's "Agent plays"
let current: Game | null = null;
let runtime: RuntimeChoice;
// The games by their name in ?game= and the #games buttons, and the task of the models each plays.
const GAMES = { breakout: "breakout", flappy: "flappy", pixels: "gym_pixels" } as const satisfies Record<string, Task>;
type GameName = keyof typeof GAMES;
let game: GameName = "breakout";

/** The game of a task, or of a ?game= value (a game's name or its task's); Breakout for anything else. */
function gameOf(name: string | null | undefined): GameName {
  const found = (Object.keys(GAMES) as GameName[]).find((g) => g === name || GAMES[g] === name);
  return found ?? "breakout";
}
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

/** The loading line above the game: a step, with a bar (`fraction`; none: it moves without a measure). */
function showLoading(text: string, fraction?: number): void {
  const bar = $<HTMLProgressElement>("load-progress");
  if (fraction === undefined) bar.removeAttribute("value");
  else bar.value = fraction;
  $<HTMLSpanElement>("load-text").textContent = text;
  $<HTMLDivElement>("loading").hidden = false;
}

function downloadProgress(loaded: number, total: number, what: string): void {
  showLoading(`Loading ${what}: ${(loaded / 1e6).toFixed(1)}${total > 0 ? ` / ${(total / 1e6).toFixed(1)}` : ""} MB`,
    total > 0 ? loaded / total : undefined);
}

function fillSelect(): ModelEntry[] {
  const mine = models.filter((m) => m.task === GAMES[game]);
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
  if (entry) showLoading(`Loading the manifest of ${entry.label}…`);
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
    const manifest = await loadManifest(entry);
    if (token !== loadToken) return;
    const graphs = loadGraphs(entry, playedGraphs(manifest), (loaded, total, what) => {
      if (token === loadToken) downloadProgress(loaded, total, what);
    });
    graphs.catch(() => {}); // the game awaits them and fails with their error
    const host: GameHost = {
      root: gameRoot,
      runtime,
      status: (text) => { statusLine.textContent = text; },
      progress: (text, fraction) => { if (token === loadToken) showLoading(text, fraction); },
      error: showError,
    };
    const wanted = new URLSearchParams(location.search).get("policy");
    const mine = policies.filter((p) => p.task === manifest.task);
    const policy = mine.find((p) => p.id === wanted) ?? mine[0];
    current = manifest.task === "breakout" ? await mountBreakout(host, { entry, manifest, graphs })
      : manifest.task === "gym_pixels" ? await mountPixels(host, { entry, manifest, graphs })
      : await mountFlappy(host, { entry, manifest, graphs, policy });
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
    ({ models, policies } = await listIndex());
  } catch (err) {
    showError(`Could not list models: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const params = new URLSearchParams(location.search);
  const wanted = models.find((m) => m.id === params.get("model"));
  game = gameOf(wanted?.task ?? params.get("game") ?? models[0]?.task);
  const mine = fillSelect();
  select.value = wanted?.id ?? mine[0]?.id ?? "";
  select.addEventListener("change", () => open(select.value));
  for (const b of document.querySelectorAll<HTMLButtonElement>("#games button")) {
    b.addEventListener("click", () => {
      game = gameOf(b.dataset.game);
      const list = fillSelect();
      open(list[0]?.id);
    });
  }
  await open(select.value || undefined);
}

start();
