"""The frame graph (one call per Flappy frame): its in-graph rules against token_sampling's, its frames against the
per-token decoder's (window slides, sampled gaps, respawns), its ONNX export, and the export's frame.onnx.

    python -m pytest tests/flappy/test_frame_graph.py
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from worldmodels.flappy import frame_graph as fg
from worldmodels.flappy.config import TransformerConfig
from worldmodels.flappy.decoding.backends import OrtBackend, OrtFrameBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder, FrameGraphDecoder
from worldmodels.flappy.decoding.pytorch import TorchBackend, TorchFrameBackend, decode_full_recompute
from worldmodels.flappy.decoding.rules import (
    frame_guess,
    frame_rules,
    greedy,
    pipe_is_new,
    sample_inverse_cdf,
    sampled_gaps,
)
from worldmodels.flappy.frame_graph import export_frame_onnx, frame_graph_example
from worldmodels.flappy.game import FlappyGame, FlappyState, HeuristicPolicy, record_episode
from worldmodels.flappy.graphs import FRAME_OUTPUTS, frame_inputs
from worldmodels.flappy.tokens import SPEC
from worldmodels.flappy.transformer import TokenTransformer, export_onnx

RULES = frame_rules(SPEC)
VISIBLE, HIDDEN = SPEC.label_id("marker", "visible"), SPEC.label_id("marker", "hidden")
PIPE_X, GAP_Y = SPEC.id_range("pipe_x")[0], SPEC.id_range("gap_y")[0]
NO_RESPAWN, NOT_DONE = SPEC.label_id("respawn", "no"), SPEC.label_id("done", "no")
IDS = torch.arange(SPEC.vocab_size)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sharp_model(context: int, seed: int = 2, sliding_window: bool = False) -> TokenTransformer:
    """Random weights with std 0.3: logits far from ties, and pipes that often turn visible or respawn."""
    torch.manual_seed(seed)
    net = TokenTransformer(TransformerConfig(vocab_size=SPEC.vocab_size, layers=2, heads=2, width=32,
                                             context=context, sliding_window=sliding_window))
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    return net.eval()


@pytest.fixture(scope="module")
def model() -> TokenTransformer:
    return sharp_model(context=60)


def opening(frames: int = 4) -> np.ndarray:
    """Both pipes visible, pipe 0 near the left edge (so a respawn is close); no trailing action."""
    states = [FlappyState(bird_y=100.0 + 3 * i, visible=(True, True), pipe_x=(20.0 - 4 * i, 200.0 - 4 * i),
                          gap_y=(180.0, 150.0), respawn=False, done=False) for i in range(frames)]
    return SPEC.encode_episode(states, [0] * frames)[:-1]


def rollout(decoder, context, actions, uniforms) -> np.ndarray:
    decoder.reset(context)
    return np.array([decoder.step(int(a), u) for a, u in zip(actions, uniforms, strict=True)])


def inputs(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, n), rng.random((n, 2))


def as_frame(tokens) -> list[torch.Tensor]:
    return [torch.tensor([int(t)]) for t in tokens]


# ---- the in-graph rules against token_sampling's --------------------------------------------------------------

def example_frames() -> np.ndarray:
    """Consecutive real frames (one pipe, two pipes, respawns) and crafted pairs around the respawn threshold."""
    states, actions, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=0, max_frames=200)
    real = SPEC.encode_episode(states, actions).reshape(-1, SPEC.tokens_per_frame)[:, :9]
    assert sum(s.respawn for s in states) >= 1
    previous = [5, VISIBLE, PIPE_X + 20, GAP_Y + 30, VISIBLE, PIPE_X + 75, GAP_Y + 60, NO_RESPAWN, NOT_DONE]
    crafted = []
    for x0, marker1 in ((52, VISIBLE), (51, VISIBLE), (19, VISIBLE), (21, VISIBLE), (60, HIDDEN), (10, HIDDEN)):
        hidden1 = marker1 == HIDDEN
        now = [7, VISIBLE, PIPE_X + x0, GAP_Y + 3, marker1, SPEC.hidden_id("pipe_x") if hidden1 else PIPE_X + 90,
               SPEC.hidden_id("gap_y") if hidden1 else GAP_Y + 4, NO_RESPAWN, NOT_DONE]
        crafted += [previous, now]
    appeared = [[5, VISIBLE, PIPE_X + 90, GAP_Y + 30, HIDDEN, SPEC.hidden_id("pipe_x"), SPEC.hidden_id("gap_y"),
                 NO_RESPAWN, NOT_DONE],
                [5, VISIBLE, PIPE_X + 88, GAP_Y + 30, VISIBLE, PIPE_X + 127, GAP_Y + 5, NO_RESPAWN, NOT_DONE]]
    return np.concatenate([real, np.array(crafted + appeared)])


def test_in_graph_rules_match_token_sampling():
    frames = example_frames()
    new_pipes = respawns = 0
    for t in range(len(frames)):
        frame = frames[t].tolist()
        legal = fg.legal_masks(RULES, torch.tensor(frame), IDS).numpy()  # every slot at once, given the frame
        for s in range(SPEC.state_tokens_per_frame):
            assert np.array_equal(legal[s], SPEC.legal_mask(s, frame[:s])), (t, s)
        if t == 0:
            continue
        previous = frames[t - 1].tolist()
        new = fg.new_pipes(RULES, torch.tensor(frame), torch.tensor(previous))  # every pipe slot at once
        for pipe, slot in ((0, 3), (1, 6)):
            got = bool(new[pipe])
            assert got == pipe_is_new(pipe, frame[:slot], previous), (t, pipe)
            new_pipes += got
        respawns += frame[2] - previous[2] >= 32 and previous[1] == frame[1] == VISIBLE
    assert new_pipes >= 4 and respawns >= 3  # both outcomes and the respawn branch were exercised


def test_in_graph_choice_matches_greedy_and_inverse_cdf():
    rng = np.random.default_rng(0)
    visible_prefix = [5, VISIBLE, PIPE_X + 40]
    legal = SPEC.legal_mask(3, visible_prefix)
    start, bins = GAP_Y, SPEC.field_named("gap_y").bins
    for temperature in (1.0, 0.5, 2.0):
        for u in (0.0, 0.3, 0.999999, *rng.random(7)):
            logits = (rng.normal(size=SPEC.vocab_size) * 3).astype(np.float32)
            got = fg.sample_bins(torch.from_numpy(logits)[None], start, bins, torch.tensor([u], dtype=torch.float64),
                                 torch.tensor([temperature], dtype=torch.float64))
            assert int(got) == sample_inverse_cdf(logits, legal, u, temperature)
    # All slots at once: a tie at pipe 0's gap (a pipe already shown: greedy) goes to the lowest id; pipe 1 turns
    # visible, so its gap is sampled with its uniform.
    previous = [5, VISIBLE, PIPE_X + 41, GAP_Y + 3, HIDDEN, SPEC.hidden_id("pipe_x"), SPEC.hidden_id("gap_y"),
                NO_RESPAWN, NOT_DONE]
    frame = [6, VISIBLE, PIPE_X + 40, GAP_Y + 3, VISIBLE, PIPE_X + 127, GAP_Y + 9, NO_RESPAWN, NOT_DONE]
    logits = (rng.normal(size=(9, SPEC.vocab_size))).astype(np.float32)
    logits[3, GAP_Y + 50] = logits[3, GAP_Y + 7] = 10.0
    u = np.array([0.25, 0.75])
    choice = fg.choose(RULES, torch.from_numpy(logits), torch.tensor(frame), torch.tensor(previous),
                       torch.from_numpy(u), torch.tensor([1.0], dtype=torch.float64), IDS).tolist()
    for s in range(9):
        legal = SPEC.legal_mask(s, frame[:s])
        expected = sample_inverse_cdf(logits[s], legal, u[1]) if s == 6 else greedy(logits[s], legal)
        assert choice[s] == expected, s
    assert choice[3] == GAP_Y + 7


def test_frame_guess_continues_the_motion():
    def frame(bird, x0, x1, shown1=True):
        return [bird, VISIBLE, PIPE_X + x0, GAP_Y + 3, VISIBLE if shown1 else HIDDEN,
                PIPE_X + x1 if shown1 else SPEC.hidden_id("pipe_x"), GAP_Y + 9 if shown1 else SPEC.hidden_id("gap_y"),
                NO_RESPAWN, NOT_DONE]

    def history(*frames):
        return [t for f in frames for t in (*f, 360)][:-1]

    # Pipes repeat the step before last (1, 2, 1, ...); the bird moves by its mean last step, rounded half up.
    guess = frame_guess(history(frame(40, 60, 110), frame(37, 58, 108), frame(35, 57, 107))).tolist()
    assert guess == frame(33, 55, 105)  # bird: 35 + (35 - 40) / 2 = 32.5, half up: 33
    hidden = frame_guess(history(frame(40, 60, 110, False), frame(37, 58, 108), frame(35, 57, 107))).tolist()
    assert hidden == frame(33, 55, 107)  # pipe 1 was not seen three times: it repeats
    assert frame_guess(history(frame(4, 3, 90), frame(2, 1, 88), frame(0, 0, 87)))[:3].tolist() == [
        0, VISIBLE, PIPE_X]  # clamped at bin 0
    assert frame_guess(history(frame(37, 58, 108), frame(35, 57, 107))).tolist() == frame(35, 57, 107)  # 2 frames


# ---- frames against the per-token decoder ---------------------------------------------------------------------

def test_frame_graph_makes_the_per_token_decoders_frames_across_slides(model):
    actions, uniforms = inputs(80)
    context = opening()
    per_token = FrameDecoder(TorchBackend(model), slide_frames=2, slide_before_frame=True)
    per_frame = FrameGraphDecoder(TorchFrameBackend(model), slide_frames=2)
    expected = rollout(per_token, context, actions, uniforms)
    frames = []
    per_frame.reset(context)
    for a, u in zip(actions, uniforms, strict=True):
        frames.append(per_frame.step(int(a), u))
        tokens, positions = per_frame.window  # a frame-aligned window with room, consistent with a fresh forward
        assert len(tokens) <= 60 and positions[0] % 10 == 0 and len(tokens) % 10 == 9
        with torch.no_grad():
            fresh = model(torch.as_tensor(tokens)[None], torch.as_tensor(positions))[0][0, -1].numpy()
        assert np.abs(per_frame.logits - fresh).max() <= 1e-4
    assert np.array_equal(np.array(frames), expected)
    assert per_frame.history == per_token.history and per_frame.slides == per_token.slides >= 20
    assert per_frame.tokens_generated == 720 and per_frame.position == per_token.position
    assert 80 <= per_frame.passes <= 800  # at least one pass a frame, at most one per token
    sampled, after_respawn = sampled_gaps(expected, context[-9:])
    assert sampled >= 10 and after_respawn >= 3
    # The uniforms are what the sampled gaps come from: another stream changes some of them, nothing else.
    other = rollout(FrameGraphDecoder(TorchFrameBackend(model), slide_frames=2), context, actions, 1 - uniforms)
    assert not np.array_equal(other, expected)
    reference = decode_full_recompute(model, context, actions[:30], uniforms[:30], slide_frames=2,
                                      slide_before_frame=True)
    assert np.array_equal(reference, expected[:30])


def test_frames_do_not_depend_on_the_guess(model, monkeypatch):
    actions, uniforms = inputs(40, seed=5)
    decoder = FrameGraphDecoder(TorchFrameBackend(model), slide_frames=2)
    expected = rollout(decoder, opening(), actions, uniforms)
    truth = iter(expected)  # an oracle guess: the frame itself, which one pass confirms
    monkeypatch.setattr(FrameGraphDecoder, "first_guess", lambda self, action_id: next(truth))
    assert np.array_equal(rollout(decoder, opening(), actions, uniforms), expected) and decoder.passes == 40
    monkeypatch.setattr(FrameGraphDecoder, "first_guess", lambda self, action_id: np.zeros(9, np.int64))
    assert np.array_equal(rollout(decoder, opening(), actions, uniforms), expected)
    assert 40 < decoder.passes <= 400  # more passes, never more than one per token


def test_the_graph_predicts_the_next_frames_first_slot_after_a_noop():
    model = sharp_model(context=60, sliding_window=True)  # a ring: the next frame sees what the graph saw
    decoder = FrameGraphDecoder(TorchFrameBackend(model), slide_frames=2)
    decoder.reset(opening())
    actions, uniforms = inputs(60, seed=7)
    hits = noops = 0
    for a, u in zip(actions, uniforms, strict=True):
        predicted = decoder.next_first
        frame = decoder.step(int(a), u)
        if predicted is not None and a == 0:
            noops += 1
            hits += int(frame[0] == predicted)
    assert noops >= 20 and hits == noops


def test_ring_cache_frames_match_the_per_token_decoder_and_never_slide():
    model = sharp_model(context=60, sliding_window=True)
    actions, uniforms = inputs(90, seed=6)
    per_token = FrameDecoder(TorchBackend(model), slide_frames=2)
    per_frame = FrameGraphDecoder(TorchFrameBackend(model), slide_frames=2)
    expected = rollout(per_token, opening(), actions, uniforms)
    assert np.array_equal(rollout(per_frame, opening(), actions, uniforms), expected)
    assert per_frame.slides == per_token.slides == 0
    tokens, positions = per_frame.window  # the ring holds the newest 60 tokens
    assert len(tokens) == 60 and positions[-1] == per_frame.position - 1
    reference = decode_full_recompute(model, opening(), actions[:20], uniforms[:20], slide_frames=2)
    assert np.array_equal(reference, expected[:20])


def test_frame_aligned_slides_are_the_default_rule_when_context_is_9_mod_10():
    model = sharp_model(context=59)
    actions, uniforms = inputs(40, seed=3)
    default = FrameDecoder(TorchBackend(model), slide_frames=2)
    per_frame = FrameGraphDecoder(TorchFrameBackend(model), slide_frames=2)
    assert np.array_equal(rollout(per_frame, opening(), actions, uniforms),
                          rollout(default, opening(), actions, uniforms))
    assert per_frame.slides == default.slides >= 10
    with pytest.raises(ValueError, match="no room"):  # the backend refuses a frame that does not fit
        per_frame.backend.frame(360, per_frame.position, (*per_frame._state[:2], torch.tensor([55])),
                                opening()[-9:], opening()[-9:], np.zeros(2), 1.0)


# ---- ONNX ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sliding_window", [False, True])
def test_onnx_frame_graph_matches_pytorch(tmp_path, sliding_window):
    model = sharp_model(context=60, sliding_window=sliding_window)
    paths = {name: tmp_path / f"{name}.onnx" for name in ("decode", "prefill", "frame")}
    export_onnx(model, paths["decode"], paths["prefill"], dynamic_batch=False)
    export_frame_onnx(model, RULES, paths["frame"])
    session = ort.InferenceSession(str(paths["frame"]), providers=["CPUExecutionProvider"])
    # The web player binds these names: spelled out so that renaming a constant fails loudly.
    assert [i.name for i in session.get_inputs()] == frame_inputs(2) == [
        "action", "position", "k_cache_0", "k_cache_1", "v_cache_0", "v_cache_1", "cache_len", "previous", "guess",
        "uniforms", "temperature"]
    assert session.get_inputs()[2].shape == [1, 2, 60, 16]  # (1, heads, context, head_dim): one input per layer
    assert [o.name for o in session.get_outputs()] == FRAME_OUTPUTS == [
        "state", "logits", "k_frame", "v_frame", "slots", "passes", "next_first"]
    assert [i.type for i in session.get_inputs()][-4:] == [
        "tensor(int64)", "tensor(int64)", "tensor(double)", "tensor(double)"]
    assert [n.op_type for n in onnx.load(str(paths["frame"])).graph.node].count("Loop") == 1

    # One call from a prefilled window at a large position, against the PyTorch module.
    context = opening(5)
    positions = np.arange(100_000, 100_000 + len(context))
    graph = fg.FrameGraph(model, RULES).eval()
    with torch.no_grad():
        _, k, v, length = model.prefill(torch.as_tensor(context)[None], torch.as_tensor(positions)[None])
        example = frame_graph_example(model, RULES)
        call = (torch.tensor([361]), torch.tensor([positions[-1] + 1]), k, v, length,
                torch.as_tensor(context[-9:]), torch.as_tensor(context[-9:]),
                torch.tensor([0.2, 0.7], dtype=torch.float64), torch.tensor([0.8], dtype=torch.float64))
        assert all(a.shape == b.shape and a.dtype == b.dtype for a, b in zip(call, example, strict=True))
        expected = [t.numpy() for t in graph(*call)]
    per_layer = [*call[2].unbind(0), *call[3].unbind(0)]
    feeds = [call[0], call[1], *per_layer, *call[4:]]
    got = session.run(FRAME_OUTPUTS, {n: t.numpy() for n, t in zip(frame_inputs(2), feeds, strict=True)})
    assert np.array_equal(got[0], expected[0]) and got[0].shape == (9,)
    assert got[1].shape == (10, SPEC.vocab_size) and np.abs(got[1] - expected[1]).max() <= 1e-4
    assert got[2].shape == (2, 1, 2, 10, 16) and np.abs(got[2] - expected[2]).max() <= 1e-4
    assert np.abs(got[3] - expected[3]).max() <= 1e-4
    first = len(context) if not sliding_window else (positions[-1] + 1) % 60
    assert got[4].tolist() == [(first + i) % 60 for i in range(10)] and got[5] == expected[5] >= 2
    assert got[6] == expected[6] and SPEC.id_range("bird_y")[0] <= int(got[6][0]) < SPEC.id_range("bird_y")[1]

    # A whole game on onnxruntime: frame graph vs decode graph, same actions and uniforms.
    actions, uniforms = inputs(60, seed=4)
    per_token = FrameDecoder(OrtBackend.from_files(paths["decode"], paths["prefill"], ring=sliding_window),
                             slide_frames=2, slide_before_frame=True)
    per_frame = FrameGraphDecoder(OrtFrameBackend.from_files(paths["frame"], paths["prefill"], ring=sliding_window),
                                  slide_frames=2)
    frames = rollout(per_frame, opening(), actions, uniforms)
    assert np.array_equal(frames, rollout(per_token, opening(), actions, uniforms))
    assert per_frame.slides == per_token.slides and (per_frame.slides == 0) == sliding_window
    assert sampled_gaps(frames, opening()[-9:])[0] >= 1
    torch_frames = rollout(FrameGraphDecoder(TorchFrameBackend(model), slide_frames=2), opening(), actions, uniforms)
    assert np.array_equal(frames, torch_frames)


def test_export_writes_the_frame_graph(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from worldmodels.core.config import compose_config
    from worldmodels.flappy import export
    from worldmodels.tasks import validate

    cfg = compose_config(["task=flappy", "model.layers=2", "model.heads=2", "model.width=32", "model.context=80",
                          "data.window_frames=8", "module.decoding.slide_frames=2"], output_dir=str(tmp_path))
    run = validate(cfg)
    run.model.vocab_size = SPEC.vocab_size
    net = sharp_model(context=80)  # the run's model shape
    assert net.cfg == run.model
    states, acts, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=0, max_frames=12)
    start = SPEC.encode_episode(states, acts)[:-1].tolist()
    onnx_path, manifest_path, _ = export.export_flappy(net, run, OmegaConf.to_container(cfg, resolve=True),
                                                       tmp_path / "out", start_contexts=[start])
    manifest = json.loads(manifest_path.read_text())
    assert manifest["frame_onnx"] == "flappy.frame.onnx" and manifest["format_version"] == 1
    spec = manifest["frame_graph"]
    assert spec["tokens_per_call"] == 10 and spec["parity"]["identical_frames"]
    assert spec["parity"]["frames"] == export.FRAME_PARITY_FRAMES and spec["parity"]["max_abs_diff"] <= 1e-4
    frame_path = onnx_path.with_name(manifest["frame_onnx"])
    session = ort.InferenceSession(str(frame_path), providers=["CPUExecutionProvider"])
    dtypes = {"tensor(int64)": "int64", "tensor(float)": "float32", "tensor(double)": "float64"}
    for declared, actual in ((spec["inputs"], session.get_inputs()), (spec["outputs"], session.get_outputs())):
        assert [(d["name"], d["shape"], d["dtype"]) for d in declared] == [
            (a.name, a.shape, dtypes[a.type]) for a in actual]
    props = {p.key: p.value for p in onnx.load(str(frame_path)).metadata_props}
    decode_props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert props == {**decode_props, "worldmodels.graph": "frame"}

    # A frame graph that disagrees fails the export before anything is written.
    bad = dict(spec["parity"], identical_frames=False)
    monkeypatch.setattr(export, "flappy_frame_parity", lambda *args, **kwargs: bad)
    with pytest.raises(export.ExportError, match="frame graph"):
        export.export_flappy(net, run, {}, tmp_path / "bad", start_contexts=[start])
    assert not (tmp_path / "bad").exists()

