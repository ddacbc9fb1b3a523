"""A tiny decoder-only Transformer over game-state tokens, with a fixed-size KV cache that exports to ONNX.

One forward path serves training, Python decoding and the ONNX graphs:

    model = TokenTransformer(TransformerConfig(vocab_size=500))
    logits, _ = model(tokens, positions)                            # training: (B, T) -> (B, T, vocab), causal
    cache = KVCache.empty(model.cfg, batch=1)
    logits, cache = model(context_tokens, context_positions, cache) # prefill the window
    if model.cache_full(cache):
        cache = model.slide(cache, tokens_per_frame)                # drop the oldest frame before the next step
    logits, cache = model(next_token, next_position, cache)         # one step: (B, 1) -> (B, 1, vocab)

    python -c "import worldmodels.flappy.transformer as t; print(t.TokenTransformer(t.TransformerConfig(vocab_size=500))
        .num_parameters())"

Positions are absolute token indices that keep counting for the whole game: a window is never renumbered. RoPE
sees only differences of positions, but float32 `pos * inv_freq` is off by ~1e-2 rad at pos ~ 1e5, so the rotation
angles are computed in float64 and only cos/sin are cast to float32 (ONNX: Cast, Cos, Sin on doubles).

Two attention spans (`TransformerConfig.sliding_window`):
- False (the seed's): causal attention over a window of at most `context` tokens. The KV cache holds the window in
  order (slot i = its i-th oldest token) and `slide` drops whole frames by re-running the model on the rest (a
  prefill): shifting the cached k/v instead would be wrong, since from layer 2 on the kept tokens' keys were
  computed while they still saw the dropped tokens (~1 logit apart in tests/flappy/test_transformer.py). Exact, but a
  slide costs a prefill of ~context tokens.
- True: every token attends to the `context` tokens ending at itself, whatever the sequence length; training uses
  the same banded mask (on windows longer than `context`, so the model learns keys that saw a full band). The cache
  is then a ring: the token at absolute position p lives in slot p % context, and each layer's cached keys are
  exactly what training computed. Nothing is ever recomputed, so every decoded token costs the same.

The cache: k, v of shape (layers, B, heads, context, head_dim) hold RoPE-rotated keys and values and `length` (B,)
counts the filled slots (at most `context`). A call with T new tokens attends to the cached keys (through a mask of
their ages, never by copying the cache) and to its own keys (causal), then writes its keys into their slots
(`chunk_slots`). In the ordered cache the T tokens need length + T <= context. Nothing grows: every call returns
tensors of the same shape (a functional scatter, so the same code traces to ONNX).

ONNX graphs (opset 17, see `export_onnx`), int64 tokens / positions / cache_len, batch dynamic:
    decode: tokens (B, 1), position (B,), k_cache, v_cache (layers, B, heads, context, head_dim), cache_len (B,)
            -> logits (B, vocab), k_cache_out, v_cache_out; the caller then sets cache_len += 1 (at most context).
    prefill: tokens (B, T), positions (B, T), T <= context -> logits (B, T, vocab), k_cache, v_cache, cache_len (B,)
The caller keeps the window's tokens and positions. With the ordered cache, when cache_len == context, it slides by
running prefill on the window's newest context - n tokens at their absolute positions and continues decoding from
prefill's outputs; with the ring it never slides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from worldmodels.core.manifest import OPSET
from worldmodels.core.schema import require
from worldmodels.flappy.config import TransformerConfig
from worldmodels.flappy.graphs import DECODE_INPUTS, DECODE_OUTPUTS, PREFILL_INPUTS, PREFILL_OUTPUTS


@dataclass
class KVCache:
    """The fixed-size cache of one decoding session, plus the window's tokens so that it can slide by itself."""

    k: torch.Tensor  # (layers, B, heads, context, head_dim), keys already rotated by RoPE
    v: torch.Tensor  # (layers, B, heads, context, head_dim)
    length: torch.Tensor  # (B,) int64, filled slots (tokens in the window)
    tokens: torch.Tensor | None = None  # (B, context) int64, the token in each slot; None in the ONNX graphs
    positions: torch.Tensor | None = None  # (B, context) int64, their absolute positions

    @classmethod
    def empty(cls, cfg: TransformerConfig, batch: int, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> KVCache:
        """A cache with no tokens in it."""
        shape = (cfg.layers, batch, cfg.heads, cfg.context, cfg.head_dim)
        return cls(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype),
                   torch.zeros(batch, device=device, dtype=torch.long),
                   torch.zeros(batch, cfg.context, device=device, dtype=torch.long),
                   torch.zeros(batch, cfg.context, device=device, dtype=torch.long))


