"""A tiny decoder-only Transformer over game-state tokens, with a fixed-size KV cache that exports to ONNX.

One forward path serves training, Python decoding and the ONNX graphs:

    model = TokenTransformer(TransformerConfig(vocab_size=500))
    logits, _ = model(tokens, positions)                            # training: (B, T) -> (B, T, vocab), causal
    cache = KVCache.empty(model.cfg, batch=1)
    logits, cache = model(context_tokens, context_positions, cache) # prefill the window
    if model.cache_full(cache):
        cache = model.slide(cache, tokens_per_frame)                # drop the oldest frame before the next step
    logits, cache = model(next_token, next_position, cache)         # one step: (B, 1) -> (B, 1, vocab)

    python -c "import worldmodels.nets.transformer as t; print(t.TokenTransformer(t.TransformerConfig(vocab_size=500))
        .num_parameters())"

Positions are absolute token indices that keep counting for the whole game: a window is never renumbered. RoPE
sees only differences of positions, but float32 `pos * inv_freq` is off by ~1e-2 rad at pos ~ 1e5, so the rotation
angles are computed in float64 and only cos/sin are cast to float32 (ONNX: Cast, Cos, Sin on doubles).

The cache: k, v of shape (layers, B, heads, context, head_dim) hold RoPE-rotated keys and values; slot i holds the
i-th oldest token of the window and `cache_len` (B,) counts the filled slots. A call with T new tokens writes slots
cache_len .. cache_len + T - 1 and needs cache_len + T <= context. Nothing grows: every step returns tensors of
the same shape (a functional scatter, so the same code traces to ONNX).

Sliding recomputes: dropping the oldest n tokens re-runs the model on the remaining window (a prefill). Shifting the
cached k/v instead would be cheaper but wrong: from layer 2 on, the kept tokens' keys were computed while they
still saw the dropped tokens, so the logits would differ from the model run on the window (what training sees;
~1 logit apart in tests/test_transformer.py). Dropping several frames at once makes the recompute rarer, at the cost
of less context right after the slide.

ONNX graphs (opset 17, see `export_onnx`), int64 tokens / positions / cache_len, batch dynamic:
    decode: tokens (B, 1), position (B,), k_cache, v_cache (layers, B, heads, context, head_dim), cache_len (B,)
            -> logits (B, vocab), k_cache_out, v_cache_out; the caller then sets cache_len += 1.
    prefill: tokens (B, T), positions (B, T), T <= context -> logits (B, T, vocab), k_cache, v_cache, cache_len (B,)
The caller keeps the window's tokens and positions. When cache_len == context, it slides by running prefill on the
window's newest context - n tokens at their absolute positions and continues decoding from prefill's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

DECODE_INPUTS = ["tokens", "position", "k_cache", "v_cache", "cache_len"]
DECODE_OUTPUTS = ["logits", "k_cache_out", "v_cache_out"]
PREFILL_INPUTS = ["tokens", "positions"]
PREFILL_OUTPUTS = ["logits", "k_cache", "v_cache", "cache_len"]
OPSET = 17


@dataclass
class TransformerConfig:
    """TokenTransformer shape. The defaults with vocab_size=500 give ~433k parameters (embeddings tied)."""

    name: str = "token_transformer"
    vocab_size: int = 0  # 0 = filled in from the token spec by the caller; checked when the module is built
    layers: int = 3  # pre-norm Transformer blocks
    heads: int = 4  # attention heads; width / heads must be even for RoPE
    width: int = 112  # residual stream size
    mlp_ratio: float = 3.0  # MLP hidden size = mlp_ratio * width
    context: int = 384  # tokens attended (the KV cache size); a whole number of frames is the caller's business
    rope_base: float = 10000.0  # RoPE frequency base
    dropout: float = 0.0  # on attention weights and both residual branches, training only

    def validate(self, key: str) -> None:
        from worldmodels.config import require

        for field_name in ("layers", "heads", "width", "context"):
            value = getattr(self, field_name)
            require(value > 0, f"{key}.{field_name}", f"must be > 0 (got {value})")
        require(self.vocab_size >= 0, f"{key}.vocab_size", f"must be >= 0, 0 = from the token spec "
                                                           f"(got {self.vocab_size})")
        require(self.width % self.heads == 0, f"{key}.width",
                f"must be a multiple of heads={self.heads} (got {self.width})")
        require(self.width // self.heads % 2 == 0, f"{key}.heads",
                f"width / heads must be even for RoPE (got {self.width} / {self.heads})")
        require(self.mlp_ratio > 0, f"{key}.mlp_ratio", f"must be > 0 (got {self.mlp_ratio})")
        require(self.rope_base > 1, f"{key}.rope_base", f"must be > 1 (got {self.rope_base})")
        require(0 <= self.dropout < 1, f"{key}.dropout", f"must be in [0, 1) (got {self.dropout})")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


@dataclass
class KVCache:
    """The fixed-size cache of one decoding session, plus the window's tokens so that it can slide by itself."""

    k: torch.Tensor  # (layers, B, heads, context, head_dim), keys already rotated by RoPE
    v: torch.Tensor  # (layers, B, heads, context, head_dim)
    length: torch.Tensor  # (B,) int64, tokens in the window = filled slots
    tokens: torch.Tensor | None = None  # (B, context) int64, the window oldest first; None in the ONNX graphs
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


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, dropout: float) -> torch.Tensor:
    """The one attention used by every path: q (B, h, T, d), k/v (B, h, S, d), mask (B, 1, T, S) True = visible."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


class Attention(nn.Module):
    """Causal multi-head self-attention with RoPE on q and k, optionally writing into one layer of a KVCache."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads, self.head_dim, self.dropout = cfg.heads, cfg.head_dim, cfg.dropout
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=False)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=False)

    def forward(self, x, cos, sin, mask, layer_cache=None, slots=None):
        b, t, w = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, h, T, d)
        q, k, v = qkv.unbind(0)  # (B, h, T, d) each
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if layer_cache is not None:
            # Scatter (not in-place) so the same code traces to an ONNX ScatterElements.
            index = slots[:, None, :, None].expand(b, self.heads, t, self.head_dim)  # (B, h, T, d)
            k = layer_cache[0].scatter(2, index, k)  # (B, h, context, d)
            v = layer_cache[1].scatter(2, index, v)
        y = attend(q, k, v, mask, self.dropout if self.training else 0.0)  # (B, h, T, d)
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

    def forward(self, x, cos, sin, mask, layer_cache=None, slots=None):
        a, kv = self.attn(self.ln1(x), cos, sin, mask, layer_cache, slots)
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.ln2(x))), kv


