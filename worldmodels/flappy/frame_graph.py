"""A whole Flappy frame per call: the decoding rules of `worldmodels/flappy/decoding/rules.py` (3-6) in one graph,
solved by fixed-point passes over the frame's 10 tokens.

    rules = frame_rules(SPEC)                                    # worldmodels.flappy.decoding.rules: ints from the spec
    graph = FrameGraph(model, rules)
    state, logits, k_frame, v_frame, slots, passes, next_first = graph(action_id, position, k, v, cache_len,
                                                                       previous, guess, uniforms, temperature)
    export_frame_onnx(model, rules, "flappy.frame.onnx")

A pass feeds the action and a guess of the frame's 9 state tokens as one 10-token chunk (one forward against the
KV cache) and applies the rules to every slot at once: slot s restricted to its legal ids given the guess before
it (its range and the hidden rule), greedy (the lowest id on a tie), or for the gap_y of a pipe that is new in this
frame, inverse CDF in float64 with that pipe slot's uniform. Slot s's choice is the sequential decoder's whenever
the guess is right before s, so the passes repeat with the choices as the next guess until nothing changes. That
fixed point is exactly the frame one-token-at-a-time decoding makes: pass k gets at least the first k slots right,
so it is reached after at most 10 passes, and after 1 when the guess was right. The last pass's keys and values are
those of the frame's true tokens. The guess only decides how many passes a frame costs (`frame_guess` in
decoding/rules.py makes a good one from the previous frames: things keep moving as they moved). Each pass also feeds
a speculative 11th token, the first action label (noop, what a player does most frames) after the frame: its logits
give `next_first`, the choice the next frame's first slot (bird_y: always greedy) gets if the next action is that
one. Nothing of it enters the cache; it only makes the next guess's hardest slot right.

Why passes instead of 10 decode steps: per call and per node, onnxruntime-web costs far more than the arithmetic of
one token, and a pass pays them once for 10 tokens with 10-row matrix products.

The cache is read, never copied: the frame attends to each layer's cached keys through a mask of their ages. The
outputs are the frame's 10 new key/value rows and the cache slots they belong in, which the caller writes into its
fixed-size cache in place (returning the whole cache would copy it out on every call). The caller keeps the window:
with the ordered cache there must be room for the frame (cache_len + 10 <= context; slide BEFORE the call by
re-prefilling the newest frames: `FrameDecoder(slide_before_frame=True)` gives the same frames one token per call),
with the ring (`sliding_window`) a frame always fits.

ONNX graph (opset 17, batch fixed at 1, every shape static), `frame_inputs(layers)` -> `FRAME_OUTPUTS`:
    action (1,) int64            the action's token id (action.start + action)
    position (1,) int64          its absolute position; the state tokens follow at position + 1 .. + 9
    k_cache_0 .. k_cache_{layers-1}, v_cache_0 ..   each layer's cache (1, heads, context, head_dim) float32 (one
                                 input per layer: slicing one stacked input would copy the whole cache every call)
    cache_len (1,) int64         filled slots
    previous (9,) int64          the previous frame's state tokens (for the new-pipe rule)
    guess (9,) int64             any ids of the vocabulary: the first pass's guess of this frame
    uniforms (2,) float64        one per pipe slot, in [0, 1), consumed used or not
    temperature (1,) float64     of the gap sampling (> 0)
 -> state (9,) int64, logits (10, vocab) float32 (row i: after the frame's i-th fed token; row 9 goes unused by
    the rules), k_frame, v_frame (layers, 1, heads, 10, head_dim) float32, slots (10,) int64 (the cache slot of each
    fed token), passes (1,) int64, next_first (1,) int64 (the next frame's first slot after the first action).
The loop-invariant part (RoPE tables, masks, the cache's layers) runs once; the pass is the body of an ONNX Loop
that runs while a choice changed.

This module knows nothing of the token spec: `FrameRules` carries the ids and slot layout as plain ints.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from worldmodels.core.manifest import OPSET
from worldmodels.flappy.decoding.rules import FrameRules
from worldmodels.flappy.graphs import FRAME_OUTPUTS, frame_inputs
from worldmodels.flappy.transformer import ChunkLayout, KVCache, TokenTransformer


def rule_tables(rules: FrameRules, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The rules' numbers as tensors: per slot (slots,) the id range, bins, hideable, marker position (for
    `legal_masks`); each pipe slot's marker position; the gap slots and their pipes (for `choose`)."""
    long = dict(dtype=torch.long, device=device)
    return {"start": torch.tensor([r.start for r in rules.slots], **long),
            "stop": torch.tensor([r.stop for r in rules.slots], **long),
            "bins": torch.tensor([r.bins for r in rules.slots], **long),
            "hideable": torch.tensor([r.marker_slot >= 0 for r in rules.slots], dtype=torch.bool, device=device),
            "marker": torch.tensor([max(r.marker_slot, 0) for r in rules.slots], **long),
            "pipe_markers": torch.tensor(rules.marker_slots, **long),
            "gap_slots": torch.tensor([s for s, r in enumerate(rules.slots) if r.gap_pipe >= 0], **long),
            "gap_pipes": torch.tensor([r.gap_pipe for r in rules.slots if r.gap_pipe >= 0], **long)}