@dataclass
class ChunkLayout:
    """Everything about T new tokens that does not depend on which tokens they are: their rotations, what each may
    attend to, and (with a cache) where their keys go. Built once by `TokenTransformer.layout`; the frame graph
    reuses one layout for every pass over a frame."""

    cos: torch.Tensor  # (B, 1, T, head_dim / 2)
    sin: torch.Tensor
    new_mask: torch.Tensor  # (1, 1, T, T) bool, True = query t may see new key t'
    old_mask: torch.Tensor | None = None  # (B, 1, T, context) bool, True = query t may see the cached key in a slot
    slots: torch.Tensor | None = None  # (B, T) int64, the cache slot of each new token


def rope_tables(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (B, 1, T, head_dim / 2) for int64 positions (B, T), angles in float64 (see docstring)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float64) / head_dim)
    angles = positions.to(torch.float64)[:, None, :, None] * inv_freq  # (B, 1, T, head_dim / 2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + head_dim/2]) of x (B, heads, T, head_dim) by the position angles."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, dropout: float = 0.0,
           cached: tuple[torch.Tensor, torch.Tensor] | None = None, cached_mask: torch.Tensor | None = None
           ) -> torch.Tensor:
    """The one attention of every path: q, k, v (B, h, T, d) of the new tokens with `mask` (.., T, T) True =
    visible; with `cached` = (k, v) (B, h, context, d) also the cache's keys under `cached_mask` (B, 1, T, context).
    One softmax over both sets, without concatenating (copying) the cache."""
    if cached is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    scale = q.shape[-1] ** -0.5
    old = (q @ cached[0].transpose(-1, -2) * scale).masked_fill(~cached_mask, float("-inf"))  # (B, h, T, context)
    new = (q @ k.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))  # (B, h, T, T)
    weights = torch.cat([old, new], dim=-1).softmax(-1)  # every query sees at least itself
    context = old.shape[-1]
    return weights[..., :context] @ cached[1] + weights[..., context:] @ v  # (B, h, T, d)


class Attention(nn.Module):
    """Causal multi-head self-attention with RoPE on q and k, optionally also attending to one layer of a cache."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads, self.head_dim, self.dropout = cfg.heads, cfg.head_dim, cfg.dropout
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=False)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=False)

    def forward(self, x, layout: ChunkLayout, cached=None):
        """x (B, T, width) -> (B, T, width) and this layer's new (k, v), each (B, h, T, d)."""
        b, t, w = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, h, T, d)
        q, k, v = qkv.unbind(0)  # (B, h, T, d) each
        q, k = apply_rope(q, layout.cos, layout.sin), apply_rope(k, layout.cos, layout.sin)
        y = attend(q, k, v, layout.new_mask, self.dropout if self.training else 0.0, cached, layout.old_mask)
        return self.proj(y.transpose(1, 2).reshape(b, t, w)), (k, v)


