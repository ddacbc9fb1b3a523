"""The denoiser, its 19-channel input contract, and the reference warm-start sampler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from worldmodels.breakout.config import DenoiserConfig, FastDenoiserConfig
from worldmodels.breakout.denoiser import (
    INPUT_CHANNELS,
    FastDenoiser,
    TinyDenoiser,
    build_denoiser,
    conv_flops,
    denoiser_input,
    frames_to_tensor,
    tensor_to_frames,
)
from worldmodels.breakout.sampler import dream_rollout, sample_next_frame, sigma_schedule
from worldmodels.breakout.sim import PALETTE


def test_seed_config_parameter_count():
    assert 2_300_000 <= TinyDenoiser(DenoiserConfig()).num_parameters() <= 2_500_000


def test_shapes_and_range():
    net = TinyDenoiser(DenoiserConfig(width=8, blocks=3, dilations=[1, 2]))
    out = net(torch.randn(2, INPUT_CHANNELS, 64, 64) * 3)
    assert out.shape == (2, 3, 64, 64)
    assert out.abs().max() <= 1.0


def test_conv_flops_counts_every_convolution():
    net = TinyDenoiser(DenoiserConfig(width=8, blocks=2))
    pixels = 64 * 64
    stem, block, head = 19 * 8 * 9 * pixels, 8 * 8 * 9 * pixels, 8 * 3 * 9 * pixels
    assert conv_flops(net) == 2 * (stem + 4 * block + head)
    up = FastDenoiser(FastDenoiserConfig(widths=[4, 8], blocks=[0, 0]))
    # stem 19->4 at 64x64, down 4->8 at 32x32, transposed 8->4 (2x2, stride 2: one tap per output), head 4->3
    assert conv_flops(up) == 2 * (19 * 4 * 9 * pixels + 4 * 8 * 9 * pixels // 4 + 8 * 4 * pixels + 4 * 3 * 9 * pixels)


def test_fast_denoiser_is_ten_times_cheaper_than_the_seed_net():
    seed, fast = conv_flops(TinyDenoiser(DenoiserConfig())), conv_flops(FastDenoiser(FastDenoiserConfig()))
    assert seed / fast >= 10, (seed, fast)


def test_fast_denoiser_starts_by_copying_the_newest_frame_and_stays_in_range():
    net = FastDenoiser(FastDenoiserConfig(widths=[4, 8, 8], blocks=[1, 0, 2]))
    x = torch.randn(2, INPUT_CHANNELS, 32, 32) * 3
    out = net(x)
    assert out.shape == (2, 3, 32, 32)
    assert torch.equal(out, x[:, 12:15].clamp(-1, 1))  # zero head: the newest context frame, clamped
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    out = net(x)
    assert out.abs().max() <= 1.0 and not torch.equal(out, x[:, 12:15].clamp(-1, 1))
    out.sum().backward()  # every parameter is used
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_build_denoiser_from_a_manifest_model_entry():
    net = build_denoiser({"name": "fast_denoiser", "widths": [4, 8], "blocks": [1, 1], "dilations": [1],
                          "parameters": 123})
    assert isinstance(net, FastDenoiser) and net.stem.out_channels == 4
    assert isinstance(build_denoiser(DenoiserConfig(width=8, blocks=1)), TinyDenoiser)


def test_fast_denoiser_config_errors_name_the_key():
    from worldmodels.core.schema import ConfigError

    with pytest.raises(ConfigError, match="model.blocks: must give a count >= 0 for each of the 3 widths"):
        FastDenoiserConfig(widths=[4, 8, 16], blocks=[1, 1]).validate("model")
    with pytest.raises(ConfigError, match="model.widths"):
        FastDenoiserConfig(widths=[], blocks=[]).validate("model")


def test_input_channel_order():
    noisy = torch.full((1, 3, 4, 4), 0.5)
    context = torch.stack([torch.full((3, 4, 4), float(i)) for i in range(4)])[None]  # frame i filled with i
    x = denoiser_input(noisy, context, torch.tensor([2]), torch.tensor([0.3]))
    assert x.shape == (1, INPUT_CHANNELS, 4, 4)
    assert torch.all(x[0, 0:3] == 0.5)
    for i in range(4):  # oldest first
        assert torch.all(x[0, 3 + 3 * i:6 + 3 * i] == i)
    assert torch.all(x[0, 15] == 0) and torch.all(x[0, 16] == 0) and torch.all(x[0, 17] == 1)  # right
    assert torch.allclose(x[0, 18], torch.tensor(0.3))


def test_frame_normalization_round_trips():
    frames = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    x = frames_to_tensor(frames)
    assert x.shape == (2, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(tensor_to_frames(x), frames)
    # rounding is floor(v + 0.5): 0.5 rounds up (torch.round would give 0 for 0.5)
    assert tensor_to_frames(torch.full((1, 3, 1, 1), 0.5 / 127.5 - 1.0)).flatten()[0] == 1


def test_sigma_schedule_is_geometric():
    assert sigma_schedule(1, 1.0, 0.02) == [1.0]
    s = sigma_schedule(4, 1.0, 0.02)
    assert s[0] == pytest.approx(1.0) and s[-1] == pytest.approx(0.02)
    assert s[1] / s[0] == pytest.approx(s[2] / s[1]) == pytest.approx(s[3] / s[2])
    with pytest.raises(ValueError):
        sigma_schedule(0, 1.0, 0.02)


class Recorder:
    """A fake denoiser that returns a fixed frame and records what it was given."""

    def __init__(self, value: float):
        self.value, self.inputs = value, []

    def __call__(self, x):
        self.inputs.append(x.clone())
        return torch.full((x.shape[0], 3, *x.shape[2:]), self.value)


def test_sampler_warm_starts_from_latest_frame_and_walks_the_schedule():
    context = torch.stack([torch.full((3, 8, 8), -0.9 + 0.1 * i) for i in range(4)])[None]  # (1, 4, 3, 8, 8)
    noise = torch.randn(1, 3, 8, 8)
    fake = Recorder(0.25)
    out = sample_next_frame(fake, context, torch.tensor([1]), steps=3, sigma_max=0.8, sigma_min=0.05, noise=noise)
    assert len(fake.inputs) == 3
    first = fake.inputs[0]
    assert torch.allclose(first[0, :3], context[0, -1] + 0.8 * noise[0])  # warm start: latest frame + sigma_max
    sigmas = [inp[0, 18, 0, 0].item() for inp in fake.inputs]
    assert sigmas == pytest.approx(sigma_schedule(3, 0.8, 0.05))
    # Euler step: x1 = x0 + (s1 / s0) * (x - x0)
    x0 = torch.full_like(noise, 0.25)
    assert torch.allclose(fake.inputs[1][0, :3], x0[0] + (sigmas[1] / sigmas[0]) * (first[0, :3] - x0[0]), atol=1e-6)
    assert torch.all(out == 0.25)


def test_sampler_is_deterministic_given_noise():
    net = TinyDenoiser(DenoiserConfig(width=8, blocks=2))
    context = torch.rand(2, 4, 3, 64, 64) * 2 - 1
    noise = torch.randn(2, 3, 64, 64)
    a = sample_next_frame(net, context, torch.tensor([0, 2]), 2, 1.0, 0.02, noise=noise)
    b = sample_next_frame(net, context, torch.tensor([0, 2]), 2, 1.0, 0.02, noise=noise)
    assert torch.equal(a, b)
    c = sample_next_frame(net, context, torch.tensor([0, 2]), 2, 1.0, 0.02, noise=torch.randn(2, 3, 64, 64))
    assert not torch.equal(a, c)


def test_dream_rollout_feeds_its_own_frames_back():
    fake = Recorder(0.5)
    start = torch.zeros(1, 4, 8, 8, 3, dtype=torch.uint8)
    frames = dream_rollout(fake, start, torch.zeros(3, 1, dtype=torch.long), 1, 1.0, 0.02)
    assert frames.shape == (3, 1, 8, 8, 3) and frames.dtype == torch.uint8
    expected_byte = tensor_to_frames(torch.full((1, 3, 1, 1), 0.5)).flatten()[0]
    assert torch.all(frames == expected_byte)
    # by the third call the newest context frame is the model's own (rounded) output, not the real start frame
    assert torch.allclose(fake.inputs[2][0, 12:15], frames_to_tensor(frames[1])[0])


def test_change_weighted_loss_focuses_on_moving_pixels():
    from worldmodels.breakout.objective import weighted_mse

    latest = torch.zeros(1, 3, 4, 4)
    target = latest.clone()
    target[0, :, 0, 0] = 1.0  # one pixel changed
    miss_moving = target.clone()
    miss_moving[0, :, 0, 0] = 0.0  # copies the latest frame: wrong where the frame changed
    miss_static = target.clone()
    miss_static[0, :, 3, 3] = 1.0  # right where it changed, wrong on one static pixel
    assert weighted_mse(miss_moving, target, latest, 0.0) == weighted_mse(miss_static, target, latest, 0.0)
    assert torch.allclose(weighted_mse(miss_moving, target, latest, 0.0), ((miss_moving - target) ** 2).mean())
    assert weighted_mse(miss_moving, target, latest, 50.0) > 10 * weighted_mse(miss_static, target, latest, 50.0)


def test_warm_start_rows_see_the_latest_frame_at_the_sampler_noise_level():
    from worldmodels.core.config import compose_config
    from worldmodels.tasks import build_module, validate

    run = validate(compose_config(["debug=smoke", "module.warm_start_fraction=1.0", "module.sampler.sigma_max=0.7"]))
    module = build_module(run, {})
    seen = []
    module.net.forward = lambda x: seen.append(x.clone()) or x[:, :3]
    context = torch.zeros(2, 4, 64, 64, 3, dtype=torch.uint8)
    context[:, -1, 10, 10] = 255  # the latest frame has one white pixel; the target does not
    batch = {"context": context, "action": torch.tensor([0, 2]), "target": torch.zeros(2, 64, 64, 3, dtype=torch.uint8)}
    module.compute_loss(batch, generator=torch.Generator().manual_seed(0))
    x = seen[0]
    assert torch.allclose(x[:, 18], torch.full_like(x[:, 18], 0.7))  # sigma plane = the sampler's sigma_max
    noise = (x[:, :3] - frames_to_tensor(context[:, -1])) / 0.7
    assert noise.std() == pytest.approx(1.0, abs=0.05)  # latest frame + 0.7 * unit noise, not the target


def _recording_module(*overrides: str):
    from worldmodels.core.config import compose_config
    from worldmodels.tasks import build_module, validate

    module = build_module(validate(compose_config(["debug=smoke", "module.sampler.steps=1", *overrides])), {})
    seen = []
    module.net.forward = lambda x: seen.append(x.clone()) or x[:, :3]  # "predicts" its noisy input
    return module, seen


def test_unrolled_loss_feeds_the_models_own_rounded_frames_back():
    module, seen = _recording_module("module.warm_start_fraction=1.0")
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 7, 64, 64, 3), generator=g, dtype=torch.uint8)
    batch = {"context": frames[:, :4], "action": torch.tensor([0, 1]), "target": frames[:, 4],
             "next_actions": torch.tensor([[1, 2], [2, 0]]), "next_targets": frames[:, 5:]}
    loss, _ = module.compute_loss(batch)
    # Calls: step 1's loss, the sampler's frame 1, step 2's loss, the sampler's frame 2, step 3's loss.
    assert len(seen) == 5 and torch.isfinite(loss)
    fed = frames_to_tensor(tensor_to_frames(seen[1][:, :3]))  # the sampler's frame, rounded to bytes
    assert torch.equal(seen[2][:, 12:15], fed)  # step 2's newest context frame is the model's, not the game's
    assert not torch.equal(seen[2][:, 12:15], frames_to_tensor(frames[:, 4]))
    assert torch.equal(seen[2][:, 3:12], frames_to_tensor(frames[:, 1:4]).flatten(1, 2))  # the older ones shift
    assert torch.equal(seen[2][:, 15:18].amax(dim=(2, 3)), torch.eye(3)[[1, 2]])  # step 2's own actions
    assert torch.equal(seen[4][:, 9:12], fed)


def test_context_noise_perturbs_the_context_but_not_the_warm_start():
    module, seen = _recording_module("module.warm_start_fraction=1.0", "module.context_noise=0.2",
                                     "module.sampler.sigma_max=0.5")
    context = torch.full((8, 4, 64, 64, 3), 128, dtype=torch.uint8)
    batch = {"context": context, "action": torch.zeros(8, dtype=torch.long),
             "target": torch.zeros(8, 64, 64, 3, dtype=torch.uint8)}
    module.compute_loss(batch)
    x, clean = seen[0], frames_to_tensor(context[:, -1])
    noise = x[:, 3:15] - frames_to_tensor(context).flatten(1, 2)
    stds = noise.flatten(1).std(dim=1)
    assert (stds > 0).all() and (stds < 0.2 * 1.05).all() and stds.max() > 0.05  # per-row std in [0, 0.2]
    warm = (x[:, :3] - clean) / 0.5
    assert warm.std() == pytest.approx(1.0, abs=0.05)  # the clean latest frame + sigma_max * unit noise


def test_palette_head_copies_at_init_and_draws_only_game_colours():
    from worldmodels.breakout.sim import PALETTE, BreakoutSim

    net = FastDenoiser(FastDenoiserConfig(widths=[4, 8], blocks=[1, 1], output="palette"))
    frames = torch.from_numpy(BreakoutSim([1, 2]).render())
    context = frames_to_tensor(frames)[:, None].expand(2, 4, 3, 64, 64)
    x = denoiser_input(torch.randn(2, 3, 64, 64), context, torch.tensor([0, 1]), torch.ones(2))
    with torch.no_grad():
        assert torch.equal(tensor_to_frames(net(x)), frames)  # an untrained net copies the newest frame
        for p in net.head.parameters():
            torch.nn.init.normal_(p, std=1.0)
        drawn = tensor_to_frames(net(x)).reshape(-1, 3).unique(dim=0)
    palette = torch.from_numpy(PALETTE)
    assert len(drawn) > 2 and all((palette == c).all(1).any() for c in drawn)  # never a blend of two colours


def ball_scores(*squares: tuple[int, int, float], size: int = 8) -> torch.Tensor:
    """Palette scores (1, 9, size, size): background everywhere, and the given ball probability on each 2x2 square
    (top-left y, x, probability); the other colours get nothing."""
    from worldmodels.breakout.denoiser import BALL

    probs = torch.zeros(1, BALL + 1, size, size)
    probs[:, 0] = 1.0
    for y, x, p in squares:
        probs[0, BALL, y:y + 2, x:x + 2] = p
        probs[0, 0, y:y + 2, x:x + 2] = 1.0 - p
    return probs.clamp_min(1e-6).log()


def test_one_ball_draws_an_unsure_ball_once_on_its_likeliest_square():
    from worldmodels.breakout.denoiser import BALL, one_ball_classes

    unsure = ball_scores((1, 1, 0.45), (4, 5, 0.35))  # most likely here or there, never more likely than background
    assert not (unsure.argmax(dim=1) == BALL).any()  # each pixel's own best colour loses the ball
    ball = one_ball_classes(unsure)[0] == BALL
    assert ball.sum() == 4 and ball[1:3, 1:3].all()  # one 2x2 ball, on the likelier square
    sure_twice = one_ball_classes(ball_scores((1, 1, 0.9), (4, 5, 0.8)))[0] == BALL
    assert sure_twice.sum() == 4 and sure_twice[1:3, 1:3].all()  # two balls in the scores, one in the frame
    assert not (one_ball_classes(ball_scores((1, 1, 0.2), (4, 5, 0.2)))[0] == BALL).any()  # under half a ball


def test_one_ball_draws_a_ball_leaving_the_frame_in_part():
    from worldmodels.breakout.denoiser import BALL, one_ball_classes

    scores = ball_scores((6, 3, 0.9))
    scores[0, :, 6] = ball_scores(size=8)[0, :, 6]  # only the square's bottom row is in the frame (row 7)
    ball = one_ball_classes(scores)[0] == BALL
    assert ball.sum() == 2 and ball[7, 3:5].all()


def test_one_ball_needs_the_palette_head():
    from worldmodels.core.config import compose_config
    from worldmodels.core.schema import ConfigError
    from worldmodels.tasks import validate

    with pytest.raises(ConfigError, match="one_ball"):
        validate(compose_config(["debug=smoke", "model=fast_denoiser", "model.one_ball=true"]))


@pytest.mark.parametrize("decode", ["plain", "one_ball", "layout"])
def test_palette_export_matches_pytorch_away_from_ties(tmp_path, decode):
    from omegaconf import OmegaConf

    from worldmodels.breakout.export import export_breakout
    from worldmodels.core.config import compose_config
    from worldmodels.tasks import validate

    flags = {"plain": [], "one_ball": ["model.one_ball=true"], "layout": ["model.one_ball=true", "model.layout=true"]}
    cfg = compose_config(["debug=smoke", "model=fast_denoiser", "model.output=palette", *flags[decode]])
    run = validate(cfg)
    net = FastDenoiser(run.model)
    torch.manual_seed(0)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    _, manifest_path, diff = export_breakout(net, run, OmegaConf.to_container(cfg, resolve=True), tmp_path)
    assert diff <= 1e-4
    model = json.loads(manifest_path.read_text())["model"]
    assert model["output"] == "palette" and model["one_ball"] is (decode != "plain")
    assert model["layout"] is (decode == "layout")


def frame_scores(frames: np.ndarray) -> torch.Tensor:
    """Palette scores (N, 9, 64, 64) that put nearly all probability on each pixel's own colour in `frames`."""
    from worldmodels.breakout.readout import nearest_colour

    classes = torch.from_numpy(nearest_colour(frames)).long()
    return torch.nn.functional.one_hot(classes, len(PALETTE)).permute(0, 3, 1, 2).float() * 8.0


