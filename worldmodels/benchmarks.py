"""What `python -m worldmodels.bench` measures (its docstring says what each table means): the simulator, training,
Flappy decoding and the Breakout denoiser. Imports torch, Lightning and both tasks; the command imports it after
parsing its flags, so `--help` and a bad flag answer at once.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import gymnasium
import lightning as L
import numpy as np
import onnxruntime as ort
import torch

from worldmodels.breakout.config import DenoiserConfig
from worldmodels.breakout.denoiser import (
    INPUT_NAME,
    OUTPUT_NAME,
    TinyDenoiser,
    build_denoiser,
    conv_flops,
)
from worldmodels.breakout.sim import BreakoutEnv, BreakoutSim
from worldmodels.core.config import compose_config
from worldmodels.core.manifest import OPSET
from worldmodels.dream.breakout import BreakoutDreamVecEnv
from worldmodels.dream.flappy import FlappyDreamEnv
from worldmodels.dream.vector import FlappyDreamVecEnv
from worldmodels.flappy.config import TransformerConfig
from worldmodels.flappy.decoding.backends import OrtBackend, OrtFrameBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder, FrameGraphDecoder, from_manifest
from worldmodels.flappy.decoding.rules import frame_rules
from worldmodels.flappy.frame_graph import export_frame_onnx
from worldmodels.flappy.game import GEOMETRY, FlappyGame, HeuristicPolicy, record_episode
from worldmodels.flappy.tokens import SPEC
from worldmodels.flappy.transformer import TokenTransformer, export_onnx
from worldmodels.tasks import build_datamodule, build_module, validate


def machine() -> str:
    return (f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}, python {platform.python_version()}")


def bench_sim(games: int, steps: int) -> list[tuple[str, float]]:
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, size=(steps, games))
    seeds = np.arange(games)

    def vectorized() -> float:
        sim = BreakoutSim(seeds)
        start = time.perf_counter()
        for t in range(steps):
            sim.step(actions[t])
            sim.render()
        return games * steps / (time.perf_counter() - start)

    def one_at_a_time() -> float:
        sims = [BreakoutSim(seeds[i:i + 1]) for i in range(games)]
        loop_steps = max(1, steps // 10)  # ten times fewer steps: the loop is that much slower
        start = time.perf_counter()
        for t in range(loop_steps):
            for i, sim in enumerate(sims):
                sim.step(actions[t, i:i + 1])
                sim.render()
        return games * loop_steps / (time.perf_counter() - start)

    vectorized()  # warm caches and allocator
    return [("one game at a time (Python loop)", one_at_a_time()), (f"vectorized, {games} games", vectorized())]


class StepTiming(L.Callback):
    """Wall time of the training steps after the first (which pays start-up costs) and the part spent waiting for
    the next batch: the gap between one step's end and the next step's start."""

    def __init__(self):
        self.wait, self.steps = 0.0, 0
        self.start = self.last_end = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.last_end is not None:
            self.wait += time.perf_counter() - self.last_end
            self.steps += 1

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.last_end = time.perf_counter()
        if self.start is None:
            self.start = self.last_end


def bench_train(overrides: list[str], train_steps: int) -> list[tuple[str, float, float]]:
    rows = []
    for workers in (0, 1):
        with tempfile.TemporaryDirectory() as out:
            run = validate(compose_config([*overrides, f"data.num_workers={workers}"], output_dir=out))
            module = build_module(run, {})
            timing = StepTiming()
            trainer = L.Trainer(accelerator=run.trainer.accelerator, devices=1, max_steps=train_steps + 1,
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, limit_val_batches=0, callbacks=[timing],
                                default_root_dir=out)
            trainer.fit(module, datamodule=build_datamodule(run))
            elapsed = timing.last_end - timing.start
            rows.append((f"data.num_workers={workers}", run.data.batch_size * timing.steps / elapsed,
                         timing.wait / elapsed))
    return rows


def flappy_graphs(onnx_path: str | None, out: Path) -> dict:
    """The decode, prefill and frame graphs of an exported model (plus a start context and its cache kind), or of
    a fresh default-size one with random weights. The frame graph's speed depends on the weights (how many passes
    a frame takes), so an export without one gets no frame-graph rows."""


    torch.manual_seed(0)
    if onnx_path:
        onnx_path = Path(onnx_path)
        manifest = json.loads(onnx_path.with_suffix(".json").read_text())
        frame = manifest.get("frame_onnx")
        return {"decode": onnx_path, "prefill": onnx_path.with_name(manifest["prefill_onnx"]),
                "frame": onnx_path.with_name(frame) if frame else None,
                "context": np.asarray(manifest["start_contexts"][0]),
                "ring": manifest["decoding"].get("sliding_window", False), "weights": str(onnx_path),
                "manifest": onnx_path.with_suffix(".json")}

    model = TokenTransformer(TransformerConfig(vocab_size=SPEC.vocab_size, sliding_window=True))
    export_onnx(model, out / "decode.onnx", out / "prefill.onnx", dynamic_batch=False)  # as export_flappy writes
    export_frame_onnx(model, frame_rules(SPEC), out / "frame.onnx")
    states, actions, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=0, max_frames=38)
    return {"decode": out / "decode.onnx", "prefill": out / "prefill.onnx", "frame": out / "frame.onnx",
            "context": SPEC.encode_episode(states, actions)[:-1], "ring": True, "manifest": None,
            "weights": "random (default shape, sliding window): pass counts are not a trained model's"}


def dream_pilot(state_tokens) -> int:
    """The decode benchmarks' player: flap when the dreamed bird's centre is more than 10 px below the centre of
    the gap of the first visible pipe it has not passed (HeuristicPolicy's rule, read off the decoded tokens)."""

    state, _ = SPEC.decode_frame(state_tokens)
    ahead = [(x, gap) for x, gap, shown in zip(state.pipe_x, state.gap_y, state.visible, strict=True)
             if shown and x + GEOMETRY["pipe_width"] > GEOMETRY["bird_x"]]
    if not ahead:
        return 0
    return int(state.bird_y + GEOMETRY["bird_height"] / 2 > min(ahead)[1] + 10)


def _timed_game(decoder, context: np.ndarray, tokens: int, warmup_frames: int = 50) -> dict:
    """Tokens/s of every 1,000 tokens (100 frames: action + state) of one game played by the dream pilot from
    `context`, after `warmup_frames` untimed frames of another (a runtime's first calls run slower). The pilot plays
    on after the model's own done token: this times decoding, not the game."""
    start = [0.0]

    def play(frames: int, report) -> None:
        decoder.reset(context)
        start[0] = time.perf_counter()  # the clock starts after the reset's prefill
        action = 0
        for i in range(frames):
            action = dream_pilot(decoder.step(action))
            report(i)

    def calls() -> int:  # model calls so far: frame-graph passes, or one per token
        frames = decoder.tokens_generated // SPEC.state_tokens_per_frame
        return getattr(decoder, "passes", frames * SPEC.tokens_per_frame)

    play(warmup_frames, lambda i: None)
    chunk, rates = 100, []

    def report(i: int) -> None:
        if (i + 1) % chunk == 0:
            now = time.perf_counter()
            rates.append(chunk * SPEC.tokens_per_frame / (now - start[0]))
            start[0] = now

    chunk_tokens = chunk * SPEC.tokens_per_frame  # 1,000
    play(tokens // chunk_tokens * chunk, report)
    seconds = float(np.sum(chunk_tokens / np.array(rates)))
    return {"first": rates[0], "last": rates[-1], "mean": float(len(rates) / np.sum(1 / np.array(rates))),
            "tokens": len(rates) * chunk_tokens, "slides": decoder.slides, "history": decoder.history,
            "passes_per_frame": calls() / (len(rates) * chunk),
            "per_token_s": seconds / (len(rates) * chunk_tokens), "per_call_s": seconds / calls()}


def bench_decode(onnx_path: str | None, tokens: int, long_tokens: int) -> dict:
    """Tokens/s of the frame graph (one call per frame) and the KV-cache decode graph (one call per token) against
    a full recompute; then the cost per token (and per model call) of one `long_tokens` game against the median
    of five 1,000-token games, with the frame graph when the export has one."""

    with tempfile.TemporaryDirectory() as tmp:
        graphs = flappy_graphs(onnx_path, Path(tmp))
        ring = graphs["ring"]
        backend = OrtBackend.from_files(graphs["decode"], graphs["prefill"], threads=1, ring=ring)
        window, context = backend.context, graphs["context"]
        # Full recompute: every token re-runs the whole window through the prefill graph.
        ids = np.resize(context, window).astype(np.int64)
        positions = np.arange(window, dtype=np.int64)
        recompute_tokens = 50
        start = time.perf_counter()
        for _ in range(recompute_tokens):
            backend.prefill(ids, positions)
        recompute = recompute_tokens / (time.perf_counter() - start)
        # Cached: the frame decoders (slot masks, choices, window) over one game each. An export's are its
        # manifest's (`from_manifest`: the player's graphs, cache kind, slide rule, slide_frames and temperature);
        # with a frame graph both slide an ordered window before a frame that does not fit, so they make the same
        # frames.
        if graphs["manifest"] is not None:
            decoder = from_manifest(graphs["manifest"], per_token=True)
        else:
            decoder = FrameDecoder(backend, seed=0, slide_before_frame=True)
        per_token = _timed_game(decoder, context, tokens)
        per_frame = None
        if graphs["frame"] is not None:
            if graphs["manifest"] is not None:
                decoder = from_manifest(graphs["manifest"])
            else:
                frame_backend = OrtFrameBackend.from_files(graphs["frame"], graphs["prefill"], threads=1, ring=ring)
                decoder = FrameGraphDecoder(frame_backend, seed=0)
            per_frame = _timed_game(decoder, context, tokens)
        short = [_timed_game(decoder, context, 1000, warmup_frames=1) for _ in range(5)]
        long = _timed_game(decoder, context, long_tokens, warmup_frames=1)
    identical = per_frame is not None and per_token.pop("history") == per_frame.pop("history")
    growth = {key: long[key] / float(np.median([s[key] for s in short])) for key in ("per_token_s", "per_call_s")}
    return {"context": window, "ring": ring, "weights": graphs["weights"], "recompute": recompute,
            "per_token": per_token, "per_frame": per_frame, "identical": identical, "long_tokens": long["tokens"],
            "growth": growth}


def time_ms(call, calls: int) -> float:
    """Mean milliseconds per `call()` over `calls` calls, after one warm-up call."""
    call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1000


def ort_session(onnx_path: str | Path, threads: int):
    """An onnxruntime CPU session with `threads` intra-op threads and one inter-op thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def denoiser_input(manifest: dict) -> np.ndarray:
    """A random batch-1 input of the shape the Breakout manifest declares."""
    frame, channels = manifest["frame"], manifest["inputs"][0]["shape"][1]
    x = np.random.default_rng(0).standard_normal((1, channels, frame["height"], frame["width"]))
    return x.astype(np.float32)


def seed_denoiser_onnx(out: Path, like: dict) -> Path:
    """The seed-scale TinyDenoiser (width 96, 14 blocks; random weights: speed does not depend on them) as ONNX,
    with a manifest copied from `like` so it samples the same way."""


    seed = DenoiserConfig(context_frames=like["frame"]["context_frames"])  # the seed's shape, `like`'s input
    net = TinyDenoiser(seed).eval()
    path = out / "seed_tiny_denoiser.onnx"
    x = torch.from_numpy(denoiser_input(like))
    torch.onnx.export(net, (x,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=OPSET,
                      dynamo=False)
    model = {**vars(seed), "parameters": net.num_parameters()}
    path.with_suffix(".json").write_text(json.dumps({**like, "name": path.stem, "onnx": path.name, "model": model}))
    return path


def bench_denoiser(onnx_paths: list[str], calls: int) -> list[dict]:
    """ms per denoiser call (batch 1) of the seed-scale TinyDenoiser (the baseline, exported here) and of each
    given model: PyTorch (the model's own config, random weights) and onnxruntime with 1 and 2 intra-op threads,
    with the convolutions' GFLOP per call."""


    with tempfile.TemporaryDirectory() as tmp:
        like = json.loads(Path(onnx_paths[0]).with_suffix(".json").read_text())
        rows = []
        for path in [seed_denoiser_onnx(Path(tmp), like), *map(Path, onnx_paths)]:
            manifest = json.loads(path.with_suffix(".json").read_text())
            x = denoiser_input(manifest)
            net = build_denoiser(manifest["model"]).eval()
            frame = manifest["frame"]
            row = {"model": "seed-scale tiny_denoiser (baseline)" if path.parent == Path(tmp) else str(path),
                   "gflop": conv_flops(net, frame["height"], frame["width"]) / 1e9}
            repeats = max(3, calls // 10) if row["gflop"] > 5 else calls  # the seed net is ~200 ms a call here
            with torch.no_grad():
                row["PyTorch"] = time_ms(lambda n=net, x=x: n(torch.from_numpy(x)), repeats)
            for threads in (1, 2):
                session = ort_session(path, threads)
                row[f"onnxruntime {threads} thread{'s' * (threads > 1)}"] = time_ms(
                    lambda s=session, x=x: s.run(None, {"input": x}), repeats)
            rows.append(row)
    return rows


def _steps_per_s(env, steps: int, actions: np.ndarray) -> float:
    """Env steps/s (a vector env's steps count once per env) over `steps` steps of `actions`, after 5 warm-up
    steps; games that end are reset (a vector env resets itself)."""
    n = getattr(env, "num_envs", 1)

    def run(count: int) -> None:
        for t in range(count):
            a = actions[t % len(actions)]
            if n == 1 and not hasattr(env, "num_envs"):
                _, _, terminated, truncated, _ = env.step(int(a[0]))
                if terminated or truncated:
                    env.reset()
            else:
                env.step(a[:n])

    env.reset(seed=0)
    run(5)
    start = time.perf_counter()
    run(steps)
    return n * steps / (time.perf_counter() - start)


def bench_dream(flappy_model: str, breakout_model: str, sizes: tuple[int, ...], steps: int) -> dict:
    """Env steps/s of the real games (flappy-bird-gymnasium's FlappyBird-v0, the Breakout simulator as its gymnasium
    env) and of the dream envs: the single FlappyDream-v0 (frame graph) and the vector dreams at each N (one batched
    graph call per token for Flappy, one denoiser call per frame for Breakout), all on one onnxruntime thread.
    Each dream row is also given as a ratio to its real game's rate in this run."""
    rng = np.random.default_rng(0)
    flaps = (rng.random((512, max(sizes))) < 0.1).astype(np.int64)
    keys = rng.integers(0, 3, (512, max(sizes)))
    real_flappy = gymnasium.make("FlappyBird-v0", use_lidar=False)
    out = {"flappy": [("real FlappyBird-v0", _steps_per_s(real_flappy, steps * 50, flaps))],
           "breakout": [("real simulator (BreakoutEnv)", _steps_per_s(BreakoutEnv(), steps * 20, keys))]}
    out["flappy"].append(("FlappyDream-v0 (frame graph)", _steps_per_s(FlappyDreamEnv(model=flappy_model), steps,
                                                                      flaps)))
    for n in sizes:
        out["flappy"].append((f"vector dream, N = {n}", _steps_per_s(
            FlappyDreamVecEnv(n, model=flappy_model), max(4, steps // n), flaps)))
        out["breakout"].append((f"vector dream, N = {n}", _steps_per_s(
            BreakoutDreamVecEnv(n, model=breakout_model), max(4, steps // (4 * n)), keys)))
    return out
