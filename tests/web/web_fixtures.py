"""Parity fixtures for the web player's TypeScript unit tests: small exported models plus the Python reference's
outputs for fixed inputs, so the TS sampler and decoder can be pinned to `worldmodels/breakout/sampler.py` and
`worldmodels/flappy/decoding/rules.py`.

    python tests/web/web_fixtures.py OUT_DIR          # then: cd web && WM_FIXTURES=OUT_DIR npx vitest run

tests/web/test_web.py writes them into a temporary folder for every run, so the two sides cannot drift apart unnoticed.
`write_flappy_sprites` writes the real env's own rendered frames for the browser tests (web/e2e/browser.mjs compares
the player's sprite drawing with them). `write_flappy_agent` pins the player's Flappy agent (its observation, the bird's
motion, the pipes' order and the policy's logits) to `worldmodels/dream/flappy.py` and the collector. `write_gym_pixels`
trains a real `task=gym_pixels debug=smoke` model for the dreamed pixel game's tests (unit and browser).
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_breakout(out: Path, context_frames: int = 4) -> None:
    """A small random-init Breakout export (breakout.onnx + breakout.json) that sees `context_frames` frames, and
    sampler.json: real simulator context frames for two games, their actions, fixed noise, the first denoiser input
    and `sample_next_frame`'s outputs (float32 and bytes) for several step counts, computed with onnxruntime on the
    exported graph."""
    import base64
    import json

    import numpy as np
    import onnxruntime
    import torch
    from omegaconf import OmegaConf

    from worldmodels.breakout.denoiser import (
        INPUT_NAME,
        OUTPUT_NAME,
        TinyDenoiser,
        denoiser_input,
        frames_to_tensor,
        tensor_to_frames,
    )
    from worldmodels.breakout.export import export_breakout
    from worldmodels.breakout.sampler import sample_next_frame, sigma_schedule
    from worldmodels.breakout.sim import BreakoutSim
    from worldmodels.core.config import compose_config
    from worldmodels.tasks import validate

    def b64(array, dtype) -> str:
        return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()

    out = Path(out)
    cfg = compose_config(["task=breakout", "debug=smoke", f"model.context_frames={context_frames}"], str(out))
    run = validate(cfg)
    torch.manual_seed(0)
    net = TinyDenoiser(run.model)
    for p in net.parameters():  # zero-initialized blocks would leave part of the graph untested
        torch.nn.init.normal_(p, std=0.1)
    onnx_path, manifest_path, _ = export_breakout(net, run, OmegaConf.to_container(cfg, resolve=True), out)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def denoise(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

    # Two games, 40 steps of scripted play; the last context_frames frames of each are the context.
    sim = BreakoutSim([3, 4])
    frames = [sim.render()]
    for t in range(40):
        sim.step(np.array([t % 3, (t // 4) % 3]))
        frames.append(sim.render())
    shown = np.stack(frames[-context_frames:], axis=1)  # (2, K, 64, 64, 3)
    actions = torch.tensor([2, 1])
    noise = torch.randn((2, 3, 64, 64), generator=torch.Generator().manual_seed(1))
    context = frames_to_tensor(torch.from_numpy(shown))
    sampler = run.module.sampler

    cases = []
    for steps, sigma_max in ((1, sampler.sigma_max), (2, sampler.sigma_max), (4, sampler.sigma_max), (3, 0.5)):
        pred = sample_next_frame(denoise, context, actions, steps, sigma_max, sampler.sigma_min, noise=noise)
        cases.append({"steps": steps, "sigma_max": sigma_max, "sigma_min": sampler.sigma_min,
                      "sigmas": sigma_schedule(steps, sigma_max, sampler.sigma_min),
                      "pred_f32": b64(pred, np.float32), "bytes_u8": b64(tensor_to_frames(pred), np.uint8)})
    # The first denoiser call of the default sampler, to pin the input layout (19 channels with 4 frames).
    sigma = sigma_schedule(sampler.steps, sampler.sigma_max, sampler.sigma_min)[0]
    first_input = denoiser_input(context[:, -1] + sigma * noise, context, actions, torch.full((2,), sigma))
    fixture = {
        "onnx": onnx_path.name,
        "manifest": manifest_path.name,
        "batch": 2,
        "context_frames": context_frames,
        "context_frames_u8": b64(shown, np.uint8),  # (2, K, 64, 64, 3)
        "actions": actions.tolist(),
        "noise_f32": b64(noise, np.float32),  # (2, 3, 64, 64)
        "first_input": {"steps": sampler.steps, "sigma": sigma, "input_f32": b64(first_input, np.float32)},
        "cases": cases,
    }
    (out / "sampler.json").write_text(json.dumps(fixture) + "\n")


# Flappy cases: a small model whose window slides every couple of frames, and the default shape (conf/model).
FLAPPY_CASES = {
    "small": {"overrides": ["model.layers=2", "model.heads=2", "model.width=32", "model.context=80",
                            "data.window_frames=8", "module.decoding.slide_frames=2"],
              "context_frames": 12, "start_position": 1230, "frames": 120, "weight_std": 0.3},
    "default": {"overrides": [], "context_frames": 38, "start_position": 0, "frames": 100, "weight_std": 0.1},
    "ring": {"overrides": ["model.layers=2", "model.heads=2", "model.width=32", "model.context=80",
                           "model.sliding_window=true", "data.window_frames=16"],
             "context_frames": 12, "start_position": 1230, "frames": 120, "weight_std": 0.3},
}
FLAPPY_MIN_MARGIN = 1e-4  # a greedy choice closer than this to a tie could flip between onnxruntime builds


def _flappy_plain(value):
    """JSON-ready: numpy values as Python ones, NaN as None (JSON has no NaN)."""
    value = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, dict):
        return {k: _flappy_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_flappy_plain(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def _flappy_json(path: Path, data: dict) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_flappy_plain(data), allow_nan=False))


def _flappy_openings(count: int, frames: int) -> list:
    """Real game openings (the heuristic player): `frames` frames, the last without its action."""
    from worldmodels.flappy.game import FlappyGame, HeuristicPolicy, record_episode
    from worldmodels.flappy.tokens import SPEC

    openings = []
    for seed in range(count):
        states, actions, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=seed, max_frames=frames + 1)
        if len(states) <= frames:
            raise RuntimeError(f"flappy fixture: the heuristic player died within {frames} frames (seed {seed})")
        openings.append(SPEC.encode_episode(states, actions)[:frames * SPEC.tokens_per_frame - 1])
    return openings


class _StepRecorder:
    """A Backend wrapper keeping the logits of every decode step (each is the basis of one choice)."""

    def __init__(self, backend):
        self.backend, self.context, self.logits = backend, backend.context, []
        self.ring = getattr(backend, "ring", False)

    def prefill(self, tokens, positions):
        return self.backend.prefill(tokens, positions)

    def step(self, token, position, state):
        logits, state = self.backend.step(token, position, state)
        self.logits.append(logits)
        return logits, state


class _HashBackend:
    """Model-free logits, a fixed integer hash of (last token, its position) / 64: exact in float32, with ties, so
    the TS decoder's rules (window, slides, ties, new pipes, sampling) can be pinned without onnxruntime. The TS test
    computes the same formula."""

    context = 60

    def __init__(self, ring: bool = False):
        self.ring = ring  # a ring never slides: the same logits, other bookkeeping

    @staticmethod
    def logits(token: int, position: int):
        import numpy as np

        from worldmodels.flappy.tokens import SPEC

        ids = np.arange(SPEC.vocab_size, dtype=np.int64)
        return (((ids * 7919 + position * 104729 + token * 1299709) % 1009) / 64).astype(np.float32)

    def prefill(self, tokens, positions):
        return self.logits(int(tokens[-1]), int(positions[-1])), None

    def step(self, token, position, state):
        return self.logits(token, position), None


def _choice_margins(frames, histories, step_logits, uniforms, temperature) -> dict:
    """How far every choice was from flipping: greedy top-1 minus top-2 logit, and for sampled gaps the distance
    of u * total from the nearest cdf step (relative). Also how many sampled gaps differ from the greedy pick."""
    import math

    import numpy as np

    from worldmodels.flappy.decoding.rules import greedy, pipe_is_new
    from worldmodels.flappy.tokens import SPEC

    gaps = {i: slot.pipe for i, slot in enumerate(SPEC.frame) if slot.field == "gap_y"}
    greedy_margin, cdf_margin, sampled, sampled_not_greedy = math.inf, math.inf, 0, 0
    for f, (frame, previous) in enumerate(zip(frames, histories, strict=True)):
        for s in range(SPEC.state_tokens_per_frame):
            logits = step_logits[f * SPEC.tokens_per_frame + s]
            ids = np.flatnonzero(SPEC.legal_mask(s, frame[:s]))
            if s in gaps and pipe_is_new(gaps[s], list(frame[:s]), previous):
                z = logits[ids].astype(np.float64) / temperature
                cdf = np.cumsum(np.exp(z - z.max()))
                cdf_margin = min(cdf_margin, float(np.abs(cdf - uniforms[f][gaps[s]] * cdf[-1]).min() / cdf[-1]))
                sampled += 1
                sampled_not_greedy += int(frame[s] != greedy(logits, SPEC.legal_mask(s, frame[:s])))
            elif len(ids) > 1:
                top = np.sort(logits[ids])[-2:]
                greedy_margin = min(greedy_margin, float(top[1] - top[0]))
    return {"min_greedy_margin": greedy_margin, "min_cdf_margin": cdf_margin, "sampled_gaps": sampled,
            "sampled_not_greedy": sampled_not_greedy}


def _reference_decode(backend, context, start: int, slide_frames: int, temperature: float, frames: int,
                      seed: int, frame_graph: bool = False) -> dict:
    """The reference decoder over `backend` for `frames` frames with random actions and given uniforms: FrameDecoder
    (one call per token), or with `frame_graph` FrameGraphDecoder over a frame backend (its passes per frame too)."""
    import numpy as np

    from worldmodels.flappy.decoding.decoder import FrameDecoder, FrameGraphDecoder
    from worldmodels.flappy.tokens import SPEC

    if frame_graph:
        recorder = None
        decoder = FrameGraphDecoder(backend, slide_frames=slide_frames, temperature=temperature)
    else:
        recorder = _StepRecorder(backend)
        decoder = FrameDecoder(recorder, slide_frames=slide_frames, temperature=temperature)
    decoder.reset(context, start_position=start)
    rng = np.random.default_rng(seed)
    actions, uniforms = rng.integers(0, 2, frames), rng.random((frames, 2))
    made, done, slides, previous, passes, logits = [], [], [], [], [], []
    for action, u in zip(actions, uniforms, strict=True):
        previous.append(decoder.history[-SPEC.state_tokens_per_frame:])
        made.append(decoder.step(int(action), u).tolist())
        done.append(decoder.done)
        slides.append(decoder.slides)
        if frame_graph:
            passes.append(decoder.passes - sum(passes))
            logits += list(decoder.frame_logits)
    window_tokens, window_positions = decoder.window
    return {"context": context, "start_position": start, "slide_frames": slide_frames, "temperature": temperature,
            "actions": actions, "uniforms": uniforms, "frames": made, "done": done, "slides": slides,
            "passes": passes, "history": decoder.history, "final_position": decoder.position,
            "window_start_position": int(window_positions[0]), "window_length": len(window_tokens),
            "margins": _choice_margins(made, previous, logits if frame_graph else recorder.logits, uniforms,
                                       temperature)}


def _write_flappy_case(out: Path, case: dict, seed: int) -> dict:
    """Export a random-init TokenTransformer of the case's shape and decode with the reference on onnxruntime."""
    import json

    import torch
    from omegaconf import OmegaConf

    from worldmodels.core.config import compose_config
    from worldmodels.flappy.decoding.backends import OrtBackend, OrtFrameBackend
    from worldmodels.flappy.export import export_flappy
    from worldmodels.flappy.tokens import SPEC
    from worldmodels.flappy.transformer import TokenTransformer
    from worldmodels.tasks import validate

    cfg = compose_config(["task=flappy", *case["overrides"]], output_dir=str(out))
    run = validate(cfg)
    run.model.vocab_size = SPEC.vocab_size
    torch.manual_seed(seed)
    net = TokenTransformer(run.model)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 2:  # spread the logits so that no greedy choice is a near-tie
                p.normal_(0, case["weight_std"])
    openings = _flappy_openings(3, case["context_frames"])
    onnx_path, manifest_path, _ = export_flappy(net.eval(), run, OmegaConf.to_container(cfg, resolve=True), out,
                                                start_contexts=[o.tolist() for o in openings])
    manifest = json.loads(manifest_path.read_text())
    decoding, prefill = manifest["decoding"], out / manifest["prefill_onnx"]
    ring = decoding["sliding_window"]
    summary = {}
    for name, backend, frame_graph in (
            ("decoder", OrtBackend.from_files(onnx_path, prefill, ring=ring), False),
            ("frame_decoder", OrtFrameBackend.from_files(out / manifest["frame_onnx"], prefill, ring=ring), True)):
        reference = _reference_decode(backend, openings[1], case["start_position"], decoding["slide_frames"],
                                      decoding["temperature"], case["frames"], seed, frame_graph)
        margins = reference["margins"]
        if margins["min_greedy_margin"] < FLAPPY_MIN_MARGIN or margins["min_cdf_margin"] < 1e-6:
            raise RuntimeError(f"flappy fixture: a near-tie choice in {name} ({margins}); pick another seed")
        _flappy_json(out / f"{name}.json", {"manifest": manifest_path.name, **reference})
        summary[name] = {"frames": case["frames"], "slides": reference["slides"][-1],
                         "passes": sum(reference["passes"]), **margins}
    return summary


