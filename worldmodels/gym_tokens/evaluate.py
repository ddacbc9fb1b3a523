"""Evaluate a gym_tokens world model on its dataset's held-out episodes (`python -m worldmodels.evaluate <model>`).

    python -m worldmodels.evaluate outputs/gym_tokens/<run>/export/gym_tokens.onnx --games 16 --horizon 32

A recording has no game to play in closed loop, so the players are the held-out episodes' own (never trained on),
or, with `--recording <dataset id>`, every episode of another recording of the same game (other players).
Every number is in the observation's own units against the recorded values (not their bins), per declared field:

- one step: each frame's tokens predicted greedily from the true frames before it and the true tokens before each
  one in its frame (windows of the model's context, every frame scored with at least half a window of history),
  beside "copy the last frame" and "constant velocity" (x_t-1 + (x_t-1 - x_t-2)) in the same run; the error as a share
  of the field's range and as "within one bin"; the done token's recall on the episodes' true ends and its false
  alarms elsewhere;
- an autonomous rollout: from a random frame of each episode (the true frames before it as context, up to half the
  window), the dream runs on its own tokens (greedy, as the export's decoder) driven by the recorded actions, to
  `--horizon` frames or the episode's end; per horizon the error beside the frozen start frame, the share of games
  with every field within one bin, and whether the dream says done where the episode ended. Nothing is dropped from
  an average: a game counts at a horizon as long as its recorded episode lasts.

Prints markdown tables; writes JSON (default `<model>.eval.json`) and a picture of the first games' fields, recorded
against dreamed (`.eval.png`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldmodels.core.errors import UserError
from worldmodels.core.manifest import read_manifest
from worldmodels.flappy.decoding.backends import OrtBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder
from worldmodels.flappy.decoding.pytorch import TorchBackend
from worldmodels.flappy.tokens import TokenSpec
from worldmodels.gym_tokens.data import Recorded, RecordedEpisode, ResolvedField, read_episodes, read_recorded

HORIZONS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class TokenModel:
    """What the evaluation drives: the frame decoder's backend, logits for a whole window, and the spec."""

    backend: object
    spec: TokenSpec
    context: int
    slide_frames: int
    label: str
    prefill: object  # (tokens (T,), positions (T,)) -> logits (T, vocab)


def load_model(path: Path, run, module) -> TokenModel:
    """An exported .onnx (its manifest beside it) or a checkpoint's inference net."""
    slide = run.module.decoding.slide_frames
    if path.suffix == ".onnx":
        manifest = read_manifest(path)
        spec = TokenSpec.from_json(manifest["token_spec"])
        backend = OrtBackend.from_files(path, path.parent / manifest["prefill_onnx"],
                                        ring=manifest["decoding"]["sliding_window"])

        def prefill(tokens, positions):
            feeds = {"tokens": np.asarray(tokens, np.int64)[None], "positions": np.asarray(positions, np.int64)[None]}
            return backend.prefill_session.run(["logits"], feeds)[0][0]

        return TokenModel(backend, spec, manifest["decoding"]["context"], slide, f"export {path.name}", prefill)
    net = module.inference_net.float().eval()

    def prefill(tokens, positions):
        logits, _ = net(torch.as_tensor(np.asarray(tokens, np.int64))[None],
                        torch.as_tensor(np.asarray(positions, np.int64))[None])
        return logits[0].float().numpy()

    return TokenModel(TorchBackend(net), module.spec, run.model.context, slide, f"checkpoint {path.name}", prefill)


def greedy_frames(logits: np.ndarray, slots: np.ndarray, spec: TokenSpec) -> np.ndarray:
    """The argmax inside each slot's legal id range, for logits (N, vocab) predicting slots (N,)."""
    ranges = np.array(spec.slot_ranges())
    ids = np.arange(spec.vocab_size)
    legal = (ids[None] >= ranges[slots, 0][:, None]) & (ids[None] < ranges[slots, 1][:, None])
    return np.where(legal, logits, -np.inf).argmax(-1)


