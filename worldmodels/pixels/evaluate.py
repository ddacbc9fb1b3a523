"""Evaluate a gym_pixels world model against the true game (`python -m worldmodels.evaluate <model>`).

    python -m worldmodels.evaluate outputs/gym_pixels/<run>/export/gym_pixels.onnx --games 16 --horizon 64

Held-out episodes (the evaluation seed stream, never trained on) are played by players that are not the training
data's alone (`worldmodels.pixels.envs.PLAYERS`: random, holder, the data's mix; or the Minari dataset's held-out
episodes, as `recorded`). On them:

- one step from the true last 4 frames, beside "copy the last frame": PSNR, and the moving-pixel IoU (the pixels
  that changed from the last frame in the truth against those that changed in the prediction; both unchanged
  counts 1, so a model that freezes scores 0 wherever anything moves);
- an autonomous rollout (the model's frames fed back, rounded to bytes, driven by the true keys) from a random
  point of each episode, to `--horizon` frames or the episode's end: PSNR against the frozen start frame and the
  held-out mean frame, and the objects: each frame's foreground (pixels more than 32/255 off the episode's own
  background, its per-pixel median) against the truth's, as IoU, and "objects missing" where the dream keeps less
  than a quarter of the truth's foreground. Nothing is dropped from an average: a game counts at a horizon as long as
  its true episode lasts.

Prints markdown tables; writes JSON (default `<model>.eval.json`) and a GIF of each player's first game beside
its dream (`.eval.gif`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldmodels.breakout.denoiser import CONTEXT_FRAMES, frames_to_tensor, tensor_to_frames
from worldmodels.breakout.evaluate import LoadedModel, checked_flags, onnx_model
from worldmodels.breakout.media import save_rollout_gif
from worldmodels.breakout.metrics import frame_psnr
from worldmodels.breakout.sampler import dream_rollout, sample_next_frame
from worldmodels.core.data import EVAL
from worldmodels.core.errors import UserError
from worldmodels.pixels.config import PLAYERS_DEFAULT
from worldmodels.pixels.data import minari_source, source_facts
from worldmodels.pixels.envs import PLAYERS, Episode, episode_seeds, play

HORIZONS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MAX_START = 64  # each rollout starts at a random frame 0..MAX_START of its episode (horizons not aligned with events)
CHANGED = 24  # a pixel changed when a channel moved by more than this (of 255)
FOREGROUND = 32  # a pixel is foreground when a channel is more than this off the episode's background
MISSING = 0.25  # objects missing: the dream's foreground under this share of the truth's


def load_model(path: Path, run, module) -> LoadedModel:
    """An exported .onnx (gym_pixels, or a breakout model on its own simulator; `run` and `module` unused) or a
    checkpoint's inference net."""
    if path.suffix == ".onnx":
        return onnx_model(path, ("gym_pixels", "breakout"))
    net, s = module.inference_net, run.module.sampler
    return LoadedModel(net, s.steps, s.sigma_max, s.sigma_min, f"checkpoint {path}", net.num_actions)