def _write_hash_case(out: Path, context, seed: int, ring: bool = False) -> dict:
    """The reference decoder over _HashBackend (exact ties, frequent new pipes), for the model-free TS test."""
    reference = _reference_decode(_HashBackend(ring), context, 70, slide_frames=3, temperature=0.7, frames=200,
                                  seed=seed)
    if reference["margins"]["min_cdf_margin"] < 1e-6:
        raise RuntimeError(f"flappy fixture: a near-tie sample ({reference['margins']}); pick another seed")
    _flappy_json(out / "decoder.json", {"backend": "hash", "context_size": _HashBackend.context, "ring": ring,
                                        **reference})
    return {"frames": 200, "slides": reference["slides"][-1], **reference["margins"]}


def _flappy_spec_checks(out: Path) -> None:
    """Python's legal masks, decoded values, well-formedness, choice rules and rendered frames for the TS unit tests."""
    import base64
    import math

    import numpy as np

    from worldmodels.flappy.decoding.rules import frame_guess, pipe_is_new, sample_inverse_cdf
    from worldmodels.flappy.game import FlappyGame, FlappyState, HeuristicPolicy, record_episode
    from worldmodels.flappy.render import render_frame
    from worldmodels.flappy.tokens import SPEC

    states, actions, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=0, max_frames=200)
    frames = SPEC.encode_episode(states, actions).reshape(-1, SPEC.tokens_per_frame)
    respawn = next(t for t, s in enumerate(states) if s.respawn)
    picked = [0, 1, 40, respawn - 1, respawn, len(frames) - 1]  # slot 1 hidden, both visible, a respawn
    dead = SPEC.encode_frame(FlappyState(bird_y=380.0, visible=(True, True), pipe_x=(-50.0, 100.0),
                                         gap_y=(150.0, 220.0), respawn=False, done=True), 1)
    hidden0 = SPEC.encode_frame(FlappyState(bird_y=-96.0, visible=(False, False), pipe_x=(math.nan, math.nan),
                                            gap_y=(math.nan, math.nan), respawn=True, done=False), 0)
    examples = [frames[t] for t in picked] + [dead, hidden0]
    legal = [{"slot": s, "prefix": frame[:s], "legal": np.flatnonzero(SPEC.legal_mask(s, frame[:s]))}
             for frame in examples for s in range(SPEC.tokens_per_frame)]
    decoded = []
    for frame in examples:
        for width in (SPEC.tokens_per_frame, SPEC.state_tokens_per_frame):
            state, action = SPEC.decode_frame(frame[:width])
            decoded.append({"tokens": frame[:width], "bird_y": state.bird_y, "visible": state.visible,
                            "pipe_x": state.pipe_x, "gap_y": state.gap_y, "respawn": state.respawn,
                            "done": state.done, "action": action})
    bad = [examples[2].copy() for _ in range(4)]
    bad[0][2] = SPEC.hidden_id("pipe_x")  # visible marker, hidden x
    bad[1][4], bad[1][5] = SPEC.label_id("marker", "hidden"), SPEC.offsets["pipe_x"] + 3  # hidden marker, a bin
    bad[2][0] = SPEC.offsets["marker"]  # a marker id in the bird slot
    bad[3][9] = SPEC.offsets["done"]  # a done id in the action slot
    well_formed = [{"tokens": f, "ok": SPEC.is_well_formed(f)} for f in [*examples, *bad, examples[2][:9]]]
    new_pipe = []
    for t in range(1, len(frames)):
        for pipe, slot in ((0, 3), (1, 6)):
            new_pipe.append({"pipe": pipe, "prefix": frames[t][:slot], "previous": frames[t - 1][:9],
                             "new": pipe_is_new(pipe, list(frames[t][:slot]), frames[t - 1][:9])})
    guesses = [{"history": history, "guess": frame_guess(history)}
               for history in (frames[max(0, t - 3):t].reshape(-1)[:-1] for t in range(1, len(frames)))]
    rng = np.random.default_rng(7)
    sampling = []
    for temperature in (1.0, 0.5, 2.0):
        for _ in range(10):
            logits = (rng.normal(size=SPEC.vocab_size) * 3).astype(np.float32)
            u = float(rng.random())
            sampling.append({"logits": logits, "u": u, "temperature": temperature,
                             "id": sample_inverse_cdf(logits, SPEC.legal_mask(3, examples[2][:3]), u, temperature)})
    render = []  # render_frame of the decoded tokens: a frame with two pipes, a respawn, a death
    for frame in (examples[2], examples[4], dead):
        image = render_frame(SPEC.decode_frame(frame)[0], scale=0.5)
        render.append({"tokens": frame, "scale": 0.5, "shape": image.shape,
                       "rgb_b64": base64.b64encode(image.tobytes()).decode()})
    _flappy_json(out / "spec.json", {"token_spec": SPEC.to_json(), "legal": legal, "decoded": decoded,
                                    "well_formed": well_formed, "pipe_is_new": new_pipe, "guesses": guesses,
                                    "sampling": sampling,
                                    "sampling_slot": 3, "sampling_prefix": examples[2][:3], "render": render})


