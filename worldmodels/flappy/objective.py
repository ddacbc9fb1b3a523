"""The token objective for the Flappy Bird Transformer (soft-bin cross-entropy), on the shared training core.

A batch is a dict of `tokens` (B, L) int64, `positions` (B, L) int64 absolute positions counted from an episode's
first token (so `position % 10` is the token's slot in its frame, see `worldmodels.flappy.tokens`) and `mask`
(B, L) bool, False on padding. The net predicts token t + 1 from tokens <= t:

    logits_t  = net(tokens, positions)[:, t]                      masked to the legal ids of slot(t + 1)
    target_t  = TABLE[tokens[:, t + 1]]                           a distribution over slot(t + 1)'s field
    loss      = sum_t w_t * -sum_v target_t[v] * log_softmax(logits_t)[v]  /  sum_t w_t

over pairs (t, t + 1) that are both unpadded. The row of TABLE for a bin of a field in `soft_bin_fields` (bird_y and
pipe_x by default) is a Gaussian of std `soft_bin_width` bins over the same field's bins, truncated at
+-ceil(3 * width) and renormalized, so a prediction one bin off costs less than one far off; the other fields' bins
(gap_y by default: a new gap takes one of 8 heights, and a smoothed target would teach heights between them), hidden
ids, markers and actions (and every id at width 0) get one-hot rows.
Masking the logits to the slot's static id range before the softmax makes training score exactly the choices that
slot-constrained decoding (`worldmodels.flappy.decoding`) can make. w_t is `done_weight` / `respawn_weight` on the
done / respawn slots (rare, and a miss derails a rollout), `action_weight` on the action slot (0 by default: the
player, not the model, supplies actions) and 1 elsewhere.

Logged metrics (train/ and val/): `ce` (unweighted loss over state slots), per-field exact accuracy `acc_<field>`
and, for ordinal fields, within-one-bin accuracy `acc1_<field>` (argmax inside the slot's legal range; a hidden id
counts only when exact), and `done_recall`, the share of true deaths whose done token is predicted (only in batches
that hold a death).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from worldmodels.core.errors import UserError
from worldmodels.core.module import WorldModelModule
from worldmodels.flappy.config import TokenObjectiveConfig
from worldmodels.flappy.tokens import ACTION, ORDINAL, SPEC, TokenSpec


def soft_target_table(spec: TokenSpec, width: float, fields=None) -> torch.Tensor:
    """float32 (vocab, vocab): row i is the target distribution when the true next token is id i. `fields`: the
    ordinal fields smoothed (default: all of them)."""
    table = torch.eye(spec.vocab_size)
    if width == 0:
        return table
    radius = math.ceil(3 * width)
    fields = spec.ordinal_fields if fields is None else fields
    if set(fields) - set(spec.ordinal_fields):
        raise ValueError(f"soft_target_table: {sorted(set(fields) - set(spec.ordinal_fields))} are not ordinal fields")
    for name in fields:
        start, bins = spec.id_range(name)[0], spec.field_named(name).bins
        b = torch.arange(bins, dtype=torch.float64)
        distance = b[None, :] - b[:, None]  # (bins, bins): target bin - true bin
        kernel = torch.exp(-0.5 * (distance / width) ** 2) * (distance.abs() <= radius)
        table[start:start + bins, start:start + bins] = (kernel / kernel.sum(1, keepdim=True)).float()
    return table


def slot_legal_table(spec: TokenSpec) -> torch.Tensor:
    """bool (tokens_per_frame, vocab): the static legal id range of each slot."""
    legal = torch.zeros(spec.tokens_per_frame, spec.vocab_size, dtype=torch.bool)
    for slot, (start, stop) in enumerate(spec.slot_ranges()):
        legal[slot, start:stop] = True
    return legal


def slot_weights(spec: TokenSpec, cfg: TokenObjectiveConfig) -> torch.Tensor:
    """float32 (tokens_per_frame,): the loss weight of predicting each slot."""
    by_field = {"done": cfg.done_weight, "respawn": cfg.respawn_weight, "action": cfg.action_weight}
    return torch.tensor([by_field.get(slot.field, 1.0) for slot in spec.frame])


class TokenLoss(nn.Module):
    """The objective as a plain module (the tables are buffers): `forward(logits, batch) -> (loss, metrics)`."""

    def __init__(self, cfg: TokenObjectiveConfig, spec: TokenSpec = SPEC):
        super().__init__()
        self.spec = spec
        # Derived from the config and the spec, so they are not saved in checkpoints.
        self.register_buffer("target_table", soft_target_table(spec, cfg.soft_bin_width, cfg.soft_bin_fields),
                             persistent=False)
        self.register_buffer("slot_legal", slot_legal_table(spec), persistent=False)
        self.register_buffer("slot_start", torch.tensor([start for start, _ in spec.slot_ranges()]), persistent=False)
        self.register_buffer("slot_weight", slot_weights(spec, cfg), persistent=False)
        field_of_id = torch.zeros(spec.vocab_size, dtype=torch.long)
        for i, f in enumerate(spec.fields):
            start, stop = spec.id_range(f.name)
            field_of_id[start:stop] = i
        self.register_buffer("field_of_id", field_of_id, persistent=False)

    def per_position(self, logits: torch.Tensor, batch: dict) -> tuple[torch.Tensor, ...]:
        """Masked logits (B, L-1, vocab) and, per predicted position (B, L-1): cross-entropy against the soft
        target, weight (0 on padding), target id and slot."""
        tokens, positions, mask = batch["tokens"], batch["positions"], batch["mask"]
        slots = positions[:, 1:] % self.spec.tokens_per_frame  # (B, L-1) the slot each target fills
        valid = mask[:, :-1] & mask[:, 1:]
        # Padding gets a stand-in target that is legal for its slot, so no infinity reaches the (zero) weights.
        targets = torch.where(valid, tokens[:, 1:], self.slot_start[slots])  # (B, L-1)
        legal = self.slot_legal[slots]  # (B, L-1, vocab)
        if not bool(legal.gather(-1, targets[..., None]).all()):
            raise UserError("token batch: a token is outside its slot's id range; positions must count from the "
                            "episode's first token so that position % 10 is the token's slot in its frame")
        # float32 even under bf16 autocast: the soft targets need the small log-probabilities too.
        masked = logits[:, :-1].float().masked_fill(~legal, float("-inf"))
        log_probs = F.log_softmax(masked, dim=-1)
        target = self.target_table[targets]  # (B, L-1, vocab), zero outside the legal range
        # where(): 0 * -inf is NaN, and every illegal id has zero target mass.
        ce = -torch.where(target > 0, target * log_probs, torch.zeros_like(log_probs)).sum(-1)
        weight = self.slot_weight[slots] * valid
        return masked, ce, weight, targets, slots

    def forward(self, logits: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        masked, ce, weight, targets, slots = self.per_position(logits, batch)
        loss = (ce * weight).sum() / weight.sum().clamp_min(1e-8)
        valid = batch["mask"][:, :-1] & batch["mask"][:, 1:]  # metrics count every slot, whatever its weight
        with torch.no_grad():
            return loss, self.metrics(masked, ce, valid, targets, slots)

    def metrics(self, masked, ce, valid, targets, slots) -> dict[str, torch.Tensor]:
        spec = self.spec
        state = valid & (slots < spec.state_tokens_per_frame)
        pred = masked.argmax(-1)  # (B, L-1), inside the slot's legal range
        exact = pred == targets
        names, hits, counts = ["ce"], [(ce * state).sum()], [state.sum()]
        target_field = self.field_of_id[targets]
        for i, f in enumerate(spec.fields):
            if f.kind == ACTION:
                continue
            rows = state & (target_field == i)
            names.append(f"acc_{f.name}")
            hits.append((exact & rows).sum())
            counts.append(rows.sum())
            if f.kind == ORDINAL:
                start = spec.id_range(f.name)[0]
                binned = (targets - start < f.bins) & (pred - start < f.bins)
                near = exact | (binned & ((pred - targets).abs() <= 1))
                names.append(f"acc1_{f.name}")
                hits.append((near & rows).sum())
                counts.append(rows.sum())
        deaths = valid & (targets == spec.label_id("done", "yes"))
        names.append("done_recall")
        hits.append((exact & deaths).sum())
        counts.append(deaths.sum())
        hits, counts = torch.stack(hits).float(), torch.stack(counts)
        # One host sync for all of them; a metric with no examples in this batch is left out rather than logged
        # as a made-up 0 or 1 (batches without a death are common).
        present = (counts > 0).tolist()
        values = hits / counts.clamp_min(1)
        return {name: values[i] for i, name in enumerate(names) if present[i]}


class TokenModule(WorldModelModule):
    """The Flappy world model: a TokenTransformer trained with `TokenLoss`."""

    def __init__(self, net: nn.Module, cfg: TokenObjectiveConfig, run_config: dict, spec: TokenSpec = SPEC):
        vocab = getattr(getattr(net, "cfg", None), "vocab_size", None)
        if vocab != spec.vocab_size:
            raise UserError(f"model.vocab_size: is {vocab} but the token spec has {spec.vocab_size} ids; set it to "
                            f"0 (filled in from the spec) or {spec.vocab_size}")
        super().__init__(net, cfg.optim, run_config)
        self.cfg = cfg
        self.spec = spec
        self.objective = TokenLoss(cfg, spec)

    def compute_loss(self, batch, generator: torch.Generator | None = None, net: nn.Module | None = None):
        net = net or self.net
        logits, _ = net(batch["tokens"], batch["positions"])  # (B, L, vocab)
        return self.objective(logits, batch)
