"""Evaluate a Flappy token world model against the real game (`python -m worldmodels.evaluate`).

Closed loop (what a player notices; `closed_loop.py`): scripted players of three skills, none of them a policy of
the training data, play the real `flappy-bird-gymnasium` and the dream (reading the dreamed state) on held-out game
seeds: score and length per skill in both, and their ratio.
Rules (`physics.py`): every dreamed transition of those games checked against the game's rules (bird motion, pipe
speed and spacing, a settled gap, a new gap's height, respawn timing and token, visibility), deaths without a
possible collision and certain collisions without a death; the same checks on the real games (all 0).
Teacher-forced (the true tokens as context, windows of whole frames, on held-out episodes of the training data, per
policy of its mix): per-field exact and within-1-bin accuracy, argmax inside the slot's legal id range, and beside
bird_y's the share of bird_y bins the game's rules guess from the same window (`rules_bird_y`, a reference); the
gap of a pipe that is already on screen ("stable", exact) and of a pipe that just appeared ("spawn": the
total-variation distance between the model's mean predicted distribution and the true spawn gaps' distribution).
Free rollout (the model's own tokens as context, the real episode's actions, from its first `start_frames`
frames), twice: with the dream's new gaps forced to the episode's own (so the dream flies the real course: drift and
deaths measure dynamics) and unforced (its own draws). The drift horizon (frames until |bird_y bin error| > 3), the
share of true deaths the model's own done token predicts within +-1 frame, the phantom-death rate (the model dies
more than one frame before the real bird, or in an episode where it did not die), the missed-death rate (the share
of true deaths the model never predicts, not even a frame late), and malformed frames (must be 0: decoding is
slot-constrained).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldmodels.core.errors import UserError
from worldmodels.core.manifest import onnx_session, read_manifest
from worldmodels.core.schema import build
from worldmodels.flappy.closed_loop import closed_loop, loop_summary, real_gaps, rule_summary
from worldmodels.flappy.collector import ensure_episodes
from worldmodels.flappy.config import CollectorConfig
from worldmodels.flappy.decoding.decoder import FrameDecoder, from_manifest
from worldmodels.flappy.decoding.pytorch import TorchBackend
from worldmodels.flappy.decoding.rules import pipe_is_new
from worldmodels.flappy.graphs import PREFILL_OUTPUTS
from worldmodels.flappy.objective import slot_legal_table
from worldmodels.flappy.physics import RULES, RuleChecker
from worldmodels.flappy.tokens import SPEC

Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (tokens (T,), positions (T,)) -> logits (T, vocab)

# The best public token Flappy model's reported figures, printed beside ours (its deaths came from a geometry check
# on the decoded state, not from the model's own done token).
REFERENCE = {"bird_y exact": 0.986, "bird_y within 1": 1.0, "stable gap exact": 0.9996, "deaths within +-1": 0.949}
DRIFT_BINS = 3


def rules_bird_hits(frames: np.ndarray) -> list[bool]:
    """For each frame after the first of one window (T, tokens_per_frame): whether the game's rules, knowing only
    the window's frames so far and its actions, guess its bird_y bin (`RuleChecker.next_bird_bin`)."""
    checker, action_id, hits = RuleChecker(), SPEC.offsets["action"], []
    checker.start(frames[0, :SPEC.state_tokens_per_frame])
    for previous, frame in zip(frames, frames[1:], strict=False):
        action = int(previous[-1]) - action_id
        hits.append(checker.next_bird_bin(action) == frame[0])
        checker.step(action, frame[:SPEC.state_tokens_per_frame])
    return hits