def write_flappy(out: Path) -> None:
    """Flappy exports (a small model whose window slides often, the default shape, a small sliding-window model;
    random init) with the reference decoders' frames on onnxruntime: `<case>/decoder.json` (FrameDecoder, one call
    per token) and `<case>/frame_decoder.json` (FrameGraphDecoder) next to `<case>/flappy.json` and its graphs;
    `hash/decoder.json`, `hash_ring/decoder.json` (the decoder over _HashBackend, ordered window and ring);
    `spec.json` (token spec checks, choice rules, rendered frames); `cases.json`. Read by web/tests/flappy_*.test.ts."""
    import torch

    out = Path(out)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _flappy_spec_checks(out)
        summary = {name: _write_flappy_case(out / name, case, seed=1) for name, case in FLAPPY_CASES.items()}
        summary["hash"] = _write_hash_case(out / "hash", _flappy_openings(1, 4)[0], seed=2)
        summary["hash_ring"] = _write_hash_case(out / "hash_ring", _flappy_openings(1, 4)[0], seed=2, ring=True)
    finally:
        torch.set_num_threads(threads)
    _flappy_json(out / "cases.json", {"onnx_cases": list(FLAPPY_CASES), "hash_cases": ["hash", "hash_ring"],
                                      "summary": summary})