def test_layout_draws_the_true_frames_as_they_are():
    from worldmodels.breakout.denoiser import layout_classes
    from worldmodels.breakout.readout import nearest_colour
    from worldmodels.breakout.sim import BreakoutSim

    sim, rng = BreakoutSim(list(range(16))), np.random.default_rng(0)
    for _ in range(150):  # bricks broken, balls at the walls, under the paddle, lost and served again
        sim.step(rng.integers(0, 3, 16))
        frames = sim.render()
        assert torch.equal(layout_classes(frame_scores(frames)), torch.from_numpy(nearest_colour(frames)).long())


def test_layout_keeps_bricks_whole_and_draws_one_paddle():
    from worldmodels.breakout.denoiser import BALL, PADDLE, layout_classes
    from worldmodels.breakout.sim import BRICK_TOP, PADDLE_Y

    probs = torch.zeros(1, len(PALETTE), 64, 64)
    probs[:, 0] = 1.0

    def paint(colour: int, ys: slice, xs: slice, p: float) -> None:
        probs[0, colour, ys, xs] = p
        probs[0, 0, ys, xs] = 1.0 - p

    paint(1, slice(BRICK_TOP, BRICK_TOP + 3), slice(0, 7), 0.9)  # row 0, column 0: a sure brick...
    paint(1, slice(BRICK_TOP, BRICK_TOP + 1), slice(0, 7), 0.2)  # ...faded in its top row: still whole (mean 0.67)
    paint(2, slice(BRICK_TOP + 4, BRICK_TOP + 7), slice(8, 15), 0.4)  # row 1, column 1: under a half, gone
    paint(1, slice(BRICK_TOP + 4, BRICK_TOP + 7), slice(16, 23), 0.9)  # row 1 in row 0's colour: gone
    paint(3, slice(40, 43), slice(20, 27), 0.9)  # a brick colour below the wall: background
    paint(PADDLE, slice(PADDLE_Y, PADDLE_Y + 2), slice(4, 14), 0.6)  # two paddles: the likelier one is drawn
    paint(PADDLE, slice(PADDLE_Y, PADDLE_Y + 2), slice(30, 40), 0.55)
    paint(BALL, slice(PADDLE_Y - 1, PADDLE_Y + 1), slice(6, 8), 0.9)  # a ball over the paddle's top row
    classes = layout_classes(probs.clamp_min(1e-6).log())[0]
    expected = torch.zeros(64, 64, dtype=torch.long)
    expected[BRICK_TOP:BRICK_TOP + 3, 0:7] = 1
    expected[PADDLE_Y:PADDLE_Y + 2, 4:14] = PADDLE
    expected[PADDLE_Y - 1:PADDLE_Y + 1, 6:8] = BALL
    assert torch.equal(classes, expected)
    assert (probs.argmax(dim=1)[0, PADDLE_Y:PADDLE_Y + 2, 30:40] == PADDLE).all()  # pixel by pixel, two paddles