def teacher_forced(forward: Forward, episodes: list[np.ndarray], window_frames: int) -> dict:
    """Per-field accuracy and gap metrics with the true tokens as context."""
    fields = [slot.field for slot in SPEC.frame]
    legal = slot_legal_table(SPEC).numpy()  # (slots, vocab): the same static ranges training masks with
    per_frame = SPEC.tokens_per_frame
    hits: dict[str, list[bool]] = {}
    near: dict[str, list[bool]] = {}
    stable_gap, spawn_true, spawn_probs, rules_bird = [], [], [], []
    gap_slots = {s for s, f in enumerate(fields) if f == "gap_y"}
    gap_lo, gap_hi = SPEC.id_range("gap_y")
    for tokens in episodes:
        frames = tokens.reshape(-1, per_frame)
        for start in range(0, len(frames), window_frames):
            window = frames[start:start + window_frames].reshape(-1)
            positions = np.arange(start * per_frame, start * per_frame + len(window))
            rules_bird += rules_bird_hits(frames[start:start + window_frames])
            logits = forward(window, positions)[:-1]  # (T-1, vocab): logits[t] predicts window[t + 1]
            targets, slots = window[1:], (positions[1:] % per_frame)
            masked = np.where(legal[slots], logits, -np.inf)
            predicted = masked.argmax(-1)
            for t, (slot, target, guess) in enumerate(zip(slots, targets, predicted, strict=True)):
                field = fields[slot]
                if field == "action":
                    continue
                hits.setdefault(field, []).append(guess == target)
                if field in SPEC.ordinal_fields:
                    near.setdefault(field, []).append(abs(int(guess) - int(target)) <= 1)
                if slot in gap_slots and target != SPEC.hidden_id("gap_y"):
                    frame = (positions[t + 1]) // per_frame
                    pipe = 0 if slot < 4 else 1
                    prefix = frames[frame, :slot].tolist()
                    previous = frames[frame - 1, :SPEC.state_tokens_per_frame].tolist() if frame > 0 else None
                    if previous is not None and pipe_is_new(pipe, prefix, previous):
                        row = masked[t, gap_lo:gap_hi - 1]  # the gap bins, hidden id left out
                        p = np.exp(row - row.max())
                        spawn_probs.append(p / p.sum())
                        spawn_true.append(target - gap_lo)
                    elif previous is not None:
                        stable_gap.append(guess == target)
    out = {f"acc_{f}": float(np.mean(v)) for f, v in hits.items()}
    out.update({f"acc1_{f}": float(np.mean(v)) for f, v in near.items()})
    out["rules_bird_y"] = float(np.mean(rules_bird)) if rules_bird else float("nan")
    out["stable_gap_exact"] = float(np.mean(stable_gap)) if stable_gap else float("nan")
    out["spawn_frames"] = len(spawn_true)
    if spawn_true:
        bins = SPEC.field_named("gap_y").bins
        truth = np.bincount(spawn_true, minlength=bins) / len(spawn_true)
        out["spawn_gap_tv"] = float(0.5 * np.abs(np.mean(spawn_probs, axis=0) - truth).sum())
    return out


def free_rollout(decoder: FrameDecoder, episode: np.ndarray, start_frames: int, seed: int,
                 forced: bool = False) -> dict:
    """Play the model (`decoder`, reset here with `seed`) from the episode's first frames with its actions; compare
    with what really happened. `forced`: the dream's k-th new pipe gets the episode's k-th new gap (only the draw is
    given; `decoder` must take `choose_gap`: a per-token decoder)."""
    per_frame, action_start = SPEC.tokens_per_frame, SPEC.offsets["action"]
    frames = episode.reshape(-1, per_frame)
    bird, done_slot = SPEC.position_of("bird_y"), SPEC.position_of("done")
    true_death = int(np.flatnonzero(frames[:, done_slot] == SPEC.label_id("done", "yes"))[0]) \
        if (frames[:, done_slot] == SPEC.label_id("done", "yes")).any() else None
    start = min(start_frames, len(frames) - 1)
    decoder.reset(frames[:start].reshape(-1)[:-1], seed=seed)
    queue = real_gaps(frames[start - 1:, :SPEC.state_tokens_per_frame])
    choose = (lambda pipe: queue.pop(0) if queue else None) if forced else None
    drift, model_death, malformed = None, None, 0
    last = len(frames) - 1 if true_death is None else min(len(frames) - 1, true_death + 1)
    for t in range(start, last + 1):
        state = decoder.step(int(frames[t - 1, -1]) - action_start, choose_gap=choose)
        malformed += int(not SPEC.is_well_formed(state))
        if t < len(frames) and drift is None and abs(int(state[bird]) - int(frames[t, bird])) > DRIFT_BINS:
            drift = t - start
        if decoder.done:
            model_death = t
            break
    compared = last - start + 1
    return {
        "drift_horizon": compared if drift is None else drift, "compared_frames": compared,
        "true_death": true_death, "model_death": model_death, "malformed": malformed,
        "death_within_1": true_death is not None and model_death is not None and abs(model_death - true_death) <= 1,
        "phantom_death": model_death is not None and (true_death is None or model_death < true_death - 1),
    }