ROTATION_ANGLES = (-90, -87, -60, -33, -9, -3, 0, 17, 20, 45, 90, 180)  # the bird turns by 3 degrees in [-90, 20]


def write_sprite_checks(out: Path, seed: int = 5, give_up: int = 400) -> None:
    """What the player's sprite renderer must reproduce without a canvas, read by web/tests/flappy_sprites.test.ts:
    `rotations.json`, pygame.transform.rotate of a random 34 x 24 RGBA pattern (the bird sprite's size; some pixels
    transparent) at `ROTATION_ANGLES`, source and results as base64 RGBA rows; `poses.json`, one real game (the
    scripted player, giving up after `give_up` steps) as the tokens see it, each step's state (FlappyGame's two
    slots) and action with the env's own pose after it: visible rotation, wing frame, base x, score."""
    import base64
    import json
    import os

    import numpy as np

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    rgba = np.random.default_rng(0).integers(0, 256, (24, 34, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rgba[..., 3] < 64, 0, 255)
    surface = pygame.Surface((34, 24), pygame.SRCALPHA, 32)
    pygame.surfarray.pixels3d(surface)[:] = rgba[..., :3].transpose(1, 0, 2)
    pygame.surfarray.pixels_alpha(surface)[:] = rgba[..., 3].T

    def pixels(surf) -> dict:
        data = np.dstack([pygame.surfarray.array3d(surf).transpose(1, 0, 2), pygame.surfarray.array_alpha(surf).T])
        return {"width": surf.get_width(), "height": surf.get_height(),
                "rgba_b64": base64.b64encode(np.ascontiguousarray(data).tobytes()).decode()}

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rotations.json").write_text(json.dumps({
        "source": pixels(surface),
        "rotations": [{"degrees": a, **pixels(pygame.transform.rotate(surface, a))} for a in ROTATION_ANGLES]}))

    from flappy_bird_gymnasium.envs.constants import PLAYER_ROT_THR

    from worldmodels.flappy.game import FlappyGame, HeuristicPolicy

    game, policy = FlappyGame(), HeuristicPolicy()
    env = game.env.unwrapped

    def frame(state) -> dict:
        return {"birdY": state.bird_y, "respawn": state.respawn, "done": state.done, "action": None,
                "pipes": [{"visible": v, "x": x if v else None, "gapY": g if v else None}
                          for v, x, g in zip(state.visible, state.pipe_x, state.gap_y, strict=True)]}

    def pose() -> dict:
        return {"rotation": min(env._player_rot, PLAYER_ROT_THR), "wing": env._player_idx,
                "groundX": env._ground["x"], "score": game.score}

    steps = [{"state": frame(game.reset(seed)), "pose": pose()}]
    while not game.done:
        action = policy(game.obs) if len(steps) < give_up else 0
        steps.append({"action": action, "state": frame(game.step(action)), "pose": pose()})
    assert steps[-1]["pose"]["score"] >= 3, "the scripted player should pass a few pipes"
    _flappy_json(out / "poses.json", {"seed": seed, "steps": steps})