def held_out_games(data, players: list[str], games: int, horizon: int, seed: int) -> list[tuple[str, Episode]]:
    """(player, episode) for `games` held-out episodes per player (a Minari dataset: its held-out episodes)."""
    if data.name == "minari":
        return [("recorded", episode) for episode in minari_source(data).held_out]
    cfg = replace(data, max_steps=max(data.max_steps, MAX_START + CONTEXT_FRAMES + horizon))
    out = []
    for player in players:
        out += [(player, e) for e in play(cfg, episode_seeds(seed, EVAL, games), player, f"{player} episodes")]
    return out


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(N, H, W) the pixels where some channel moved by more than CHANGED."""
    return (np.abs(after.astype(np.int16) - before.astype(np.int16)) > CHANGED).any(-1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample IoU of (N, H, W) masks; two empty masks agree (1)."""
    inter, union = (a & b).reshape(len(a), -1).sum(1), (a | b).reshape(len(a), -1).sum(1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def one_step(model: LoadedModel, games: list[tuple[str, Episode]], per_game: int, generator) -> dict:
    rows = {"model": {"psnr": [], "moving_iou": []}, "copy_last": {"psnr": [], "moving_iou": []}}
    for _, (frames, actions) in tqdm(games, desc="one step", unit="game", leave=False):
        last = len(actions) - 1  # step t predicts frames[t + 1] from frames[t - 3 .. t]
        if last < CONTEXT_FRAMES - 1:
            continue
        steps = np.unique(np.linspace(CONTEXT_FRAMES - 1, last, min(per_game, last - CONTEXT_FRAMES + 2)).astype(int))
        context = torch.from_numpy(np.stack([frames[t - CONTEXT_FRAMES + 1:t + 1] for t in steps]))
        pred = sample_next_frame(model.denoise, frames_to_tensor(context), torch.from_numpy(actions[steps]),
                                 model.steps, model.sigma_max, model.sigma_min, generator=generator,
                                 num_actions=model.num_actions)
        pred, truth, latest = tensor_to_frames(pred).numpy(), frames[steps + 1], frames[steps]
        moved = changed(latest, truth)
        for name, guess in (("model", pred), ("copy_last", latest)):
            rows[name]["psnr"] += frame_psnr(guess, truth).tolist()
            rows[name]["moving_iou"] += iou(changed(latest, guess), moved).tolist()
    return {name: {k: float(np.mean(v)) if v else None for k, v in r.items()} | {"n": len(r["psnr"])}
            for name, r in rows.items()}


def rollouts(model: LoadedModel, games: list[tuple[str, Episode]], horizon: int, rng: np.random.Generator,
             generator) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Per horizon the scores of the dream, the frozen start frame and the mean frame; and the frames themselves
    (truth, dream: (T, G, S, S, 3)) with each game's true length (G,)."""
    usable = games
    mean_frame = np.mean(np.concatenate([e[0] for _, e in usable]), axis=0).round().astype(np.uint8)
    starts = [int(rng.integers(0, min(MAX_START, len(e[1]) - CONTEXT_FRAMES + 1) + 1)) for _, e in usable]
    size = usable[0][1][0].shape[1:]
    truth = np.zeros((horizon, len(usable), *size), np.uint8)
    context = np.zeros((len(usable), CONTEXT_FRAMES, *size), np.uint8)
    actions = np.zeros((horizon, len(usable)), np.int64)
    lengths = np.zeros(len(usable), np.int64)
    backgrounds = []
    for g, ((_, (frames, acts)), s) in enumerate(zip(usable, starts, strict=True)):
        context[g] = frames[s:s + CONTEXT_FRAMES]
        future = frames[s + CONTEXT_FRAMES:s + CONTEXT_FRAMES + horizon]
        lengths[g] = len(future)
        truth[:len(future), g] = future
        actions[:len(future), g] = acts[s + CONTEXT_FRAMES - 1:s + CONTEXT_FRAMES - 1 + len(future)]
        backgrounds.append(np.median(frames, axis=0).astype(np.uint8))
    steps = int(lengths.max())
    dream = np.zeros_like(truth)
    for lo in tqdm(range(0, len(usable), 32), desc="rollouts", unit="batch", leave=False):
        hi = min(lo + 32, len(usable))
        rolled = dream_rollout(model.denoise, torch.from_numpy(context[lo:hi]),
                               torch.from_numpy(actions[:steps, lo:hi]), model.steps,
                               model.sigma_max, model.sigma_min, generator=generator, num_actions=model.num_actions)
        dream[:steps, lo:hi] = rolled.numpy()
    background = np.stack(backgrounds)  # (G, S, S, 3)

    def foreground(frames: np.ndarray) -> np.ndarray:
        return (np.abs(frames.astype(np.int16) - background.astype(np.int16)) > FOREGROUND).any(-1)

    result = {"model": {}, "frozen_start": {}, "mean_frame": {}}
    frozen = np.repeat(context[None, :, -1], horizon, axis=0)
    constant = np.broadcast_to(mean_frame, truth.shape)
    for h in range(1, steps + 1):
        alive = lengths >= h  # the games whose true episode reaches this horizon
        t, true_fg = truth[h - 1, alive], foreground(truth[h - 1])[alive]
        for name, frames in (("model", dream), ("frozen_start", frozen), ("mean_frame", constant)):
            guess = frames[h - 1, alive]
            fg = foreground(frames[h - 1])[alive]
            counts, true_counts = fg.reshape(len(fg), -1).sum(1), true_fg.reshape(len(fg), -1).sum(1)
            result[name][str(h)] = {
                "games": int(alive.sum()),
                "psnr": float(frame_psnr(guess, t).mean()),
                "objects_iou": float(iou(fg, true_fg).mean()),
                "objects_missing": float(((true_counts > 0) & (counts < MISSING * true_counts)).mean()),
            }
    return result, truth, dream, lengths


def evaluate(model: LoadedModel, run, players: list[str], games: int, horizon: int, per_game: int,
             seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    held_out = [(p, e) for p, e in held_out_games(run.data, players, games, horizon, seed)
                if len(e[1]) >= CONTEXT_FRAMES]  # shorter episodes hold no 4-frame context and step
    if not held_out:
        raise UserError(f"no held-out episode lasts the {CONTEXT_FRAMES} steps a prediction needs")
    num_actions, names = source_facts(run.data)
    if num_actions != model.num_actions:
        raise UserError(f"the model has {model.num_actions} action planes, its game {num_actions} actions")
    steps_one = one_step(model, held_out, per_game, generator)
    roll, truth, dream, lengths = rollouts(model, held_out, horizon, np.random.default_rng(seed), generator)
    return {"model": model.description, "players": sorted({p for p, _ in held_out}, key=[p for p, _ in held_out].index),
            "games": len(held_out), "actions": names, "sampler": {"steps": model.steps, "sigma_max": model.sigma_max},
            "one_step": steps_one, "rollout": roll,
            "frames": {"truth": truth, "dream": dream, "lengths": lengths, "players": [p for p, _ in held_out]}}


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_tables(result: dict) -> str:
    o = result["one_step"]
    lines = [f"# {result['model']}: {result['games']} held-out episodes ({', '.join(result['players'])}), "
             f"sampler K={result['sampler']['steps']}", "",
             "## One step (true context)", "", "| | frames | PSNR dB | moving-pixel IoU |", "|---|---|---|---|"]
    for name in ("model", "copy_last"):
        lines.append(f"| {name} | {o[name]['n']} | {_f(o[name]['psnr'], 2)} | {_f(o[name]['moving_iou'])} |")
    lines += ["", "## Autonomous rollout (true keys)", "",
              "| horizon | games | PSNR model | PSNR frozen start | PSNR mean frame | objects IoU model | objects IoU "
              "frozen | objects missing model |", "|---|---|---|---|---|---|---|---|"]
    r = result["rollout"]
    for h in HORIZONS:
        if str(h) not in r["model"]:
            continue
        m, f, c = r["model"][str(h)], r["frozen_start"][str(h)], r["mean_frame"][str(h)]
        lines.append(f"| {h} | {m['games']} | {_f(m['psnr'], 2)} | {_f(f['psnr'], 2)} | {_f(c['psnr'], 2)} | "
                     f"{_f(m['objects_iou'])} | {_f(f['objects_iou'])} | {_f(m['objects_missing'])} |")
    return "\n".join(lines)


def run(args: argparse.Namespace, path: Path, run, module) -> None:
    """`python -m worldmodels.evaluate` for a gym_pixels model: tables, JSON and a GIF."""
    players = checked_flags(args, PLAYERS_DEFAULT, PLAYERS)
    model = load_model(path, run, module)
    model.steps = args.steps or model.steps
    model.sigma_max = args.sigma_max or model.sigma_max
    result = evaluate(model, run, players, args.games, args.horizon, args.one_step, args.seed)
    frames = result.pop("frames")
    print(format_tables(result))
    out = args.out
    out.write_text(json.dumps(result, indent=2) + "\n")
    shown = [frames["players"].index(p) for p in result["players"]]
    length = max(1, int(frames["lengths"][shown].max()))
    save_rollout_gif(frames["truth"][:length, shown], frames["dream"][:length, shown], out.with_suffix(".gif"),
                     games=len(shown), labels=result["players"])
    print(f"\nwrote {out} and, beside it, {out.with_suffix('.gif').name} (real | dream, each player's first game)")
