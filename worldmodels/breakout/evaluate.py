"""Evaluate a Breakout world model against the true simulator as a player sees it (`python -m worldmodels.evaluate`).

    python -m worldmodels.evaluate outputs/breakout/<run>/export/breakout.onnx
    python -m worldmodels.evaluate outputs/breakout/<run>/checkpoints/last.ckpt --games 16 --horizon 64 --steps 2

Held-out games (the evaluation seed stream, never used in training) are played by four players
(`worldmodels.breakout.players`: the scripted tracker, a key holder, a sloppy tracker with a reaction delay and lapses,
random), each game after its own random warm-up of 0-160 steps so that horizons are not aligned with events.

Every game's first prediction makes the same frame (`EVAL_CONTEXT`), whether the model sees 4 or 8 frames. On them:

- one step from the true last frames (the model's context), by event (`readout.EVENTS`: a new game after the last
  life, serve after a lost ball within a game, brick break, paddle bounce, the frame after one, wall bounce,
  flight; labelled by the simulator's own step), beside "copy the last frame" and "constant velocity" (the ball
  moved again by its last move, the paddle likewise) on the same frames; plus the paddle where an action pushes it
  into a wall;
- an autonomous rollout (the model's frames fed back, rounded to bytes, driven by the true keys) to `--horizon`
  frames: the share of games whose ball is within 1.5 px at each horizon, the ball-kept horizon (frames until the
  ball is more than 3 px off or missing), extra balls, the paddle, the bricks and PSNR, beside the frozen start frame.

Objects are read from pixels by `worldmodels.breakout.readout` (exact on true frames); a missing ball is a failure.
Prints markdown tables and writes JSON (default: `<model>.eval.json`), a GIF of real games beside their dreams
(`.eval.gif`), a strip image (truth over dream, every 4th frame, `.eval.strip.png`) and plots against the horizon
(`.eval.png`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldmodels.breakout.config import PLAYERS_DEFAULT
from worldmodels.breakout.data import stream_seeds
from worldmodels.breakout.denoiser import CONTEXT_FRAMES, INPUT_NAME, OUTPUT_NAME, frames_to_tensor, tensor_to_frames
from worldmodels.breakout.media import save_horizon_plot, save_rollout_gif, save_rollout_strip
from worldmodels.breakout.metrics import (
    BALL_KEPT_PX,
    BALL_RIGHT_PX,
    CONSTANT,
    COPY,
    MODEL,
    ball_error,
    frame_psnr,
    paddle_right,
    rate,
)
from worldmodels.breakout.players import PLAYERS, make_player
from worldmodels.breakout.readout import EVENTS, Balls, Objects, classify_events, read_objects
from worldmodels.breakout.sampler import Denoise, dream_rollout, sample_next_frame
from worldmodels.breakout.sim import LEFT, NUM_ACTIONS, PADDLE_MAX_X, PADDLE_WIDTH, RIGHT, BreakoutSim
from worldmodels.core.data import EVAL
from worldmodels.core.errors import UserError
from worldmodels.core.manifest import onnx_session, read_manifest

MAX_WARMUP = 160  # each game starts after a random 0..MAX_WARMUP steps of its player
# Every game's first prediction makes its frame EVAL_CONTEXT, so models that see up to this many frames are scored
# on the same frames (a model that sees more starts later).
EVAL_CONTEXT = 8
HORIZONS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # rollout horizons in the tables (all of them in the JSON)
WALL = "paddle into a wall"  # the extra one-step row: an action that pushes the paddle against a wall


@dataclass
class LoadedModel:
    denoise: Denoise
    steps: int
    sigma_max: float
    sigma_min: float
    description: str
    num_actions: int = NUM_ACTIONS  # the action planes of its input (a gym_pixels model: its game's actions)
    context_frames: int = CONTEXT_FRAMES  # the frames each prediction sees


def onnx_model(path: Path, tasks: tuple[str, ...]) -> LoadedModel:
    """An exported denoiser of one of `tasks` as a callable, with its manifest's sampler and action count."""
    manifest = read_manifest(path)
    if manifest.get("task") not in tasks:
        raise UserError(f"{path} is a {manifest.get('task')!r} model, not {' or '.join(tasks)}")
    session = onnx_session(path)

    def denoise(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

    s = manifest["sampler"]
    actions = manifest.get("num_actions", len(manifest["frame"]["actions"]))  # a breakout manifest names its 3
    return LoadedModel(denoise, s["steps"], s["sigma_max"], s["sigma_min"], f"onnx {path}", actions,
                       manifest["frame"]["context_frames"])


def load_model(path: Path, checkpoint: tuple | None = None) -> LoadedModel:
    """A Breakout denoiser callable with its sampler defaults, from a training checkpoint (or its already loaded
    `(run, module)`) or an exported .onnx."""
    if not path.is_file():
        raise UserError(f"no model file at {path}")
    if path.suffix == ".onnx":
        return onnx_model(path, ("breakout",))
    if checkpoint is None:
        raise UserError(f"{path}: give an exported .onnx, or the checkpoint's (run, module) from "
                        "worldmodels.tasks.load_checkpoint")
    run, module = checkpoint
    if run.task_name != "breakout":
        raise UserError(f"{path} is a {run.task_name!r} checkpoint, not breakout")
    s = run.module.sampler
    net = module.inference_net
    return LoadedModel(net, s.steps, s.sigma_max, s.sigma_min, f"checkpoint {path}", context_frames=net.context_frames)


@dataclass
class Games:
    """Recorded games: frames uint8 (L + 1, G, H, W, 3), actions and events int (L, G) (step t leads from frame t to
    t + 1), the true objects of every frame, and which player played each game."""

    frames: np.ndarray
    actions: np.ndarray
    events: np.ndarray
    players: list[str]
    paddle_x: np.ndarray  # (L + 1, G) the paddle's true left edge in each frame


def play_games(players: list[str], games: int, steps: int, seed: int = 0) -> Games:
    """`games` held-out games per player, each recorded for `steps` steps after its own random warm-up."""
    frames, actions, events, paddles, names = [], [], [], [], []
    for p, name in enumerate(players):
        rng = np.random.default_rng([seed, p])
        warmup = rng.integers(0, MAX_WARMUP + 1, games)
        sim, player = BreakoutSim(stream_seeds(seed, EVAL, p, 0, 0, games)), make_player(name, seed * 1000 + p)
        f = np.zeros((steps + 1, games, *sim.render().shape[1:]), np.uint8)
        a, e = np.zeros((steps, games), np.int64), np.zeros((steps, games), np.int64)
        x = np.zeros((steps + 1, games))
        after_paddle = np.zeros(games, bool)
        for t in range(MAX_WARMUP + steps + 1):
            k = t - warmup  # each game's recording index at this step
            rec = (k >= 0) & (k <= steps)
            frame = sim.render()
            f[k[rec], np.flatnonzero(rec)] = frame[rec]
            x[k[rec], np.flatnonzero(rec)] = sim.paddle_x[rec]
            if t == MAX_WARMUP + steps:
                break
            act = player.act(sim)
            result = sim.step(act)
            event = classify_events(result, after_paddle)
            after_paddle = result.paddle_bounce.copy()
            step = (k >= 0) & (k < steps)
            a[k[step], np.flatnonzero(step)] = act[step]
            e[k[step], np.flatnonzero(step)] = event[step]
        frames.append(f), actions.append(a), events.append(e), paddles.append(x)
        names += [name] * games
    cat = lambda xs: np.concatenate(xs, axis=1)
    return Games(cat(frames), cat(actions), cat(events), names, cat(paddles))


def _objects_at(objects: Objects, idx) -> Objects:
    return Objects(Balls(objects.balls.centre[idx], objects.balls.count[idx]), objects.paddle[idx],
                   objects.paddle_width[idx], objects.bricks[idx])


def one_step_scores(games: Games, pred: np.ndarray, start: int) -> dict:
    """Scores by event of one-step predictions `pred` (T, G, H, W, 3) of frames start + 1 .. start + T."""
    t_count, g_count = pred.shape[:2]
    truth_frames = games.frames[start + 1:start + 1 + t_count]
    truth = read_objects(truth_frames)
    latest = read_objects(games.frames[start:start + t_count])  # copy-last's frame
    older = read_objects(games.frames[start - 1:start - 1 + t_count])
    model = read_objects(pred)
    events = games.events[start:start + t_count].reshape(-1)
    actions = games.actions[start:start + t_count].reshape(-1)
    # Constant velocity: the ball and the paddle move again by their last move; the bricks stay.
    constant = Objects(Balls(2 * latest.balls.centre - older.balls.centre, latest.balls.count),
                       np.clip(2 * latest.paddle - older.paddle, PADDLE_WIDTH / 2, PADDLE_MAX_X + PADDLE_WIDTH / 2),
                       latest.paddle_width, latest.bricks)
    broken = latest.bricks & ~truth.bricks  # (N, 6, 8) the brick this step breaks
    paddle_left = games.paddle_x[start:start + t_count].reshape(-1)
    into_wall = ((paddle_left == 0) & (actions == LEFT)) | ((paddle_left == PADDLE_MAX_X) & (actions == RIGHT))
    predictors = {MODEL: model, COPY: latest, CONSTANT: constant}
    rows = {name: np.flatnonzero(events == i) for i, name in enumerate(EVENTS)}
    rows["all"] = np.arange(len(events))
    rows[WALL] = np.flatnonzero(into_wall)
    scores = {}
    for row, idx in rows.items():
        entry = {"count": int(len(idx))}
        for name, objects in predictors.items():
            sel, true = _objects_at(objects, idx), _objects_at(truth, idx)
            err = ball_error(sel.balls.centre, true.balls.centre)
            entry[name] = {
                "ball_right": rate((err <= BALL_RIGHT_PX) & ~sel.balls.extra),
                "ball_missing": rate(sel.balls.missing),
                "extra_ball": rate(sel.balls.extra),
                "paddle_right": rate(paddle_right(sel, true)),
                "bricks_right": rate((sel.bricks == true.bricks).all(axis=(1, 2))),
            }
            if row == "brick_break":
                entry[name]["brick_vanishes"] = rate(~(sel.bricks & broken[idx]).any(axis=(1, 2)))
        scores[row] = entry
    flat = lambda x: x.reshape(-1, *x.shape[-3:])
    scores["all"][MODEL]["psnr"] = float(frame_psnr(flat(pred), flat(truth_frames)).mean())
    latest_frames = games.frames[start:start + t_count]
    scores["all"][COPY]["psnr"] = float(frame_psnr(flat(latest_frames), flat(truth_frames)).mean())
    return scores


def rollout_scores(truth_frames: np.ndarray, pred: np.ndarray, players: list[str]) -> dict:
    """Per-horizon scores of a rollout `pred` (H, G, H, W, 3) against the true frames, and the ball-kept horizon."""
    horizon, g_count = pred.shape[:2]
    truth, model = read_objects(truth_frames), read_objects(pred)
    err = ball_error(model.balls.centre, truth.balls.centre).reshape(horizon, g_count)
    lost = err > BALL_KEPT_PX  # missing counts: its error is infinite
    kept = np.where(lost.any(axis=0), lost.argmax(axis=0), horizon)  # frames before the first lost one
    per_h = {}
    psnr = frame_psnr(pred.reshape(-1, *pred.shape[2:]), truth_frames.reshape(-1, *pred.shape[2:]))
    psnr = psnr.reshape(horizon, g_count)
    right = paddle_right(model, truth).reshape(horizon, g_count)
    bricks = (model.bricks == truth.bricks).reshape(horizon, g_count, -1).mean(-1)
    paddle_err = np.abs(model.paddle - truth.paddle).reshape(horizon, g_count)
    for h in range(horizon):
        per_h[str(h + 1)] = {
            "ball_within": rate(err[h] <= BALL_RIGHT_PX),
            "ball_missing": rate(model.balls.missing.reshape(horizon, g_count)[h]),
            "extra_ball": rate(model.balls.extra.reshape(horizon, g_count)[h]),
            "paddle_right": rate(right[h]),
            "paddle_err_px": float(np.nanmean(paddle_err[h])) if np.isfinite(paddle_err[h]).any() else float("nan"),
            "brick_acc": float(bricks[h].mean()),
            "psnr": float(psnr[h].mean()),
        }
    names = np.array(players)
    return {
        "horizons": per_h,
        "ball_kept": {"median": float(np.median(kept)), "mean": float(kept.mean()),
                      "per_player": {p: float(np.median(kept[names == p])) for p in dict.fromkeys(players)},
                      "per_game": kept.tolist()},
    }


def evaluate(model: LoadedModel, games: int = 32, horizon: int = 64, one_step: int = 128, seed: int = 0,
             players: list[str] | None = None, progress: bool = True) -> dict:
    """The whole evaluation (see the module docstring) on `games` games per player; frames come back under
    "frames" for the pictures."""
    players = list(players or PLAYERS)
    k = model.context_frames
    first = max(k, EVAL_CONTEXT) - 1  # the newest context frame of the first prediction
    played = play_games(players, games, first + max(horizon, one_step), seed)
    generator = torch.Generator().manual_seed(seed)

    preds = []
    for t in tqdm(range(first, first + one_step), desc="one-step", leave=False, disable=not progress):
        context = frames_to_tensor(torch.from_numpy(played.frames[t - k + 1:t + 1]).transpose(0, 1))
        pred = sample_next_frame(model.denoise, context, torch.from_numpy(played.actions[t]), model.steps,
                                 model.sigma_max, model.sigma_min, generator=generator)
        preds.append(tensor_to_frames(pred).numpy())
    one = one_step_scores(played, np.stack(preds), first)

    start = torch.from_numpy(played.frames[first - k + 1:first + 1]).transpose(0, 1)  # (G, k, H, W, 3)
    actions = torch.from_numpy(played.actions[first:first + horizon])
    rollout = dream_rollout(model.denoise, start, actions, model.steps, model.sigma_max, model.sigma_min,
                            generator).numpy()
    truth = played.frames[first + 1:first + 1 + horizon]
    frozen = np.broadcast_to(played.frames[first], truth.shape)
    return {
        "games_per_player": games, "players": players, "horizon": horizon, "one_step_frames": one_step,
        "seed": seed, "max_warmup": MAX_WARMUP, "context_frames": k, "first_target_frame": first + 1,
        "sampler": {"steps": model.steps, "sigma_max": model.sigma_max, "sigma_min": model.sigma_min},
        "one_step": one,
        "rollout": {MODEL: rollout_scores(truth, rollout, played.players),
                    COPY: rollout_scores(truth, frozen, played.players)},
        "frames": {"truth": truth, "rollout": rollout, "players": played.players},
    }


def _f(value: float, digits: int = 3) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def format_tables(result: dict) -> str:
    """Markdown tables of an `evaluate` result."""
    one, roll = result["one_step"], result["rollout"]
    n = result["games_per_player"] * len(result["players"])
    lines = [f"One step from real context, by event ({n} games: {result['games_per_player']} per player x "
             f"{', '.join(result['players'])}; {result['one_step_frames']} steps each; sampler K="
             f"{result['sampler']['steps']}). Ball right: within {BALL_RIGHT_PX} px, one ball.", "",
             "| event | count | ball right: model | copy last | constant velocity | paddle right: model | copy last "
             "| bricks right: model | brick vanishes: model |", "|---|---|---|---|---|---|---|---|---|"]
    for row in (*EVENTS, WALL, "all"):
        e = one[row]
        m, c, k = e[MODEL], e[COPY], e[CONSTANT]
        lines.append(f"| {row} | {e['count']} | {_f(m['ball_right'])} | {_f(c['ball_right'])} | "
                     f"{_f(k['ball_right'])} | {_f(m['paddle_right'])} | {_f(c['paddle_right'])} | "
                     f"{_f(m['bricks_right'])} | {_f(m.get('brick_vanishes', float('nan')))} |")
    lines.append(f"\nOne-step PSNR: model {_f(one['all'][MODEL]['psnr'], 2)} dB, copy last frame "
                 f"{_f(one['all'][COPY]['psnr'], 2)} dB; ball missing {_f(one['all'][MODEL]['ball_missing'])}, "
                 f"extra ball {_f(one['all'][MODEL]['extra_ball'])}.")
    model, frozen = roll[MODEL], roll[COPY]
    kept = model["ball_kept"]
    lines += ["", f"Autonomous rollout with the true keys ({n} games, {result['horizon']} frames). Ball-kept horizon "
              f"(frames until the ball is more than {BALL_KEPT_PX:g} px off or missing): median {kept['median']:g}, "
              f"mean {kept['mean']:.1f}; per player " +
              ", ".join(f"{p} {v:g}" for p, v in kept["per_player"].items()) + ".", "",
              "| horizon | ball within 1.5 px: model | frozen start | ball missing | extra ball | paddle right | "
              "paddle err px | brick acc | PSNR: model | frozen start |", "|---|---|---|---|---|---|---|---|---|---|"]
    for h in (str(h) for h in HORIZONS if h <= result["horizon"]):
        m, c = model["horizons"][h], frozen["horizons"][h]
        lines.append(f"| {h} | {_f(m['ball_within'])} | {_f(c['ball_within'])} | {_f(m['ball_missing'])} | "
                     f"{_f(m['extra_ball'])} | {_f(m['paddle_right'])} | {_f(m['paddle_err_px'], 2)} | "
                     f"{_f(m['brick_acc'])} | {_f(m['psnr'], 2)} | {_f(c['psnr'], 2)} |")
    return "\n".join(lines)


def checked_flags(args: argparse.Namespace, default_players: str, known: tuple[str, ...]) -> list[str]:
    """The Breakout group's counts checked, and its --players (or `default_players`) as a list of `known` names."""
    if args.games < 1 or args.horizon < 1 or args.one_step < 1:
        raise UserError("--games, --horizon and --one-step must be >= 1")
    players = [p.strip() for p in (args.players or default_players).split(",") if p.strip()]
    unknown = [p for p in players if p not in known]
    if unknown or not players:
        raise UserError(f"--players: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
    return players


def run(args: argparse.Namespace, path: Path, run, module) -> None:
    """`python -m worldmodels.evaluate` for a Breakout model (`module` None for an export): tables, JSON, pictures."""
    players = checked_flags(args, PLAYERS_DEFAULT, PLAYERS)
    model = load_model(path, None if module is None else (run, module))
    model.steps = args.steps or model.steps
    model.sigma_max = args.sigma_max or model.sigma_max
    if model.steps < 1 or not 0 < model.sigma_min < model.sigma_max:
        raise UserError(f"need steps >= 1 and 0 < sigma_min < sigma_max (got {model.steps}, {model.sigma_min}, "
                        f"{model.sigma_max})")
    result = evaluate(model, args.games, args.horizon, args.one_step, args.seed, players)
    result["model"] = model.description
    frames = result.pop("frames")
    print(format_tables(result))
    out = args.out  # `worldmodels.evaluate.main` fills in the default, <model>.eval.json
    out.write_text(json.dumps(result, indent=2) + "\n")
    # One game per player in the pictures (the first of each).
    shown = [frames["players"].index(p) for p in players]
    save_rollout_gif(frames["truth"][:, shown], frames["rollout"][:, shown], out.with_suffix(".gif"),
                     games=len(shown), labels=players)
    strip = out.with_suffix(".strip.png")
    save_rollout_strip(frames["truth"][:, shown], frames["rollout"][:, shown], strip, players)
    save_horizon_plot(result, out.with_suffix(".png"))
    print(f"\nwrote {out} and, beside it, {out.with_suffix('.gif').name} (real | model), {strip.name} (truth over "
          f"dream, every 4th frame) and {out.with_suffix('.png').name} (metrics vs horizon)")