def summarize_rollouts(rows: list[dict]) -> dict:
    deaths = [r for r in rows if r["true_death"] is not None]
    return {
        "episodes": len(rows),
        "drift_horizon_mean": float(np.mean([r["drift_horizon"] for r in rows])),
        "drift_horizon_median": float(np.median([r["drift_horizon"] for r in rows])),
        "deaths_within_1": float(np.mean([r["death_within_1"] for r in deaths])) if deaths else float("nan"),
        "phantom_death_rate": float(np.mean([r["phantom_death"] for r in rows])),
        "missed_death_rate": float(np.mean([r["model_death"] is None for r in deaths])) if deaths else float("nan"),
        "malformed_frames": int(sum(r["malformed"] for r in rows)),
    }


def evaluate_flappy(forward: Forward, decoder: FrameDecoder, episodes_by_policy: dict[str, list[np.ndarray]],
                    window_frames: int, start_frames: int, seed: int = 0) -> dict:
    result: dict = {"teacher_forced": {}, "rollout": {}, "reference": REFERENCE}
    everything, all_rows = [], []
    for policy, episodes in episodes_by_policy.items():
        rows = [free_rollout(decoder, ep, start_frames, seed + i)
                for i, ep in enumerate(tqdm(episodes, desc=f"rollouts ({policy})", leave=False))]
        result["teacher_forced"][policy] = teacher_forced(forward, episodes, window_frames)
        result["rollout"][policy] = summarize_rollouts(rows)
        everything += episodes
        all_rows += rows
    result["teacher_forced"]["all"] = teacher_forced(forward, everything, window_frames)
    result["rollout"]["all"] = summarize_rollouts(all_rows)
    return result


def torch_forward(model: torch.nn.Module) -> Forward:
    @torch.no_grad()
    def forward(tokens: np.ndarray, positions: np.ndarray) -> np.ndarray:
        logits, _ = model(torch.as_tensor(tokens[None]), torch.as_tensor(positions[None]))
        return logits[0].float().numpy()

    return forward


def onnx_forward(prefill_session) -> Forward:
    """Teacher forcing through the exported prefill graph (it returns logits at every position)."""
    def forward(tokens: np.ndarray, positions: np.ndarray) -> np.ndarray:
        feeds = {"tokens": tokens[None].astype(np.int64), "positions": positions[None].astype(np.int64)}
        return prefill_session.run(PREFILL_OUTPUTS[:1], feeds)[0][0]

    return forward


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    def cell(v) -> str:
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return "-" if v != v else f"{v:.4f}" if abs(v) < 1 else f"{v:.1f}"
        return str(v)

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


LOOP_ROWS = (("games", "games"), ("real_score_mean", "mean score, real"), ("dream_score_mean", "mean score, dream"),
             ("score_ratio", "score ratio dream/real"), ("real_length_median", "median length, real"),
             ("dream_length_median", "median length, dream"), ("length_ratio", "mean length ratio"),
             ("real_cut_at_max", "real games cut at --max-frames"), ("dream_cut_at_max", "dreams cut at --max-frames"))
RULE_ROWS = tuple((f"{r}_rate", f"{r} broken (per transition)") for r in RULES) + (
    ("new_gap_legal", "new gaps legal"), ("respawn_token_present", "respawn token on respawns"),
    ("deaths_without_collision_per_game", "deaths without a collision, per game"),
    ("collisions_without_death_per_game", "collisions without a death, per game"),
    ("transitions", "transitions checked"))


def format_flappy(result: dict) -> str:
    loop, rules = result["closed_loop"], result["rules"]
    lines = ["closed loop (scripted players, held-out seeds)"]
    lines += markdown_table(["", *loop], [[label, *(loop[s][k] for s in loop)] for k, label in LOOP_ROWS])
    lines += ["", "the game's rules, on the closed-loop games"]
    lines += markdown_table(["", "dream", "real"], [[label, rules["dream"][k], rules["real"][k]]
                                                    for k, label in RULE_ROWS])
    tf, ro, fo = result["teacher_forced"], result["rollout"], result["forced_rollout"]
    policies = list(tf)
    keys = [k for k in tf["all"] if k != "spawn_frames"]
    lines += ["", "teacher-forced (held-out episodes of the training data)"]
    lines += markdown_table(["", *policies], [[k, *(tf[p].get(k, float("nan")) for p in policies)] for k in keys])
    lines += ["", "free rollout, the real episode's actions and its new gaps (forced)"]
    lines += markdown_table(["", *policies], [[k, *(fo[p][k] for p in policies)] for k in fo["all"]])
    lines += ["", "free rollout, the real episode's actions, the dream's own gaps (unforced)"]
    lines += markdown_table(["", *policies], [[k, *(ro[p][k] for p in policies)] for k in ro["all"]])
    return "\n".join(lines)