def write_flappy_sprites(path: Path, seed: int = 3, give_up: int = 150) -> Path:
    """The real flappy-bird-gymnasium's rgb_array frames (its own sprite renderer) at a few steps of one game, with
    the state and pose that made each: bird y, every pipe (x, gap centre), the visible rotation, wing frame and base
    x, read from the env's objects. The scripted player stops flapping after `give_up` steps, so the bird falls to
    the ground. Frames are picked to cover a just-flapped and a falling bird, each wing frame and a pipe at a
    fractional x. One JSON file; RGB rows as base64."""
    import base64
    import json

    import gymnasium
    from flappy_bird_gymnasium.envs.constants import PIPE_HEIGHT, PLAYER_ROT_THR

    from worldmodels.flappy.game import HeuristicPolicy

    env = gymnasium.make("FlappyBird-v0", use_lidar=False, render_mode="rgb_array")
    game = env.unwrapped
    obs, _ = env.reset(seed=seed)
    policy, wanted, frames = HeuristicPolicy(), {}, []
    for step in range(1, 10 * give_up):
        obs, _, terminated, truncated, _ = env.step(policy(obs) if step < give_up else 0)
        if terminated or truncated:
            break
        pipes = list(zip(game._upper_pipes, game._lower_pipes, strict=True))
        traits = {f"wing {game._player_idx}", "flapped" if game._player_rot > PLAYER_ROT_THR else "",
                  "falling" if game._player_rot < -30 else "",
                  "fractional pipe" if any(0 < u["x"] < 288 and u["x"] % 1 for u, _ in pipes) else ""} - {""}
        if not traits - set(wanted):
            continue
        wanted.update(dict.fromkeys(traits, step))
        frames.append({
            "step": step,
            "state": {"birdY": float(game._player_y), "respawn": False, "done": False, "action": None,
                      "pipes": [{"visible": True, "x": float(u["x"]), "gapY": (u["y"] + PIPE_HEIGHT + low["y"]) / 2}
                                for u, low in pipes]},
            "pose": {"rotation": min(game._player_rot, PLAYER_ROT_THR), "wing": game._player_idx,
                     "groundX": game._ground["x"], "score": None},
            "rgb_b64": base64.b64encode(env.render().tobytes()).decode(),
        })
    env.close()
    missing = {"wing 0", "wing 1", "wing 2", "flapped", "falling", "fractional pipe"} - set(wanted)
    assert not missing, f"seed {seed}: no frame with {missing} in its game"
    path = Path(path)
    path.write_text(json.dumps({"width": 288, "height": 512, "frames": frames}))
    return path