class TokenTransformer(nn.Module):
    """Decoder-only Transformer: int64 tokens (B, T) at absolute positions -> next-token logits (B, T, vocab)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        from worldmodels.config import require

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

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor,
                cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache | None]:
        """tokens (B, T) int64, positions (B, T) or (T,) int64 -> logits (B, T, vocab), the updated cache.

        Without a cache: causal attention over the T tokens (training), and the returned cache is None.
        With a cache: the T tokens follow the window's (cache.length + T <= context); the returned cache holds them.
        """
        b, t = tokens.shape
        positions = positions.expand(b, t)  # (B, T)
        cos, sin = rope_tables(positions, self.cfg.head_dim, self.cfg.rope_base)
        steps = torch.arange(t, device=tokens.device)
        if cache is None:
            slots = None
            mask = (steps[None, :] <= steps[:, None])[None, None]  # (1, 1, T, T)
        else:
            slots = (cache.length.reshape(-1, 1) + steps).expand(b, t)  # (B, T) where the new tokens go
            slot_ids = torch.arange(self.cfg.context, device=tokens.device)
            mask = (slot_ids <= slots[:, :, None])[:, None]  # (B, 1, T, context): filled slots up to the query's own
        x = self.embed(tokens)  # (B, T, width)
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            layer_cache = None if cache is None else (cache.k[i], cache.v[i])
            x, (k, v) = block(x, cos, sin, mask, layer_cache, slots)
            keys.append(k)
            values.append(v)
        logits = self.ln_f(x) @ self.embed.weight.T  # (B, T, vocab); tied embeddings keep the default near 420k
        if cache is None:
            return logits, None
        window = (None, None) if cache.tokens is None else (cache.tokens.scatter(1, slots, tokens),
                                                            cache.positions.scatter(1, slots, positions))
        return logits, KVCache(torch.stack(keys), torch.stack(values), cache.length + t, *window)

    def cache_full(self, cache: KVCache) -> bool:
        """True when the next token does not fit and the window must slide first."""
        return bool((cache.length >= self.cfg.context).any())

    def slide(self, cache: KVCache, n: int) -> KVCache:
        """Drop the oldest n tokens (whole frames) and recompute the cache for the rest at their absolute positions.

        All rows must hold the same number of tokens; 0 <= n < that number.
        """
        length = int(cache.length[0])
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
        """One token per row: tokens (B, 1), position (B,) or (1,), cache_len (B,) or () with cache_len < context.

        Returns logits (B, vocab), k_cache_out, v_cache_out; the window then holds cache_len + 1 tokens.
        """
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