def episodes_of(manifest_path: Path) -> tuple[CollectorConfig, int]:
    """The collector config and seed that made an exported Flappy model's data (`--episodes-like`)."""
    if manifest_path.suffix not in (".json", ".onnx") or not manifest_path.with_suffix(".json").is_file():
        raise UserError(f"--episodes-like {manifest_path}: give an exported flappy .json/.onnx manifest")
    config = read_manifest(manifest_path)["training_config"]
    return build(config["data"]["collector"], CollectorConfig, "data.collector"), int(config.get("seed", 0))


def run(args: argparse.Namespace, path: Path, run, module) -> None:
    """`python -m worldmodels.evaluate` for a Flappy model (`module` None for an export): tables and JSON."""
    if min(args.episodes_per_policy, args.start_frames, args.loop_games, args.max_frames) < 1:
        raise UserError("--episodes-per-policy, --start-frames, --loop-games and --max-frames must be >= 1")
    if args.max_frames <= args.start_frames:
        raise UserError(f"--max-frames ({args.max_frames}) must be more than --start-frames ({args.start_frames})")
    collector, seed = (run.data.collector, run.seed) if args.episodes_like is None else episodes_of(args.episodes_like)
    if module is None:
        decoder = from_manifest(path)  # as the player decodes it: its graphs, cache kind and slide rule
        per_token = from_manifest(path, per_token=True)  # the same frames; it can take a given gap
        forward = onnx_forward(onnx_session(path.with_name(read_manifest(path)["prefill_onnx"])))
    else:  # the rules its export's frame graph plays by
        decoding = run.module.decoding
        decoder = per_token = FrameDecoder(TorchBackend(module.inference_net), slide_frames=decoding.slide_frames,
                                           temperature=decoding.temperature, slide_before_frame=True)
        forward = torch_forward(module.inference_net)
    # The cache of this machine (conf/paths/default.yaml's rule), not the training machine's path in the manifest:
    # the episodes are keyed by the collector config, so they are found (or rebuilt) wherever the cache lives.
    cache_dir = Path(os.environ.get("WORLDMODELS_CACHE", Path.cwd() / ".cache"))
    store = ensure_episodes(collector, cache_dir, seed)
    held_out = np.asarray(store.val_ids)
    by_policy = {}
    for name in sorted({store.policy_name(int(i)) for i in held_out}):
        ids = [int(i) for i in held_out if store.policy_name(int(i)) == name][:args.episodes_per_policy]
        by_policy[name] = [np.asarray(store.episode(i), np.int64) for i in ids]
    # Teacher forcing reads whole windows through the prefill graph, which holds at most `context` tokens; a
    # sliding-window model trained on longer windows is scored on the same windows as any other.
    window_frames = min(run.data.window_frames, run.model.context // SPEC.tokens_per_frame)
    result = {"closed_loop": {}, "rules": {}}
    pairs = closed_loop(decoder, games=args.loop_games, start_frames=args.start_frames, max_frames=args.max_frames)
    for skill, games in pairs.items():
        result["closed_loop"][skill] = loop_summary(games, args.max_frames)
    result["rules"]["dream"] = rule_summary([dream for games in pairs.values() for _, dream in games])
    result["rules"]["real"] = rule_summary([real for games in pairs.values() for real, _ in games])
    result.update(evaluate_flappy(forward, decoder, by_policy, window_frames, args.start_frames, args.seed))
    result["forced_rollout"] = {}
    everything = []
    for policy, episodes in by_policy.items():
        rows = [free_rollout(per_token, ep, args.start_frames, args.seed + i, forced=True)
                for i, ep in enumerate(tqdm(episodes, desc=f"forced-gap rollouts ({policy})", leave=False))]
        result["forced_rollout"][policy] = summarize_rollouts(rows)
        everything += rows
    result["forced_rollout"]["all"] = summarize_rollouts(everything)
    result["model"] = str(path)
    result["episodes_from"] = str(args.episodes_like or path)
    print(format_flappy(result))
    out = args.out  # `worldmodels.evaluate.main` fills in the default, <model>.eval.json
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwrote {out}")