def test_layout_needs_one_ball():
    from worldmodels.core.config import compose_config
    from worldmodels.core.schema import ConfigError
    from worldmodels.tasks import validate

    with pytest.raises(ConfigError, match="layout"):
        validate(compose_config(["debug=smoke", "model=fast_denoiser", "model.output=palette", "model.layout=true"]))


def test_palette_loss_weights_changed_pixels():
    from worldmodels.breakout.objective import weighted_cross_entropy

    palette = FastDenoiser(FastDenoiserConfig(widths=[4, 8], blocks=[1, 1], output="palette")).palette
    latest = palette[0][None, :, None, None].expand(1, 3, 2, 2).clone()  # all background
    target = latest.clone()
    target[0, :, 0, 0] = palette[-1]  # one pixel turns ball-coloured
    miss_moving = torch.zeros(1, len(palette), 2, 2)
    miss_moving[:, 0] = 5.0  # background everywhere: wrong only where the frame changed
    paints = miss_moving.clone()
    paints[0, :, 0, 0] = 0.0
    paints[0, -1, 0, 0] = 5.0  # right where it changed ...
    paints[0, :, 1, 1] = 0.0
    paints[0, -1, 1, 1] = 5.0  # ... but paints a static pixel ball-coloured
    ce = lambda logits, w: weighted_cross_entropy(logits, target, latest, palette, w)
    assert torch.allclose(ce(miss_moving, 0.0), ce(paints, 0.0))
    assert ce(miss_moving, 50.0) > 3 * ce(miss_moving, 0.0)  # the changed pixel dominates the mean
    # A pixel the scores change without cause weighs as much as one they miss (weighting only the target's changes
    # would make it 51 times cheaper, about 0.02 of the miss).
    assert ce(paints, 50.0) > 0.4 * ce(miss_moving, 50.0)
