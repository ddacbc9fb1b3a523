"""The frame decoder (the browser's rules in Python), its KV-cache parity, the ONNX backend, and the renderer.

    python -m pytest tests/flappy/test_decoding.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from worldmodels.core.media import GAP
from worldmodels.flappy.config import TransformerConfig
from worldmodels.flappy.decoding.backends import OrtBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder
from worldmodels.flappy.decoding.pytorch import TorchBackend, decode_full_recompute
from worldmodels.flappy.decoding.rules import sample_inverse_cdf
from worldmodels.flappy.game import GEOMETRY, FlappyState
from worldmodels.flappy.media import side_by_side_gif
from worldmodels.flappy.render import BIRD, DEATH, GROUND, PIPE, SKY, render_frame
from worldmodels.flappy.tokens import SPEC
from worldmodels.flappy.transformer import TokenTransformer, export_onnx

NAN = math.nan
VISIBLE, HIDDEN = SPEC.label_id("marker", "visible"), SPEC.label_id("marker", "hidden")
PIPE_X, GAP_Y = SPEC.id_range("pipe_x")[0], SPEC.id_range("gap_y")[0]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> TokenTransformer:
    """Random weights with std 0.3, so the logits differ a lot between ids and positions."""
    torch.manual_seed(0)
    net = TokenTransformer(TransformerConfig(vocab_size=SPEC.vocab_size, layers=2, heads=2, width=32, context=60))
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    return net.eval()


def context_tokens(frames: int = 4) -> np.ndarray:
    """A real-looking start: the bird falling, pipe slot 1 still hidden; no trailing action."""
    states = [FlappyState(bird_y=100.0 + 3 * i, visible=(True, False), pipe_x=(200.0 - 4 * i, NAN),
                          gap_y=(180.0, NAN), respawn=False, done=False) for i in range(frames)]
    return SPEC.encode_episode(states, [0] * frames)[:-1]


def actions(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, n)


def test_frames_are_well_formed_and_bookkeeping_adds_up(model):
    decoder = FrameDecoder(TorchBackend(model), seed=3)
    context = context_tokens()
    decoder.reset(context, start_position=1000)
    frames = np.array([decoder.step(int(a)) for a in actions(100)])
    assert frames.shape == (100, 9) and SPEC.well_formed_frames(frames).all()
    assert decoder.tokens_generated == 900 and decoder.position == 1000 + len(context) + 1000
    history = decoder.history
    assert history[:len(context)] == context.tolist()
    generated = np.array(history[len(context):]).reshape(100, 10)  # each: the action fed, then the state made
    assert np.array_equal(generated[:, 1:], frames)
    assert np.array_equal(generated[:, 0], SPEC.offsets["action"] + actions(100))
    assert decoder.done == (frames[-1, 8] == SPEC.label_id("done", "yes"))
    with pytest.raises(ValueError, match="state frame"):
        decoder.reset(context[:-1])


def test_cached_decoding_matches_full_recompute_across_slides(model):
    decoder = FrameDecoder(TorchBackend(model), slide_frames=2)
    context = context_tokens()
    decoder.reset(context)
    uniforms = np.random.default_rng(5).random((40, 2))
    acts = actions(40)
    frames = []
    for a, u in zip(acts, uniforms, strict=True):
        frames.append(decoder.step(int(a), u))
        # The cache after any number of slides gives what a fresh forward over its window gives.
        tokens, positions = decoder.window
        assert len(tokens) <= 60 and (positions[0] % 10 == 0) and np.array_equal(np.diff(positions), np.ones(len(
            positions) - 1))
        with torch.no_grad():
            fresh = model(torch.as_tensor(tokens)[None], torch.as_tensor(positions))[0][0, -1].numpy()
        assert np.abs(decoder.logits - fresh).max() <= 1e-4
    assert decoder.slides >= 5
    reference = decode_full_recompute(model, context, acts, uniforms=uniforms, slide_frames=2)
    assert np.array_equal(np.array(frames), reference)


def test_uniforms_make_decoding_reproducible(model):
    def rollout(seed: int) -> np.ndarray:
        decoder = FrameDecoder(TorchBackend(model), seed=seed)
        decoder.reset(context_tokens())
        return np.array([decoder.step(int(a)) for a in actions(40)])

    given = np.random.default_rng(0).random((40, 2))
    decoder = FrameDecoder(TorchBackend(model), seed=99)
    decoder.reset(context_tokens())
    with_given = np.array([decoder.step(int(a), u) for a, u in zip(actions(40), given, strict=True)])
    assert np.array_equal(rollout(0), rollout(0))
    assert np.array_equal(with_given, rollout(0))  # the seed-0 Generator draws exactly these, two per frame
    assert not np.array_equal(rollout(0), rollout(1))  # random weights spawn new pipes often


def test_inverse_cdf_sampling():
    logits = np.zeros(SPEC.vocab_size, np.float32)
    legal = np.zeros(SPEC.vocab_size, bool)
    legal[GAP_Y:GAP_Y + 4] = True  # four equally likely gaps
    picks = [sample_inverse_cdf(logits, legal, u) for u in (0.0, 0.24, 0.26, 0.74, 0.76, 0.999)]
    assert picks == [GAP_Y, GAP_Y, GAP_Y + 1, GAP_Y + 2, GAP_Y + 3, GAP_Y + 3]
    logits[GAP_Y + 2] = 50.0  # all mass on one id; illegal ids never come out
    logits[GAP_Y + 10] = 100.0
    assert {sample_inverse_cdf(logits, legal, u) for u in (0.001, 0.5, 0.999)} == {GAP_Y + 2}


class ScriptedBackend:
    """Logits that favour one id per slot (`favourite`) and are flat over the gap bins, so the decoder's choice of
    greedy vs sampled is visible in the output."""

    context = 200

    def __init__(self, favourite: dict[int, int]):
        self.favourite = favourite

    def _logits(self, position: int) -> np.ndarray:
        logits = np.zeros(SPEC.vocab_size, np.float32)
        slot = (position + 1) % 10
        if slot in self.favourite:
            logits[self.favourite[slot]] = 10.0
        return logits

    def prefill(self, tokens, positions):
        return self._logits(int(positions[-1])), None

    def step(self, token, position, state):
        return self._logits(position), None


def scripted_frames(pipe0_x_bin: int, uniforms) -> np.ndarray:
    """One step from two visible pipes with pipe0 at x bin 20, the model putting pipe0 at `pipe0_x_bin`."""
    previous = [5, VISIBLE, PIPE_X + 20, GAP_Y + 30, VISIBLE, PIPE_X + 75, GAP_Y + 60,
                SPEC.label_id("respawn", "no"), SPEC.label_id("done", "no")]
    favourite = {1: VISIBLE, 2: PIPE_X + pipe0_x_bin, 4: VISIBLE, 5: PIPE_X + 100}
    decoder = FrameDecoder(ScriptedBackend(favourite))
    decoder.reset(previous)
    return decoder.step(0, uniforms)


def test_only_a_new_pipe_gets_a_sampled_gap():
    low, high = np.array([0.01, 0.01]), np.array([0.99, 0.99])
    # Respawn (pipe0 jumped right): pipe1's gap is sampled, pipe0's (the old pipe1) stays greedy.
    a, b = scripted_frames(75, low), scripted_frames(75, high)
    assert a[6] != b[6] and a[6] == GAP_Y and b[6] == GAP_Y + 95
    assert a[3] == b[3] == GAP_Y  # flat logits, greedy: the lowest id
    # Pipes moving left (and a one-bin wobble right): nothing is new, the uniforms do not matter.
    for x in (19, 21):
        assert np.array_equal(scripted_frames(x, low), scripted_frames(x, high))
    # A slot turning visible gets a sampled gap.
    previous = [5, VISIBLE, PIPE_X + 90, GAP_Y + 30, HIDDEN, PIPE_X + 128, GAP_Y + 96,
                SPEC.label_id("respawn", "no"), SPEC.label_id("done", "no")]
    gaps = []
    for u in (low, high):
        decoder = FrameDecoder(ScriptedBackend({1: VISIBLE, 2: PIPE_X + 88, 4: VISIBLE, 5: PIPE_X + 127}))
        decoder.reset(previous)
        gaps.append(decoder.step(1, u)[[3, 6]])
    assert gaps[0][0] == gaps[1][0] and gaps[0][1] != gaps[1][1]


def test_onnx_backend_matches_torch(model, tmp_path):
    export_onnx(model, tmp_path / "decode.onnx", tmp_path / "prefill.onnx")
    onnx = FrameDecoder(OrtBackend.from_files(tmp_path / "decode.onnx", tmp_path / "prefill.onnx", ring=False))
    torch_decoder = FrameDecoder(TorchBackend(model))
    for decoder in (onnx, torch_decoder):
        decoder.reset(context_tokens())
    uniforms = np.random.default_rng(2).random((50, 2))
    for a, u in zip(actions(50), uniforms, strict=True):
        assert np.array_equal(onnx.step(int(a), u), torch_decoder.step(int(a), u))
        assert np.abs(onnx.logits - torch_decoder.logits).max() <= 1e-4
    assert onnx.slides == torch_decoder.slides >= 3


def test_render_frame_draws_what_the_state_says(tmp_path):
    g, scale = GEOMETRY, 0.5
    state = FlappyState(bird_y=200.0, visible=(True, False), pipe_x=(100.0, NAN), gap_y=(180.0, NAN),
                        respawn=False, done=False)
    image = render_frame(state, scale=scale)
    assert image.shape == (256, 144, 3) and image.dtype == np.uint8

    def at(x: float, y: float) -> tuple:
        return tuple(image[int(y * scale), int(x * scale)])

    pipe_centre = 100 + g["pipe_width"] / 2
    assert at(pipe_centre, 60) == PIPE  # top pipe, above the gap
    assert at(pipe_centre, 180) == SKY  # the gap
    assert at(pipe_centre, 300) == PIPE  # bottom pipe
    assert at(90, 60) == SKY and at(100 + g["pipe_width"] + 5, 300) == SKY  # beside the pipe
    assert at(g["bird_x"] + 5, 210) == BIRD
    assert at(20, g["ground_y"] + 20) == GROUND
    # Slot 1 is hidden: whatever its (NaN) numbers, nothing is drawn right of pipe 0.
    assert (image[:int(g["ground_y"] * scale) - 1, int(160 * scale):] == SKY).all()
    # The same pipe in slot 1 is drawn when visible; a done frame gets a red border.
    shown = FlappyState(200.0, (True, True), (100.0, 200.0), (180.0, 170.0), False, True)
    image = render_frame(shown, scale=scale)
    assert at(200 + g["pipe_width"] / 2, 60) == PIPE
    assert tuple(image[0, 0]) == tuple(image[-1, 70]) == DEATH

    real = SPEC.encode_episode([state] * 3, [0] * 3)
    model_frames = SPEC.encode_episode([shown] * 2, [0] * 2).reshape(2, 10)[:, :9]
    path = side_by_side_gif(real, model_frames, tmp_path / "gif" / "rollout.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size[0] == 2 * (144 + GAP)