AGENT_POLICY = Path(__file__).resolve().parents[2] / "models" / "flappy_agent" / "policy.json"


def write_flappy_agent(out: Path, policy: Path = AGENT_POLICY) -> Path:
    """What the player's Flappy agent (web/src/flappy/agent.ts) must compute, read by web/tests/flappy_agent.test.ts:
    `agent.json` with `worldmodels.dream.flappy.features` of decoded token states (hand-made ones: every pipe x bin,
    hidden slots, equal x, the bird above the screen; and real frames) for several velocities and rotations, each
    also through `worldmodels.flappy.collector.pipes_ahead_first`; pipes_ahead_first of raw observations at the
    passed/not-passed boundary; `BirdMotion` over action sequences (flaps above the ceiling ignored, velocity and
    rotation at their limits); `DreamGame` replaying real start contexts (20 frames and a single one) and following
    the next frames: each frame's observation as the policy sees it, and the policy's logits for it (onnxruntime on
    the `policy` graph, copied beside as policy.json + its .onnx). Returns `out`."""
    import json
    import math
    import shutil

    import numpy as np
    import onnxruntime

    from worldmodels.dream.flappy import BirdMotion, DreamGame, features
    from worldmodels.flappy.collector import pipes_ahead_first
    from worldmodels.flappy.game import FlappyGame, FlappyState, HeuristicPolicy, record_episode
    from worldmodels.flappy.tokens import SPEC

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per, n = SPEC.state_tokens_per_frame, SPEC.tokens_per_frame

    def tokens_of(bird_y, visible, pipe_x, gap_y, respawn=False):
        state = FlappyState(bird_y=bird_y, visible=visible, pipe_x=pipe_x, gap_y=gap_y, respawn=respawn, done=False)
        return SPEC.encode_frame(state, 0)[:per]

    nan = math.nan
    frames = [tokens_of(200.0, (True, True), (100.0, 250.0), (160.0, 210.0)),
              tokens_of(-80.0, (False, True), (nan, 120.0), (nan, 180.0), respawn=True),
              tokens_of(380.0, (False, False), (nan, nan), (nan, nan)),
              tokens_of(10.0, (True, True), (140.0, 140.0), (150.0, 219.0)),  # equal x: the sort keeps slot order
              tokens_of(300.0, (True, False), (287.0, nan), (200.0, nan))]
    pipe_x = SPEC.field_named("pipe_x")
    for b in range(pipe_x.bins):  # every x bin, one pipe passed or not, beside another
        x = float(SPEC.from_bins("pipe_x", b))
        frames.append(tokens_of(150.0 + b, (True, True), (x, 200.0), (150.0 + b % 70, 190.0)))
    states, actions, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=1, max_frames=120)
    real = SPEC.encode_episode(states, actions).reshape(-1, n)
    frames += [real[t][:per] for t in range(0, len(real), 7)]
    motions = [(-9.0, 45.0), (10.0, -90.0), (3.0, -12.0), (0.0, 0.0)]
    feature_cases = []
    for i, tokens in enumerate(frames):
        state, _ = SPEC.decode_frame(tokens)
        velocity, rotation = motions[i % len(motions)]
        obs = features(state, velocity, rotation)
        feature_cases.append({"tokens": tokens, "velocity": velocity, "rotation": rotation, "features": obs,
                              "ordered": pipes_ahead_first(obs)})

    edge = (57 - 52) / 288  # x * 288 + 52 < 57 decides "passed"
    rng = np.random.default_rng(3)
    below = edge - 1e-16  # the largest x here that is passed: x * 288 + 52 rounds to 57 above it
    raw = [np.array([edge, .1, .3, below, .2, .4, np.nextafter(edge, 1), .3, .5, .5, .1, .2]),
           np.array([below, .1, .3, edge, .2, .4, below - 0.01, .3, .5, .5, .1, .2]),
           np.array([1.0, 0.0, 1.0, -0.1, .2, .4, .4, .3, .5, .5, .1, .2]),
           np.array([-0.05, .1, .3, -0.1, .2, .4, -0.15, .3, .5, .5, .1, .2])]  # all passed: order kept
    raw += [np.concatenate([rng.choice([rng.uniform(-0.2, 1.0), edge, below], size=3)[:, None] * [1, 0, 0]
                            + rng.uniform(0, 1, (3, 3)) * [0, 1, 1], rng.uniform(-1, 1, 3)], axis=None)
            for _ in range(30)]
    reorder_cases = [{"obs": o, "ordered": pipes_ahead_first(o)} for o in raw]

    motion_cases = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        motion, steps = BirdMotion(), []
        flap_rate = (0.5, 0.05, 0.9, 0.3)[seed]
        for _ in range(80):
            action, y = int(rng.random() < flap_rate), float(rng.uniform(-120, 400))
            motion.step(action, y)
            steps.append({"action": action, "y_before": y, "velocity": motion.velocity, "rotation": motion.rotation})
        motion_cases.append(steps)

    shutil.copy(policy, out / "policy.json")
    manifest = json.loads(policy.read_text())
    shutil.copy(policy.parent / manifest["onnx"], out / manifest["onnx"])
    session = onnxruntime.InferenceSession(str(out / manifest["onnx"]), providers=["CPUExecutionProvider"])
    dream_cases = []
    for seed, context_frames in ((0, 20), (2, 20), (4, 1)):
        states, actions, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=seed, max_frames=90)
        real = SPEC.encode_episode(states, actions).reshape(-1, n)
        context = real[:context_frames].reshape(-1)[:-1]
        game = DreamGame(SPEC, max_frames=10_000)
        game.start(context)
        steps = []
        for t in range(context_frames, len(real)):
            obs = pipes_ahead_first(game.observation())
            logits = session.run([manifest["output"]["name"]],
                                 {manifest["input"]["name"]: obs[None].astype(np.float32)})[0][0]
            action = int(real[t - 1][per] - SPEC.offsets["action"])
            steps.append({"obs": obs, "velocity": game.motion.velocity, "rotation": game.motion.rotation,
                          "logits": logits, "policy_action": int(np.argmax(logits)), "action": action,
                          "tokens": real[t][:per]})
            game.advance(action, real[t][:per])
        dream_cases.append({"seed": seed, "context": context, "steps": steps})
    _flappy_json(out / "agent.json", {"token_spec": SPEC.to_json(), "policy": "policy.json",
                                      "features": feature_cases, "pipes_ahead_first": reorder_cases,
                                      "motion": motion_cases, "dreams": dream_cases})
    return out


