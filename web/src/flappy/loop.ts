// The Flappy frame loop runs in the module worker (src/flappy/worker.ts -> /flappy-worker.js, at a fixed frame rate);
// this side starts it, sends it flaps and restarts and shows what it posts: its start-up steps, each committed frame,
// the speed readouts, the model's done token as the game-over overlay. The first game's start context is chosen here,
// so the screen replays its real frames at once, while the graphs download and the sessions start. It keeps the
// per-game record that window.__flappy exposes to web/e2e/browser.mjs.
// "Agent plays": when the server lists a Flappy policy (model.policy), it is downloaded and sent to the worker, which
// runs it beside the decoder (agent.ts); the toggle is enabled once its session is ready. While it is on, flaps
// from the keys are ignored, each frame shows the agent's action, and a game the model ends restarts by itself
// after AGENT_RESTART_MS. This side follows every game with its own DreamTracker and checks that the worker's
// agent saw what it should have seen and that its action is the one the decoder was fed (probe.agent()).
import { type PolicyManifest, loadPolicy } from "../shell/policy";
import type { FlappyManifest } from "../shell/manifest";
import type { GameHost, OpeningModel } from "../shell/types";
import type { FlappyActions } from "./input";
import { DreamTracker } from "./agent";
import type { AgentFrame, FromWorker, ToWorker } from "./protocol";
import type { TokenSpec } from "./spec";
import { type FlappyScreen, type FlappyView, GAME_OVER } from "./view";

const WORKER_URL = "/flappy-worker.js";
const TRACE_FRAMES = 1000; // the probe's per-frame record of a game stops here (the tests need its first frames)
const AGENT_RESTART_MS = 1500; // with the agent playing, a game over restarts after this
const AGENT_GAMES = 4; // the probe keeps the record of the newest games the agent played
const ACTION_NAMES = ["noop", "flap"];

/** One frame of an agent game's record: the state tokens, the action played and the one the decoder holds, and the
 * agent's choice (null for a frame the keys played). */
export interface AgentTraceFrame {
  tokens: number[];
  birdY: number; // decoded from the tokens, px
  action: number;
  fed: number | null;
  agent: AgentFrame | null;
}

export interface AgentProbe {
  available: boolean; // the server lists a Flappy policy
  ready: boolean; // its session runs in the worker
  on: boolean;
  error: string; // why the policy could not be loaded ("" if it was)
  policy: string; // its label
  frames: number; // frames the agent chose the action of, since the page loaded
  flaps: number; // flaps among them
  mismatches: number; // agent frames whose action fed to the decoder (read back from it) is not the agent's
  obsMismatches: number; // agent frames whose observation differs from this side's own DreamTracker
  ignoredKeys: number; // flaps from the keys ignored while the agent played
  last: string | null; // "flap" or "noop"
}

export interface FlappyProbe {
  frames(): number; // frames generated since the current start
  birdY(): number; // the latest frame's decoded bird y, px
  done(): boolean;
  restarts(): number;
  contextIndex(): number;
  trace(): number[]; // the current game's bird y per frame, [0] = its start, while it is under TRACE_FRAMES frames
  flaps(): number[]; // frames() at each flap sent in the current game (its effect shows from the next frame on)
  decoder(): string; // "frame graph" or "per token"
  shown(): string; // what the canvas shows: "start context frame i of n" or "model frame"
  view(): "sprites" | "schematic";
  // performance.now() of each start-up step: mounted, firstDraw, graphs (downloaded), ready (sessions), started
  timings(): Record<string, number>;
  agent(): AgentProbe;
  // the newest games with an agent frame: the start context's index and tokens, each frame (up to TRACE_FRAMES)
  agentGames(): { contextIndex: number; context: number[]; frames: AgentTraceFrame[] }[];
}

export interface FlappyLoop extends FlappyActions {
  probe: FlappyProbe;
  started: Promise<void>; // the first game started; rejects on an error before it
  mounted(): void; // from now on errors go to host.error
  dispose(): void;
}

/** Show a start context at once, start the worker on the model's graphs once they are downloaded and play from that
 * start context. */
