"""The token Transformer: size, causality, KV-cache parity (incl. the sliding window), RoPE at large positions, ONNX."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from worldmodels.core.schema import ConfigError
from worldmodels.flappy.config import TransformerConfig
from worldmodels.flappy.transformer import (
    DECODE_INPUTS,
    DECODE_OUTPUTS,
    PREFILL_INPUTS,
    PREFILL_OUTPUTS,
    KVCache,
    TokenTransformer,
    export_onnx,
)

VOCAB = 50
FRAME = 10  # tokens per frame in these tests


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sharp_model(context: int = 40, seed: int = 0, sliding_window: bool = False) -> TokenTransformer:
    """A small model with large weights: attention is peaked and position-dependent, so a wrong mask, slot or
    rotation moves the logits far beyond the tolerances (with the 0.02 init attention is almost uniform)."""
    torch.manual_seed(seed)
    model = TokenTransformer(TransformerConfig(vocab_size=VOCAB, layers=2, heads=2, width=32, context=context,
                                               sliding_window=sliding_window))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    return model.eval()


def test_default_parameter_count():
    n = TokenTransformer(TransformerConfig(vocab_size=500)).num_parameters()
    print(f"default TokenTransformer parameters (vocab 500): {n}")
    assert 380_000 <= n <= 460_000


def test_config_checks_name_the_key():
    with pytest.raises(ConfigError, match="t.width"):
        TransformerConfig(width=30, heads=4).validate("t")
    with pytest.raises(ConfigError, match="t.heads"):
        TransformerConfig(width=36, heads=4).validate("t")  # head_dim 9 is odd: RoPE rotates pairs
    TransformerConfig().validate("t")  # vocab_size 0 is fine until the module is built
    with pytest.raises(ConfigError, match="vocab_size"):
        TokenTransformer(TransformerConfig())


def test_causal():
    model = sharp_model()
    tokens = torch.randint(0, VOCAB, (2, 30))
    changed = tokens.clone()
    changed[:, 20] = (changed[:, 20] + 1) % VOCAB
    with torch.no_grad():
        a, _ = model(tokens, torch.arange(30))
        b, _ = model(changed, torch.arange(30))
    assert torch.equal(a[:, :20], b[:, :20])
    assert (a[:, 20:] - b[:, 20:]).abs().max() > 1e-2


def test_cached_decoding_matches_full_forward():
    model = sharp_model(context=96)
    tokens = torch.randint(0, VOCAB, (2, 90))
    positions = torch.arange(90)
    with torch.no_grad():
        full, _ = model(tokens, positions)
        logits, k, v, cache_len = model.prefill(tokens[:, :50], positions[:50])
        assert (logits - full[:, :50]).abs().max() <= 1e-4
        for i in range(50, 80):
            step, k, v = model.decode_step(tokens[:, i:i + 1], positions[i:i + 1], k, v, cache_len)
            cache_len = cache_len + 1
            assert (step - full[:, i]).abs().max() <= 1e-4, i
        # A whole frame appended in one call continues the same cache.
        chunk, _ = model(tokens[:, 80:90], positions[80:90], KVCache(k, v, cache_len))
    assert (chunk - full[:, 80:90]).abs().max() <= 1e-4


def test_sliding_window_matches_full_forward_over_the_window():
    context, start = 40, 1234
    model = sharp_model(context=context)
    tokens = torch.randint(0, VOCAB, (1, 210))
    positions = torch.arange(start, start + 210)
    slides = 0
    with torch.no_grad():
        _, cache = model(tokens[:, :FRAME], positions[:FRAME], KVCache.empty(model.cfg, 1))
        shape = cache.k.shape
        for i in range(FRAME, 210):
            if model.cache_full(cache):
                cache = model.slide(cache, FRAME)
                slides += 1
            step, cache = model(tokens[:, i:i + 1], positions[i:i + 1], cache)
            n = int(cache.length)
            assert (i + 1 - n) % FRAME == 0  # the window always starts on a frame boundary
            window, _ = model(tokens[:, i + 1 - n:i + 1], positions[i + 1 - n:i + 1])
            assert (step[:, -1] - window[:, -1]).abs().max() <= 1e-4, i
            assert cache.k.shape == cache.v.shape == shape
    assert slides >= 15
    with pytest.raises(ValueError):
        model.slide(cache, int(cache.length) + 1)


def test_sliding_window_attends_to_a_band_of_context_tokens():
    context = 40
    model = sharp_model(context=context, sliding_window=True)
    tokens = torch.randint(0, VOCAB, (1, 120))
    changed = tokens.clone()
    changed[:, 30] = (changed[:, 30] + 1) % VOCAB
    with torch.no_grad():
        a, _ = model(tokens, torch.arange(120))
        b, _ = model(changed, torch.arange(120))
    moved = (a - b).abs().amax(-1)[0]  # (T,)
    assert moved[:30].max() == 0 and moved[30] > 1e-2
    # Token 30 reaches 2 layers x 39 tokens ahead through the band, and not one token more.
    assert moved[30 + 2 * (context - 1)] > 1e-4 and moved[30 + 2 * (context - 1) + 1:].max() == 0


@pytest.mark.parametrize("chunk", [1, FRAME])
def test_ring_cache_matches_the_banded_forward_at_any_length(chunk):
    context, start, total = 40, 7_770, 260
    model = sharp_model(context=context, sliding_window=True)
    tokens = torch.randint(0, VOCAB, (1, total))
    positions = torch.arange(start, start + total)
    with torch.no_grad():
        full, _ = model(tokens, positions)  # one banded pass over all 260 tokens: what training computes
        logits, k, v, length = model.prefill(tokens[:, :30], positions[:30])
        assert (logits - full[:, :30]).abs().max() <= 1e-4
        cache = KVCache(k, v, length, *[torch.zeros(1, context, dtype=torch.long)] * 2)
        for i in range(30, total, chunk):
            assert not model.cache_full(cache)
            step, cache = model(tokens[:, i:i + chunk], positions[i:i + chunk], cache)
            assert (step - full[:, i:i + chunk]).abs().max() <= 1e-4, i
            assert int(cache.length) == min(i + chunk, context) and cache.k.shape == k.shape
    # The ring holds the newest `context` tokens, each in slot position % context.
    assert torch.equal(cache.positions[0].sort().values, positions[-context:])
    assert torch.equal(cache.positions[0] % context, torch.arange(context))
    with pytest.raises(ValueError, match="never slides"):
        model.slide(cache, FRAME)


def test_rope_shift_invariance_at_large_positions():
    model = sharp_model()
    tokens = torch.randint(0, VOCAB, (2, 40))
    with torch.no_grad():
        near, _ = model(tokens, torch.arange(40))
        far, _ = model(tokens, torch.arange(100_000, 100_040))
    # float32 angles would be off by ~5e-3 here (checked when this was written).
    assert (near - far).abs().max() <= 1e-4


def test_onnx_ring_decode_matches_pytorch(tmp_path):
    context = 40
    model = sharp_model(context=context, sliding_window=True)
    decode_path, prefill_path = tmp_path / "decode.onnx", tmp_path / "prefill.onnx"
    export_onnx(model, decode_path, prefill_path, dynamic_batch=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    decode = ort.InferenceSession(str(decode_path), options, providers=["CPUExecutionProvider"])
    prefill = ort.InferenceSession(str(prefill_path), options, providers=["CPUExecutionProvider"])
    tokens = torch.randint(0, VOCAB, (1, 150))
    positions = torch.arange(90_000, 90_150)[None]
    with torch.no_grad():
        full, _ = model(tokens, positions)
    o_logits, k, v, length = prefill.run(None, {"tokens": tokens[:, :25].numpy(),
                                                "positions": positions[:, :25].numpy()})
    assert np.abs(o_logits - full[:, :25].numpy()).max() <= 1e-4
    for i in range(25, 150):  # wraps the ring three times, never slides
        o_logits, k, v = decode.run(None, {"tokens": tokens[:, i:i + 1].numpy(), "position": positions[:, i].numpy(),
                                           "k_cache": k, "v_cache": v, "cache_len": length})
        length = np.minimum(length + 1, context)
        assert np.abs(o_logits - full[:, i].numpy()).max() <= 1e-4, i


def test_onnx_decode_and_prefill_match_pytorch(tmp_path):
    model = sharp_model()
    context = model.cfg.context
    decode_path, prefill_path = tmp_path / "decode.onnx", tmp_path / "prefill.onnx"
    export_onnx(model, decode_path, prefill_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    decode = ort.InferenceSession(str(decode_path), options, providers=["CPUExecutionProvider"])
    prefill = ort.InferenceSession(str(prefill_path), options, providers=["CPUExecutionProvider"])
    # The web player binds these names: spelled out here so that renaming a constant fails loudly.
    assert [i.name for i in decode.get_inputs()] == DECODE_INPUTS == [
        "tokens", "position", "k_cache", "v_cache", "cache_len"]
    assert [o.name for o in decode.get_outputs()] == DECODE_OUTPUTS == ["logits", "k_cache_out", "v_cache_out"]
    assert [i.name for i in prefill.get_inputs()] == PREFILL_INPUTS == ["tokens", "positions"]
    assert [o.name for o in prefill.get_outputs()] == PREFILL_OUTPUTS == ["logits", "k_cache", "v_cache", "cache_len"]

    # Two rows at very different absolute positions, exported at batch 1.
    tokens = torch.randint(0, VOCAB, (2, 120))
    positions = torch.stack([torch.arange(120), torch.arange(100_000, 100_120)])
    with torch.no_grad():
        logits, k, v, cache_len = model.prefill(tokens[:, :20], positions[:, :20])
    o_logits, o_k, o_v, o_len = prefill.run(None, {"tokens": tokens[:, :20].numpy(),
                                                   "positions": positions[:, :20].numpy()})
    assert np.abs(o_logits - logits.numpy()).max() <= 1e-4
    assert np.array_equal(o_len, cache_len.numpy()) and o_k.shape == tuple(k.shape)

    slides = 0
    for i in range(20, 120):
        if int(cache_len[0]) == context:  # slide: prefill the newest context - FRAME tokens at their positions
            kept_tokens, kept_positions = tokens[:, i - context + FRAME:i], positions[:, i - context + FRAME:i]
            with torch.no_grad():
                _, k, v, cache_len = model.prefill(kept_tokens, kept_positions)
            _, o_k, o_v, o_len = prefill.run(None, {"tokens": kept_tokens.numpy(), "positions": kept_positions.numpy()})
            slides += 1
        with torch.no_grad():
            logits, k, v = model.decode_step(tokens[:, i:i + 1], positions[:, i], k, v, cache_len)
        o_logits, o_k, o_v = decode.run(None, {"tokens": tokens[:, i:i + 1].numpy(),
                                               "position": positions[:, i].numpy(),
                                               "k_cache": o_k, "v_cache": o_v, "cache_len": o_len})
        cache_len, o_len = cache_len + 1, o_len + 1
        assert np.abs(o_logits - logits.numpy()).max() <= 1e-4, i
        assert np.array_equal(o_logits.argmax(-1), logits.numpy().argmax(-1)), i
    assert slides >= 1