def one_step_tokens(model: TokenModel, tokens: np.ndarray) -> np.ndarray:
    """Each token of frames 1.. predicted from the true tokens before it (int64 (T, k), frame 0 left as it is)."""
    k = model.spec.tokens_per_frame
    frames = len(tokens) // k
    window = max(2, model.context // k)
    predicted = tokens.reshape(frames, k).copy()
    start = 0
    while True:
        stop = min(frames, start + window)
        chunk = tokens[start * k:stop * k]
        logits = model.prefill(chunk, start * k + np.arange(len(chunk)))
        first = 1 if start == 0 else start + window // 2  # frames scored here: at least half a window of history
        for t in range(first, stop):
            rows = np.arange((t - start) * k - 1, (t - start + 1) * k - 1)  # logits before each token of frame t
            predicted[t] = greedy_frames(logits[rows], np.arange(k), model.spec)
        if stop == frames:
            return predicted
        start += window - window // 2


def values_of(spec: TokenSpec, fields: list[ResolvedField], frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(field values (T, F) at their bins' centres, done (T,)) of token frames (T, k)."""
    decoded = spec.decode_values(frames)
    return np.stack([decoded[f.name] for f in fields], 1), decoded["done"]


def bins_of(spec: TokenSpec, fields: list[ResolvedField], values: np.ndarray) -> np.ndarray:
    return np.stack([spec.to_bins(f.name, values[:, i]) for i, f in enumerate(fields)], 1)


def one_step(model: TokenModel, recorded: Recorded, episodes: list[RecordedEpisode]) -> dict:
    spec, fields = model.spec, recorded.fields
    span = np.array([f.high - f.low for f in fields])
    errors = {"model": [], "copy_last": [], "constant_velocity": []}
    within = {"model": [], "copy_last": [], "constant_velocity": []}
    done_hits, done_ends, false_alarms, non_ends = 0, 0, 0, 0
    for episode in tqdm(episodes, desc="one step", unit="episode", leave=False):
        truth = episode.observations
        if len(truth) < 3:
            continue
        predicted = one_step_tokens(model, recorded.tokens(episode))
        values, done = values_of(spec, fields, predicted[:, :spec.state_tokens_per_frame])
        rows = np.arange(2, len(truth))  # constant velocity needs two frames before
        guesses = {"model": values[rows], "copy_last": truth[rows - 1][:, [f.index for f in fields]],
                   "constant_velocity": (2 * truth[rows - 1] - truth[rows - 2])[:, [f.index for f in fields]]}
        target = truth[rows][:, [f.index for f in fields]]
        target_bins = bins_of(spec, fields, target)
        for name, guess in guesses.items():
            errors[name].append(np.abs(guess - target) / span)
            within[name].append((np.abs(bins_of(spec, fields, guess) - target_bins) <= 1).all(1))
        ends = np.zeros(len(truth), bool)
        ends[-1] = episode.terminated
        done_hits += int((done[1:] & ends[1:]).sum())
        done_ends += int(ends[1:].sum())
        false_alarms += int((done[1:] & ~ends[1:]).sum())
        non_ends += int((~ends[1:]).sum())
    if not errors["model"]:
        raise UserError("evaluate: no held-out episode has 3 frames or more")
    result = {}
    for name in errors:
        e, w = np.concatenate(errors[name]), np.concatenate(within[name])
        result[name] = {"frames": len(e), "error_share_of_range": float(e.mean()),
                        "error_by_field": {f.name: float(e[:, i].mean()) for i, f in enumerate(fields)},
                        "within_one_bin": float(w.mean())}
    result["done"] = {"ends": done_ends, "recall": done_hits / done_ends if done_ends else None,
                      "false_alarm_rate": false_alarms / max(1, non_ends)}
    return result


def rollout(model: TokenModel, recorded: Recorded, episodes: list[RecordedEpisode], horizon: int, seed: int
            ) -> tuple[dict, list[tuple[np.ndarray, np.ndarray]]]:
    spec, fields = model.spec, recorded.fields
    k, columns = spec.tokens_per_frame, [f.index for f in fields]
    span = np.array([f.high - f.low for f in fields])
    half = max(1, model.context // k // 2)
    rng = np.random.default_rng([seed, 7])
    horizons = [h for h in HORIZONS if h <= horizon]
    scores = {h: {"model": [], "frozen": [], "within": []} for h in horizons}
    ends, early, shown = {"ends": 0, "said_done": 0}, 0, []
    for episode in tqdm(episodes, desc="rollout", unit="episode", leave=False):
        frames = len(episode.observations)
        if frames < 2:
            continue
        start = int(rng.integers(0, max(1, frames - 1 - horizon // 2)))  # the last real frame
        first = max(0, start - half + 1)
        tokens = recorded.tokens(episode)
        decoder = FrameDecoder(model.backend, spec, slide_frames=model.slide_frames)
        decoder.reset(tokens[first * k:(start + 1) * k - 1], start_position=first * k)
        steps = min(horizon, frames - 1 - start)
        dream = np.array([decoder.step(int(episode.actions[start + t])) for t in range(steps)]).reshape(steps, -1)
        values, done = values_of(spec, fields, dream)
        truth = episode.observations[start + 1:start + 1 + steps][:, columns]
        frozen = np.repeat(episode.observations[start:start + 1, columns], steps, 0)
        within = (np.abs(bins_of(spec, fields, values) - bins_of(spec, fields, truth)) <= 1).all(1)
        for h in horizons:
            if h <= steps:
                scores[h]["model"].append(float((np.abs(values[h - 1] - truth[h - 1]) / span).mean()))
                scores[h]["frozen"].append(float((np.abs(frozen[h - 1] - truth[h - 1]) / span).mean()))
                scores[h]["within"].append(bool(within[h - 1]))
        true_end = (start + 1 + np.arange(steps) == frames - 1) & episode.terminated
        early += int((done & ~true_end).any())
        if episode.terminated and start + steps == frames - 1:
            ends["ends"] += 1
            ends["said_done"] += int(done[-1])
        if len(shown) < 3:
            shown.append((episode.observations[start:start + 1 + steps][:, columns],
                          np.concatenate([episode.observations[start:start + 1, columns], values])))
    games = sum(1 for e in episodes if len(e.observations) >= 2)
    table = {str(h): {"games": len(s["model"]), "error_model": _mean(s["model"]), "error_frozen": _mean(s["frozen"]),
                      "within_one_bin": _mean(s["within"])} for h, s in scores.items()}
    return {"games": games, "by_horizon": table, "early_done": early / max(1, games),
            "end_recall": ends["said_done"] / ends["ends"] if ends["ends"] else None, "ends": ends["ends"]}, shown


def _mean(values) -> float | None:
    return float(np.mean(values)) if values else None


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_tables(result: dict) -> str:
    o, fields = result["one_step"], result["fields"]
    which = "held-out episodes" if result["held_out"] else "episodes (never trained on)"
    lines = [f"# {result['model']}: {result['games']} {which} of {result['dataset_id']}", "",
             "## One step (true frames before), error as a share of each field's range", "",
             "| | frames | mean error | " + " | ".join(f["name"] for f in fields) + " | every field within 1 bin |",
             "|---|---|---|" + "---|" * len(fields) + "---|"]
    for name in ("model", "copy_last", "constant_velocity"):
        r = o[name]
        lines.append(f"| {name} | {r['frames']} | {_f(r['error_share_of_range'], 4)} | "
                     + " | ".join(_f(r["error_by_field"][f["name"]], 4) for f in fields)
                     + f" | {_f(r['within_one_bin'])} |")
    d = o["done"]
    lines += ["", f"Done token: recall {_f(d['recall'])} on {d['ends']} true ends, false alarms "
                  f"{_f(d['false_alarm_rate'], 4)} of other frames.", "",
              "## Autonomous rollout (recorded actions)", "",
              "| horizon | games | error model | error frozen start | every field within 1 bin |",
              "|---|---|---|---|---|"]
    r = result["rollout"]
    for h, row in r["by_horizon"].items():
        lines.append(f"| {h} | {row['games']} | {_f(row['error_model'], 4)} | {_f(row['error_frozen'], 4)} | "
                     f"{_f(row['within_one_bin'])} |")
    lines += ["", f"Dreams that said done before the recording ended: {_f(r['early_done'])}; done on the "
                  f"recording's end: {_f(r['end_recall'])} of {r['ends']} ends reached."]
    return "\n".join(lines)


def save_picture(shown: list, fields: list[ResolvedField], path: Path) -> None:
    """Recorded (grey) against dreamed (colour) values of each field, one column per game."""
    import matplotlib  # heavy (~1 s): only the picture pays for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use, so the headless backend is the one loaded

    figure, axes = plt.subplots(len(fields), len(shown), figsize=(3.2 * len(shown), 1.6 * len(fields)),
                                squeeze=False, sharex="col")
    for g, (truth, dream) in enumerate(shown):
        for i, f in enumerate(fields):
            ax = axes[i, g]
            ax.plot(truth[:, i], color="0.6", lw=2, label="recorded")
            ax.plot(dream[:, i], color="C1", lw=1, label="dream")
            ax.set_ylim(f.low, f.high)
            if g == 0:
                ax.set_ylabel(f.name)
        axes[0, g].set_title(f"game {g + 1}")
        axes[-1, g].set_xlabel("frames after the last real one")
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def run(args: argparse.Namespace, path: Path, run, module) -> None:
    """`python -m worldmodels.evaluate` for a gym_tokens model: tables, JSON and a picture."""
    if args.games < 1 or args.horizon < 1:
        raise UserError("--games and --horizon must be >= 1")
    recorded = read_recorded(run.data)
    model = load_model(path, run, module)
    if model.spec.to_json() != recorded.spec.to_json():
        raise UserError(f"{path}: its token spec differs from the one {run.data.dataset_id} gives now (the dataset "
                        "changed since training); retrain, or evaluate on the dataset it was trained on")
    dataset_id, episodes = run.data.dataset_id, recorded.held_out
    if args.recording:
        dataset_id, (episodes, names) = args.recording, read_episodes(run.data, args.recording)
        width = recorded.train[0].observations.shape[1]
        if names != recorded.action_names or episodes[0].observations.shape[1] != width:
            raise UserError(f"--recording: {args.recording} has actions {', '.join(names)} and "
                            f"{episodes[0].observations.shape[1]}-number observations; the model was trained on "
                            f"{', '.join(recorded.action_names)} and {width} numbers (not the same game)")
    episodes = episodes[:args.games]
    result = {"model": model.label, "dataset_id": dataset_id, "held_out": not args.recording, "games": len(episodes),
              "fields": [asdict(f) for f in recorded.fields],
              "one_step": one_step(model, recorded, episodes)}
    result["rollout"], shown = rollout(model, recorded, episodes, args.horizon, args.seed)
    print(format_tables(result))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    save_picture(shown, recorded.fields, args.out.with_suffix(".png"))
    print(f"\nwrote {args.out} and, beside it, {args.out.with_suffix('.png').name} (recorded | dreamed fields)")