export function startLoop(host: GameHost, model: OpeningModel<FlappyManifest>, view: FlappyView, screen: FlappyScreen,
  spec: TokenSpec): FlappyLoop {
  const manifest = model.manifest;
  const timings: Record<string, number> = { mounted: performance.now() };
  const first = Math.floor(Math.random() * manifest.start_contexts.length);
  let frames = 0, birdY = NaN, done = false, starts = 0, contextIndex = first, decoder = "";
  let passes = 0, passFrames = 0;
  let trace: number[] = [];
  let flapsAt: number[] = [];
  const agent: AgentProbe = { available: Boolean(model.policy), ready: false, on: false, error: "",
    policy: model.policy?.label ?? "", frames: 0, flaps: 0, mismatches: 0, obsMismatches: 0, ignoredKeys: 0, last: null };
  const tracker = new DreamTracker(spec);
  type AgentGame = ReturnType<FlappyProbe["agentGames"]>[number];
  let agentGames: AgentGame[] = [];
  let currentGame: AgentGame | null = null;
  let restartTimer = 0;
  const setStatus = (text: string) => {
    view.status.textContent = text;
    host.status(`Flappy: ${text}`);
  };
  const starting = (text: string) => {
    setStatus(`starting the model: ${text}`);
    host.progress(`Starting the model: ${text}…`);
  };
  screen.start(manifest.start_contexts[first], true);
  birdY = spec.decodeFrame(manifest.start_contexts[first].slice(-spec.stateTokensPerFrame)).birdY;
  setStatus(`loading the model (start context ${first + 1} of ${manifest.start_contexts.length} shown)`);

  const worker = new Worker(WORKER_URL, { type: "module" });
  const send = (msg: ToWorker, transfer: Transferable[] = []) => worker.postMessage(msg, transfer);
  const restart = () => {
    if (starts > 0) send({ type: "reset" }); // before the first start the worker is still loading
  };
  const flap = () => {
    if (agent.on) {
      agent.ignoredKeys += 1;
      return;
    }
    if (done) return;
    send({ type: "input", flap: true });
    flapsAt.push(frames);
  };

  // `started` resolves at the first start and an error before it rejects it (the shell shows it); later ones go to
  // host.error.
  let isMounted = false;
  let ready = () => {};
  let failed = (_: Error) => {};
  const started = new Promise<void>((resolve, reject) => { ready = resolve; failed = reject; });
  const fail = (message: string) => {
    setStatus("stopped by an error");
    if (isMounted) host.error(message);
    else failed(new Error(message));
  };
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const msg = event.data;
    switch (msg.type) {
      case "progress":
        if (starts === 0) starting(msg.text);
        return;
      case "ready":
        timings.ready = performance.now();
        decoder = msg.decoder;
        setStatus(`model loaded (${msg.backend}, ${msg.decoder}, ${msg.contexts} start context(s))`);
        send({ type: "reset", contextIndex: starts === 0 ? first : undefined });
        return;
      case "started":
        timings.started ??= performance.now();
        clearTimeout(restartTimer);
        tracker.start(manifest.start_contexts[msg.contextIndex]);
        currentGame = { contextIndex: msg.contextIndex, context: manifest.start_contexts[msg.contextIndex], frames: [] };
        starts += 1;
        frames = 0;
        done = false;
        contextIndex = msg.contextIndex;
        view.overlay.hidden = true;
        screen.start(manifest.start_contexts[msg.contextIndex], false);
        birdY = spec.decodeFrame(msg.tokens).birdY;
        trace = [birdY];
        flapsAt = [];
        setStatus(`playing from start context ${msg.contextIndex + 1} of ${manifest.start_contexts.length}` +
          (agent.on ? " (the agent plays)" : ""));
        ready();
        return;
      case "frame":
        followAgent(msg);
        frames = msg.frameIndex;
        birdY = spec.decodeFrame(msg.tokens).birdY;
        screen.show(msg.tokens, `#${msg.frameIndex}`, msg.action);
        if (msg.frameIndex === trace.length && trace.length < TRACE_FRAMES) trace.push(birdY);
        view.tps.textContent = msg.tokensPerSec.toFixed(0);
        view.fps.textContent = msg.framesPerSec.toFixed(1);
        passes += msg.passes;
        passFrames += 1;
        view.passes.textContent = `${(passes / passFrames).toFixed(2)} (${decoder})`;
        return;
      case "done":
        done = true;
        view.overlay.hidden = false;
        setStatus(`${GAME_OVER} (frame ${msg.frameIndex})`);
        if (agent.on) scheduleRestart();
        return;
      case "agent-ready":
        agent.ready = !msg.error;
        agent.error = msg.error ?? "";
        view.agent.disabled = !agent.ready;
        view.agentNote.textContent = msg.error ? `agent policy: ${msg.error}` : `policy: ${agent.policy}`;
        return;
      case "error":
        fail(`Flappy: ${msg.message}`);
        return;
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    fail(`the Flappy worker (${WORKER_URL}) failed: ${event.message || "could not load it"}`);
  };

  // The graphs' buffers move to the worker. Without a frame graph it decodes with the per-token graph.
  const initSent = model.graphs.then(({ onnx, prefill, frame }) => {
    timings.graphs = performance.now();
    if (!prefill) throw new Error(`the prefill graph (${manifest.prefill_onnx}) was not loaded`);
    if (!frame && !onnx) throw new Error(`the decode graph (${manifest.onnx}) was not loaded`);
    send({ type: "init", runtime: host.runtime, manifest, onnx, prefill, frame },
      [prefill.buffer, ...(onnx ? [onnx.buffer] : []), ...(frame ? [frame.buffer] : [])]);
  });
  initSent.catch((err) => fail(err instanceof Error ? err.message : String(err)));

  // The agent's policy (small) downloads meanwhile; the worker gets it after the init. A policy that cannot be had
  // leaves the toggle disabled with the reason beside it; the keys play on.
  const agentUnavailable = (text: string) => {
    agent.error = text;
    view.agent.disabled = true;
    view.agentNote.textContent = text;
  };
  if (model.policy) {
    view.agentNote.textContent = `loading the agent policy (${model.policy.label})…`;
    const policy = loadPolicy(model.policy, "flappy");
    Promise.all([policy, initSent]).then(([{ manifest: m, onnx }]: [{ manifest: PolicyManifest; onnx: Uint8Array }, void]) => {
      send({ type: "policy", manifest: m, onnx }, [onnx.buffer]);
    }, () => {});
    policy.catch((err) => agentUnavailable(`agent policy: ${err instanceof Error ? err.message : String(err)}`));
  } else {
    agentUnavailable("no Flappy agent policy: python -m worldmodels.dream.agent flappy writes policy.json + " +
      "policy.onnx; put them in models/<folder>/ (or pass --models) and restart python -m worldmodels.play");
  }
  const scheduleRestart = () => {
    clearTimeout(restartTimer);
    const game = starts;
    restartTimer = window.setTimeout(() => {
      if (agent.on && done && starts === game) restart();
    }, AGENT_RESTART_MS);
  };
  view.agent.addEventListener("change", () => {
    agent.on = view.agent.checked && agent.ready;
    send({ type: "agent", on: agent.on });
    view.agentAction.textContent = agent.on ? "agent: –" : "agent: off";
    setStatus(agent.on ? "the agent plays (your keys are ignored; R restarts)" : "you play");
    if (agent.on && done) scheduleRestart();
  });
  /** A committed frame: follow it with this side's tracker, count and check the agent's choice, keep the record. */
  const followAgent = (msg: Extract<FromWorker, { type: "frame" }>) => {
    const choice = msg.agent;
    if (choice) {
      agent.frames += 1;
      agent.flaps += choice.action === 1 ? 1 : 0;
      agent.last = ACTION_NAMES[choice.action] ?? String(choice.action);
      // a frame the worker made before it heard "off" is still the agent's, but the readout already says off
      if (agent.on) view.agentAction.textContent = `agent: ${agent.last}`;
      if (msg.fed !== choice.action || msg.action !== choice.action) agent.mismatches += 1;
      const mine = tracker.observation();
      if (mine.length !== choice.obs.length || mine.some((v, i) => v !== choice.obs[i])) agent.obsMismatches += 1;
    }
    tracker.advance(msg.action, msg.tokens);
    if (!currentGame) return;
    if (choice && !agentGames.includes(currentGame)) agentGames = [...agentGames, currentGame].slice(-AGENT_GAMES);
    if (currentGame.frames.length < TRACE_FRAMES) {
      currentGame.frames.push({ tokens: msg.tokens, birdY: tracker.state!.birdY, action: msg.action, fed: msg.fed,
        agent: choice });
    }
  };

  const probe: FlappyProbe = {
    frames: () => frames,
    birdY: () => birdY,
    done: () => done,
    restarts: () => Math.max(0, starts - 1),
    contextIndex: () => contextIndex,
    decoder: () => decoder,
    trace: () => trace.slice(),
    flaps: () => flapsAt.slice(),
    shown: () => screen.shown(),
    view: () => screen.view(),
    timings: () => ({ ...timings, ...(screen.firstDrawMs() === null ? {} : { firstDraw: screen.firstDrawMs()! }) }),
    agent: () => ({ ...agent }),
    agentGames: () => agentGames.map((g) => ({ ...g, frames: g.frames.slice() })),
  };
  const dispose = () => {
    clearTimeout(restartTimer);
    worker.terminate();
  };
  return { probe, started, flap, restart, mounted: () => (isMounted = true), dispose };
}