def write_gym_pixels(out: Path) -> Path:
    """A real `python -m worldmodels.train task=gym_pixels debug=smoke` run's export (gym_pixels.onnx + gym_pixels.json:
    CartPole, 2 actions), with `start_frames.json`, each manifest start strip as Python decodes it (`png_frames`, uint8
    (4, S, S, 3) as base64; web/e2e/browser.mjs checks the browser's decoding against it), and `sampler.json`, the
    sampler's first denoiser input and `sample_next_frame`'s outputs from the first start strip under the last action
    with fixed noise, on onnxruntime (web/tests/pixels_sampler.test.ts). Returns `out`."""
    import base64
    import json
    import os
    import shutil
    import subprocess
    import tempfile

    import numpy as np
    import onnxruntime
    import torch

    from worldmodels.breakout.denoiser import denoiser_input, frames_to_tensor, tensor_to_frames
    from worldmodels.breakout.sampler import sample_next_frame, sigma_schedule
    from worldmodels.pixels.data import png_frames

    def b64(array, dtype) -> str:
        return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode()

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="gym-pixels-smoke-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
        result = subprocess.run([sys.executable, "-m", "worldmodels.train", "task=gym_pixels", "debug=smoke",
                                 "logger=csv", f"hydra.run.dir={tmp}/run"], cwd=root,
                                env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
        if result.returncode:
            raise RuntimeError(f"task=gym_pixels debug=smoke failed:\n{result.stderr[-3000:]}")
        for name in ("gym_pixels.json", "gym_pixels.onnx"):
            shutil.copy(Path(tmp) / "run" / "export" / name, out / name)
    manifest = json.loads((out / "gym_pixels.json").read_text())
    strips = [png_frames(s) for s in manifest["start_frames"]]  # each (4, S, S, 3)
    (out / "start_frames.json").write_text(json.dumps({"shape": list(strips[0].shape),
                                                       "frames_u8": [b64(s, np.uint8) for s in strips]}))

    session = onnxruntime.InferenceSession(str(out / "gym_pixels.onnx"), providers=["CPUExecutionProvider"])
    input_name, output_name = manifest["inputs"][0]["name"], manifest["outputs"][0]["name"]

    def denoise(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([output_name], {input_name: x.numpy()})[0])

    num_actions, sampler = manifest["num_actions"], manifest["sampler"]
    context = frames_to_tensor(torch.from_numpy(strips[0][None]))  # (1, 4, 3, S, S)
    action = torch.tensor([num_actions - 1])
    noise = torch.randn(context[:, -1].shape, generator=torch.Generator().manual_seed(3))
    cases = []
    for steps, sigma_max in ((1, sampler["sigma_max"]), (sampler["steps"], sampler["sigma_max"]), (3, 0.5)):
        pred = sample_next_frame(denoise, context, action, steps, sigma_max, sampler["sigma_min"], noise=noise,
                                 num_actions=num_actions)
        cases.append({"steps": steps, "sigma_max": sigma_max, "pred_f32": b64(pred, np.float32),
                      "bytes_u8": b64(tensor_to_frames(pred), np.uint8)})
    sigma = sigma_schedule(sampler["steps"], sampler["sigma_max"], sampler["sigma_min"])[0]
    first = denoiser_input(context[:, -1] + sigma * noise, context, action, torch.full((1,), sigma), num_actions)
    (out / "sampler.json").write_text(json.dumps({
        "action": int(action[0]), "noise_f32": b64(noise, np.float32),
        "first_input": {"sigma": sigma, "input_f32": b64(first, np.float32)}, "cases": cases}) + "\n")
    return out


def write_all(out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_breakout(out / "breakout")
    write_breakout(out / "breakout8", context_frames=8)
    write_flappy(out / "flappy")
    write_sprite_checks(out / "sprites")
    write_flappy_agent(out / "flappy_agent")
    write_gym_pixels(out / "gym_pixels")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/web/web_fixtures.py OUT_DIR")
    print(write_all(Path(sys.argv[1])))