def legal_masks(rules: FrameRules, frame: torch.Tensor, ids: torch.Tensor,
                tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """bool (slots, vocab): the ids allowed at every slot given the frame's tokens before it (`frame` (slots,)
    int64, only the markers are read), as TokenSpec.legal_mask: the slot's range, narrowed by its pipe's marker to
    the bins (visible) or the hidden id. `tables`: rule_tables(rules), made once by the caller."""
    t = tables if tables is not None else rule_tables(rules, frame.device)
    hidden = (frame[t["marker"]] == rules.hidden) & t["hideable"]  # (slots,): only the hidden id is legal
    low = t["start"] + hidden.long() * t["bins"]
    high = torch.where(t["hideable"], t["start"] + t["bins"] + hidden.long(), t["stop"])
    return (ids[None, :] >= low[:, None]) & (ids[None, :] < high[:, None])


def new_pipes(rules: FrameRules, frame: torch.Tensor, previous: torch.Tensor,
              tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """bool (pipes,): decoding.rules.pipe_is_new for every pipe slot at once. Slot k is visible in `frame`
    (slots,) and the pipe it holds (slot k + 1 of `previous` after a respawn, else slot k) was not visible in
    `previous`."""
    marker = (tables if tables is not None else rule_tables(rules, frame.device))["pipe_markers"]
    shown = previous[marker] == rules.visible  # (pipes,) in the previous frame
    x0, m0 = rules.x0_slot, rules.marker_slots[0]
    respawn = ((frame[m0:m0 + 1] == rules.visible) & shown[:1]
               & (frame[x0:x0 + 1] - previous[x0:x0 + 1] >= rules.respawn_dx))  # (1,)
    following = torch.cat([shown[1:], torch.zeros_like(shown[:1])])  # slot k + 1's; the last slot's pipe is unseen
    held = (respawn & following) | (~respawn & shown)  # And/Or, not Where: onnxruntime has no bool Where
    return (frame[marker] == rules.visible) & ~held


def sample_bins(logits: torch.Tensor, start: int, bins: int, u: torch.Tensor,
                temperature: torch.Tensor) -> torch.Tensor:
    """(rows,) int64: decoding.rules.sample_inverse_cdf of each row of `logits` (rows, vocab) with its `u` (rows,)
    over the ids start .. start + bins - 1 (a visible pipe's legal gaps), in float64: the first id whose cumulative
    softmax exceeds u * total."""
    z = logits[:, start:start + bins].to(torch.float64) / temperature
    cdf = torch.cumsum(torch.exp(z - z.max(1, keepdim=True).values), 1)  # (rows, bins)
    below = (cdf <= u[:, None] * cdf[:, -1:]).to(torch.int64).sum(1)  # numpy's searchsorted(..., side="right")
    return start + torch.minimum(below, torch.full_like(below, bins - 1))


def choose(rules: FrameRules, logits: torch.Tensor, guess: torch.Tensor, previous: torch.Tensor,
           uniforms: torch.Tensor, temperature: torch.Tensor, ids: torch.Tensor,
           tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Rules 3-6 at every slot at once: logits (slots, vocab), row s after the guess's tokens before slot s ->
    the choices (slots,) int64, each made as if the guess were the frame so far. All gap slots at once too (they
    share one id range: FrameRules.check)."""
    legal = legal_masks(rules, guess, ids, tables)
    choice = logits.masked_fill(~legal, float("-inf")).argmax(1)  # ArgMax keeps the first maximum: the lowest id
    gaps = [rule for rule in rules.slots if rule.gap_pipe >= 0]
    if not gaps:
        return choice
    t = tables if tables is not None else rule_tables(rules, guess.device)
    slots, pipes = t["gap_slots"], t["gap_pipes"]
    sampled = sample_bins(logits[slots], gaps[0].start, gaps[0].bins, uniforms[pipes], temperature)
    new = new_pipes(rules, guess, previous, t)[pipes]
    return choice.scatter(0, slots, torch.where(new, sampled, choice[slots]))


class FrameGraph(nn.Module):
    """One Flappy frame per call over a TokenTransformer's fixed-size KV cache (inputs/outputs: module docstring)."""

    def __init__(self, model: TokenTransformer, rules: FrameRules):
        super().__init__()
        rules.check()
        if rules.vocab_size != model.cfg.vocab_size:
            raise ValueError(f"frame rules: vocab {rules.vocab_size} but the model has {model.cfg.vocab_size}")
        self.model, self.rules = model, rules
        device = model.embed.weight.device
        self.register_buffer("ids", torch.arange(rules.vocab_size, device=device), persistent=False)
        self.tables = rule_tables(rules, device)

    @property
    def tokens_per_call(self) -> int:
        return len(self.rules.slots) + 1

    def prepare(self, position, cache_len) -> ChunkLayout:
        """What no pass changes: the layout of the frame's tokens and the speculative next action."""
        n = self.tokens_per_call + 1
        positions = (position.reshape(1, 1) + torch.arange(n, device=position.device))  # (1, 11)
        return self.model.layout(positions, cache_len.reshape(1))

    def frame_pass(self, guess, action, layout: ChunkLayout, cached, previous, uniforms, temperature):
        """One pass over `cached` (per layer (k, v), each (1, heads, context, head_dim)): (choices (9,), logits
        (10, vocab), k_frame, v_frame (layers, 1, heads, 10, head_dim), changed () bool, next_first (1,))."""
        first_action = torch.full_like(action.reshape(1), self.rules.first_action)
        tokens = torch.cat([action.reshape(1), guess, first_action])[None]  # (1, 11)
        logits, k, v = self.model.run(tokens, layout, cached)
        n = self.tokens_per_call
        state = choose(self.rules, logits[0, :n - 1], guess, previous, uniforms, temperature, self.ids, self.tables)
        first = self.rules.slots[0]  # a slot without a marker: greedy over its range
        next_first = first.start + logits[0, n, first.start:first.stop].argmax(0, keepdim=True)
        return state, logits[0, :n], k[..., :n, :], v[..., :n, :], (state != guess).any().reshape(()), next_first

    def forward(self, action, position, k_cache, v_cache, cache_len, previous, guess, uniforms, temperature):
        """k_cache, v_cache stacked (layers, 1, heads, context, head_dim); the ONNX graph takes them per layer."""
        layout = self.prepare(position, cache_len)
        cached = list(zip(k_cache.unbind(0), v_cache.unbind(0), strict=True))
        passes, changed = 0, True
        while changed:  # the fixed point comes by pass 10 (module docstring)
            state, logits, k, v, changed, next_first = self.frame_pass(guess, action, layout, cached, previous,
                                                                       uniforms, temperature)
            passes, guess = passes + 1, state
        slots = layout.slots[0, :self.tokens_per_call]
        return state, logits, k, v, slots, torch.tensor([passes], device=action.device), next_first


def frame_graph_example(model: TokenTransformer, rules: FrameRules) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes and dtypes (an empty cache) for tracing or a smoke call."""
    device = model.embed.weight.device
    cache = KVCache.empty(model.cfg, 1, device)
    long = dict(dtype=torch.long, device=device)
    starts = torch.tensor([rule.start for rule in rules.slots], **long)
    return (torch.zeros(1, **long), torch.zeros(1, **long), cache.k, cache.v, cache.length, starts, starts,
            torch.full((len(rules.marker_slots),), 0.5, dtype=torch.float64, device=device),
            torch.ones(1, dtype=torch.float64, device=device))


# ---- ONNX: the prepare part, then a Loop whose body is one pass ------------------------------------------------

class _Prepare(nn.Module):
    def __init__(self, graph: FrameGraph):
        super().__init__()
        self.graph = graph

    def forward(self, position, cache_len):
        layout = self.graph.prepare(position, cache_len)
        return layout.cos, layout.sin, layout.new_mask, layout.old_mask, layout.slots[0, :self.graph.tokens_per_call]


class _Pass(nn.Module):
    def __init__(self, graph: FrameGraph):
        super().__init__()
        self.graph = graph

    def forward(self, guess, action, previous, uniforms, temperature, cos, sin, new_mask, old_mask, *cached):
        layers = len(cached) // 2
        return self.graph.frame_pass(guess, action, ChunkLayout(cos, sin, new_mask, old_mask),
                                     list(zip(cached[:layers], cached[layers:], strict=True)), previous, uniforms,
                                     temperature)


def _renamed(graph, prefix: str, keep: set[str]) -> None:
    """Prefix every value name of an ONNX graph except those in `keep` (nodes, initializers, inputs, outputs)."""
    def name(n: str) -> str:
        return n if not n or n in keep else prefix + n

    for node in graph.node:
        node.input[:] = [name(n) for n in node.input]
        node.output[:] = [name(n) for n in node.output]
        node.name = prefix + node.name
    for collection in (graph.initializer, graph.input, graph.output, graph.value_info):
        for item in collection:
            item.name = name(item.name)


def export_frame_onnx(model: TokenTransformer, rules: FrameRules, path: str | Path) -> None:
    """Write the frame graph (TorchScript exporter, opset 17, batch 1, static shapes; names at the top): the
    prepare part and one pass are traced separately and joined into a graph whose ONNX Loop repeats the pass."""
    graph = FrameGraph(model.eval(), rules).eval()
    example = frame_graph_example(model, rules)
    action, position, k_cache, v_cache, cache_len, previous, guess, uniforms, temperature = example
    layers = model.cfg.layers
    inputs = frame_inputs(layers)
    cached_names = inputs[2:2 + 2 * layers]  # the graph's per-layer cache inputs, read by the body directly
    cached = [*k_cache.unbind(0), *v_cache.unbind(0)]
    prep_names = ["cos", "sin", "new_mask", "old_mask", "slots"]
    pass_inputs = ["guess", "action", "previous", "uniforms", "temperature", *prep_names[:4], *cached_names]
    pass_outputs = ["state", "logits", "k_frame", "v_frame", "changed", "next_first"]
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        prep_out = _Prepare(graph)(position, cache_len)
        torch.onnx.export(_Prepare(graph), (position, cache_len), f"{tmp}/prepare.onnx",
                          input_names=["position", "cache_len"], output_names=prep_names,
                          opset_version=OPSET, dynamo=False)
        pass_args = (guess, action, previous, uniforms, temperature, *prep_out[:4], *cached)
        torch.onnx.export(_Pass(graph), pass_args, f"{tmp}/pass.onnx", input_names=pass_inputs,
                          output_names=pass_outputs, opset_version=OPSET, dynamo=False)
        prepare, body = onnx.load(f"{tmp}/prepare.onnx"), onnx.load(f"{tmp}/pass.onnx")
        state, logits, k_frame, v_frame, _, _ = _Pass(graph)(*pass_args)

    outer = set(inputs) | set(prep_names)
    _renamed(prepare.graph, "prepare/", outer)
    _renamed(body.graph, "pass/", outer - {"guess"})
    weights = list(body.graph.initializer)  # the body reads the weights from the outer scope
    del body.graph.initializer[:]
    carried = [("pass/guess", TensorProto.INT64, [len(rules.slots)]),
               ("pass/logits_in", TensorProto.FLOAT, list(logits.shape)),
               ("pass/k_in", TensorProto.FLOAT, list(k_frame.shape)),
               ("pass/v_in", TensorProto.FLOAT, list(v_frame.shape)),
               ("pass/passes_in", TensorProto.INT64, [1]),
               ("pass/next_first_in", TensorProto.INT64, [1])]
    del body.graph.input[:]
    body.graph.input.extend([helper.make_tensor_value_info("pass/iteration", TensorProto.INT64, []),
                             helper.make_tensor_value_info("pass/condition", TensorProto.BOOL, []),
                             *[helper.make_tensor_value_info(n, t, s) for n, t, s in carried]])
    body.graph.node.extend([helper.make_node("Add", ["pass/passes_in", "frame/one"], ["pass/passes_out"])])
    del body.graph.output[:]
    body.graph.output.extend([
        helper.make_tensor_value_info("pass/changed", TensorProto.BOOL, []),
        helper.make_tensor_value_info("pass/state", TensorProto.INT64, list(state.shape)),
        helper.make_tensor_value_info("pass/logits", TensorProto.FLOAT, list(logits.shape)),
        helper.make_tensor_value_info("pass/k_frame", TensorProto.FLOAT, list(k_frame.shape)),
        helper.make_tensor_value_info("pass/v_frame", TensorProto.FLOAT, list(v_frame.shape)),
        helper.make_tensor_value_info("pass/passes_out", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("pass/next_first", TensorProto.INT64, [1])])
    constants = [
        numpy_helper.from_array(torch.tensor(graph.tokens_per_call).numpy(), "frame/max_passes"),
        numpy_helper.from_array(torch.tensor(True).numpy(), "frame/true"),
        numpy_helper.from_array(torch.ones(1, dtype=torch.long).numpy(), "frame/one"),
        numpy_helper.from_array(torch.zeros(1, dtype=torch.long).numpy(), "frame/no_passes"),
        numpy_helper.from_array(torch.zeros_like(logits).numpy(), "frame/no_logits"),
        numpy_helper.from_array(torch.zeros_like(k_frame).numpy(), "frame/no_rows")]
    loop = helper.make_node(
        "Loop", ["frame/max_passes", "frame/true", "guess", "frame/no_logits", "frame/no_rows", "frame/no_rows",
                 "frame/no_passes", "frame/no_passes"], ["state", "logits", "k_frame", "v_frame", "passes",
                                                         "next_first"], name="frame/passes",
        body=body.graph)
    shapes = {"state": state.shape, "logits": logits.shape, "k_frame": k_frame.shape, "v_frame": v_frame.shape,
              "slots": (graph.tokens_per_call,), "passes": (1,), "next_first": (1,)}
    types = {n: TensorProto.INT64 for n in ("state", "slots", "passes", "next_first")}
    dtypes = {torch.long: TensorProto.INT64, torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE}
    joined = helper.make_graph(
        [*prepare.graph.node, loop], "frame",
        [helper.make_tensor_value_info(n, dtypes[t.dtype], list(t.shape))
         for n, t in zip(inputs, [action, position, *cached, *example[4:]], strict=True)],
        [helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), list(shapes[n])) for n in FRAME_OUTPUTS],
        [*prepare.graph.initializer, *weights, *constants])
    out = helper.make_model(joined, opset_imports=[helper.make_opsetid("", OPSET)],
                            producer_name="worldmodels.frame_graph")
    out.ir_version = prepare.ir_version
    onnx.checker.check_model(out)
    onnx.save(out, str(path))