class Block(nn.Module):
    """Pre-norm block: x + attn(ln(x)), then x + mlp(ln(x)) with a GELU MLP."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        hidden = int(cfg.mlp_ratio * cfg.width)
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.width, hidden, bias=False), nn.GELU(),
                                 nn.Linear(hidden, cfg.width, bias=False))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, layout: ChunkLayout, cached=None):
        a, kv = self.attn(self.ln1(x), layout, cached)
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.ln2(x))), kv


class TokenTransformer(nn.Module):
    """Decoder-only Transformer: int64 tokens (B, T) at absolute positions -> next-token logits (B, T, vocab)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        cfg.validate(cfg.name)
        require(cfg.vocab_size > 0, f"{cfg.name}.vocab_size",
                f"must be > 0 to build the model: fill it in from the token spec (got {cfg.vocab_size})")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.width)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.layers)])
        self.ln_f = nn.LayerNorm(cfg.width)
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2: shrink the residual writes so the stream's variance does not grow with depth
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / (2 * cfg.layers) ** 0.5)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def layout(self, positions: torch.Tensor, cache_length: torch.Tensor | None = None) -> ChunkLayout:
        """The ChunkLayout of new tokens at int64 `positions` (B, T), after a cache holding `cache_length` (B,)
        tokens (None: no cache). The new tokens follow the cache's newest token directly."""
        cfg = self.cfg
        cos, sin = rope_tables(positions, cfg.head_dim, cfg.rope_base)
        t = positions.shape[1]
        steps = torch.arange(t, device=positions.device)
        behind = steps[:, None] - steps[None, :]  # (T, T): how far key t' lies behind query t
        new_mask = (behind >= 0) & (behind < cfg.context) if cfg.sliding_window else behind >= 0
        if cache_length is None:
            return ChunkLayout(cos, sin, new_mask[None, None])
        length = cache_length.reshape(-1, 1)  # (B, 1)
        slot_ids = torch.arange(cfg.context, device=positions.device)
        if cfg.sliding_window:  # slot s holds the newest position p < first with p % context == s
            first = positions[:, :1]  # (B, 1)
            age = (first - 1 - slot_ids + cfg.context) % cfg.context + 1  # (B, context): first - p
            slots = positions % cfg.context
        else:  # slot s holds the s-th oldest token of the window
            age = length - slot_ids
            slots = length + steps
        filled = (age >= 1) & (age <= length)  # (B, context)
        in_band = age[:, None, :] + steps[None, :, None] < cfg.context  # (B, T, context); always so when ordered
        return ChunkLayout(cos, sin, new_mask[None, None], (filled[:, None, :] & in_band)[:, None], slots)

    def run(self, tokens: torch.Tensor, layout: ChunkLayout,
            cached: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None):
        """tokens (B, T) under `layout`, attending to each layer's cached (k, v) when given -> logits (B, T, vocab)
        and the new tokens' keys and values (layers, B, heads, T, head_dim); the cache itself is not touched."""
        x = self.embed(tokens)  # (B, T, width)
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            x, (k, v) = block(x, layout, None if cached is None else cached[i])
            keys.append(k)
            values.append(v)
        logits = self.ln_f(x) @ self.embed.weight.T  # (B, T, vocab); tied embeddings keep the default near 420k
        return logits, torch.stack(keys), torch.stack(values)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor,
                cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache | None]:
        """tokens (B, T) int64, positions (B, T) or (T,) int64 -> logits (B, T, vocab), the updated cache.

        Without a cache: causal (banded when sliding_window) attention over the T tokens (training), and the
        returned cache is None. With a cache: the T tokens follow the window's (ordered cache: cache.length + T <=
        context; ring: T <= context); the returned cache holds them.
        """
        b, t = tokens.shape
        positions = positions.expand(b, t)  # (B, T)
        if cache is None:
            return self.run(tokens, self.layout(positions))[0], None
        layout = self.layout(positions, cache.length)
        logits, k, v = self.run(tokens, layout, list(zip(cache.k.unbind(0), cache.v.unbind(0), strict=True)))
        index = layout.slots[None, :, None, :, None].expand(k.shape)  # (layers, B, h, T, d)
        window = (None, None) if cache.tokens is None else (cache.tokens.scatter(1, layout.slots, tokens),
                                                            cache.positions.scatter(1, layout.slots, positions))
        length = cache.length + t
        if self.cfg.sliding_window:
            length = length.clamp(max=self.cfg.context)
        return logits, KVCache(cache.k.scatter(3, index, k), cache.v.scatter(3, index, v), length, *window)

    def cache_full(self, cache: KVCache) -> bool:
        """True when the next token does not fit and the window must slide first (never for the ring)."""
        return not self.cfg.sliding_window and bool((cache.length >= self.cfg.context).any())

    def slide(self, cache: KVCache, n: int) -> KVCache:
        """Drop the oldest n tokens (whole frames) of an ordered cache and recompute the cache for the rest at their
        absolute positions. All rows must hold the same number of tokens; 0 <= n < that number."""
        length = int(cache.length[0])
        if self.cfg.sliding_window:
            raise ValueError("a sliding-window (ring) cache never slides")
        if cache.tokens is None or not bool((cache.length == length).all()) or not 0 <= n < length:
            raise ValueError(f"cannot drop {n} tokens from windows of {cache.length.tolist()} recorded tokens")
        fresh = KVCache.empty(self.cfg, cache.k.shape[1], cache.k.device, cache.k.dtype)
        return self(cache.tokens[:, n:length], cache.positions[:, n:length], fresh)[1]

    def prefill(self, tokens: torch.Tensor, positions: torch.Tensor):
        """Fill an empty cache from a context of T <= context tokens.

        Returns logits (B, T, vocab), k_cache, v_cache (layers, B, heads, context, head_dim), cache_len (B,) = T.
        """
        cache = KVCache.empty(self.cfg, tokens.shape[0], tokens.device, self.embed.weight.dtype)
        logits, cache = self(tokens, positions, cache)
        return logits, cache.k, cache.v, cache.length

    def decode_step(self, tokens: torch.Tensor, position: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                    cache_len: torch.Tensor):
        """One token per row: tokens (B, 1), position (B,) or (1,), cache_len (B,) or () (ordered cache: cache_len
        < context). Returns logits (B, vocab), k_cache_out, v_cache_out."""
        cache = KVCache(k_cache, v_cache, cache_len)
        logits, cache = self(tokens, position.reshape(-1, 1), cache)
        return logits[:, -1], cache.k, cache.v

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
class DecodeGraph(nn.Module):
    """`TokenTransformer.decode_step` as a module, for torch.onnx.export."""

    def __init__(self, model: TokenTransformer):
        super().__init__()
        self.model = model

    def forward(self, tokens, position, k_cache, v_cache, cache_len):
        return self.model.decode_step(tokens, position, k_cache, v_cache, cache_len)


class PrefillGraph(nn.Module):
    """`TokenTransformer.prefill` as a module, for torch.onnx.export."""

    def __init__(self, model: TokenTransformer):
        super().__init__()
        self.model = model

    def forward(self, tokens, positions):
        return self.model.prefill(tokens, positions)


def export_onnx(model: TokenTransformer, decode_path: str | Path, prefill_path: str | Path,
                dynamic_batch: bool = True) -> None:
    """Write the decode and prefill graphs (names at the top of this file; the prefill length is dynamic). With
    `dynamic_batch=False` the batch axis is fixed at 1: onnxruntime then drops the shape arithmetic for it, about 40%
    of the decode graph's nodes, which is most of the cost of a step in onnxruntime-web (per-node overhead)."""
    model = model.eval()
    device = model.embed.weight.device
    cache = KVCache.empty(model.cfg, 1, device)
    step = (torch.zeros(1, 1, dtype=torch.long, device=device), torch.zeros(1, dtype=torch.long, device=device),
            cache.k, cache.v, cache.length)
    # Prefill is traced at T = 2 so that no length-1 axis gets folded away as a broadcast.
    context = (torch.zeros(1, 2, dtype=torch.long, device=device), torch.arange(2, device=device)[None])
    if dynamic_batch:
        batch, cache_axes, time_axes = {0: "batch"}, {1: "batch"}, {0: "batch", 1: "time"}
    else:
        batch, cache_axes, time_axes = {}, {}, {1: "time"}
    with torch.no_grad():
        torch.onnx.export(
            DecodeGraph(model), step, str(decode_path), input_names=DECODE_INPUTS, output_names=DECODE_OUTPUTS,
            opset_version=OPSET, dynamo=False,
            dynamic_axes={"tokens": batch, "position": batch, "k_cache": cache_axes, "v_cache": cache_axes,
                          "cache_len": batch, "logits": batch, "k_cache_out": cache_axes, "v_cache_out": cache_axes},
        )
        torch.onnx.export(
            PrefillGraph(model), context, str(prefill_path), input_names=PREFILL_INPUTS,
            output_names=PREFILL_OUTPUTS, opset_version=OPSET, dynamo=False,
            dynamic_axes={"tokens": time_axes, "positions": time_axes, "logits": time_axes, "k_cache": cache_axes,
                          "v_cache": cache_axes, "cache_len": batch},
        )
