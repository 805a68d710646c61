"""Splitting training over GPUs (engine.cost.parallelism): what each GPU holds under DDP, ZeRO-1/2/3, tensor and
pipeline parallelism adds up to the one-GPU state, the ZeRO paper's own numbers come out, the traffic and the bubble
follow their formulas, and bad counts are refused with a sentence that says why."""

from __future__ import annotations

import pytest

from engine.cost.memory import training_memory
from engine.cost.parallelism import (
    bubble,
    kind,
    parallelism_map,
    published_parallelism,
    shares,
    stage_parameters,
)
from engine.transform.model import GPT, GPTConfig


def _sum_over_gpus(scheme, part: str) -> float:
    return sum(g.parts[part] for g in scheme.gpus)


def test_the_zero_papers_figure_1_numbers():
    """Rajbhandari et al. 2020, Figure 1: 7.5B parameters on 64 GPUs hold 120, 31.4, 16.6 and 1.9 GB per GPU."""
    m = parallelism_map({"adamw": 7_500_000_000}, 64)
    per_gpu = {s.id: s.largest.total / 1e9 for s in m.schemes}
    assert per_gpu["ddp"] == pytest.approx(120.0)
    assert per_gpu["zero1"] == pytest.approx(4 * 7.5 + 12 * 7.5 / 64)  # 31.4
    assert per_gpu["zero2"] == pytest.approx(2 * 7.5 + 14 * 7.5 / 64)  # 16.6
    assert per_gpu["zero3"] == pytest.approx(120.0 / 64)  # 1.875


@pytest.mark.parametrize("gpus", [1, 3, 8, 64])
def test_sharded_parts_add_up_to_the_whole_and_full_copies_repeat_it(gpus):
    n = 1_000_003  # not a multiple of any GPU count: the shares differ by one parameter
    m = parallelism_map({"adamw": n}, gpus)
    whole = {p.name: p.bytes for p in m.state.parts}
    assert m.state.state_bytes == 16 * n and len(whole) == 4  # 16-bit weights and gradients, master weights, Adam
    for s in m.schemes:
        assert len(s.gpus) == gpus
        for part, total in whole.items():
            copies = 1 if kind(part) in s.split else gpus  # a sharded part once in all; a full one on every GPU
            assert _sum_over_gpus(s, part) == pytest.approx(copies * total), (s.id, part)
    ddp, zero3 = m.scheme("ddp"), m.scheme("zero3")
    assert ddp.largest.total == m.state.state_bytes
    assert zero3.largest.total == pytest.approx(ddp.largest.total / gpus, abs=16)  # within one parameter's bytes
    assert m.scheme("tensor").largest.total == zero3.largest.total == m.scheme("pipeline").largest.total


def test_each_zero_stage_shards_one_more_kind_and_holds_less():
    m = parallelism_map({"adamw": 8_000_000}, 8)
    assert [m.scheme(i).split for i in ("ddp", "zero1", "zero2", "zero3")] == [
        (), ("optimizer",), ("optimizer", "gradients"), ("optimizer", "gradients", "weights")]
    totals = [m.scheme(i).largest.total for i in ("ddp", "zero1", "zero2", "zero3")]
    assert totals == sorted(totals, reverse=True) and len(set(totals)) == 4
    z1 = m.scheme("zero1").largest
    assert z1.of_kind("weights") == 2 * 8_000_000 and z1.of_kind("gradients") == 2 * 8_000_000  # full copies
    assert z1.of_kind("optimizer") == 12 * 1_000_000  # master weights + Adam's moments, an eighth of them


def test_traffic_per_gpu_follows_the_ring_collectives():
    n, gpus = 1_000_000, 4
    m = parallelism_map({"adamw": n}, gpus)
    grads = weights = 2 * n  # 16-bit
    ring = (gpus - 1) / gpus
    assert m.scheme("ddp").sent_bytes == pytest.approx(2 * ring * grads)  # all-reduce
    assert m.scheme("zero1").sent_bytes == m.scheme("zero2").sent_bytes == m.scheme("ddp").sent_bytes
    assert m.scheme("zero3").sent_bytes == pytest.approx(1.5 * m.scheme("ddp").sent_bytes)  # weights gathered twice
    assert ring * (grads + 2 * weights) == pytest.approx(m.scheme("zero3").sent_bytes)
    assert m.scheme("tensor").sent_bytes is None and "activations" in m.scheme("tensor").sends
    assert "bubble" in m.scheme("pipeline").sends and "all-reduce" in m.scheme("ddp").sends
    alone = parallelism_map({"adamw": n}, 1)
    assert all(s.sent_bytes in (0, None) for s in alone.schemes) and alone.bubble == 0


def test_the_bubble_grows_with_stages_and_shrinks_with_micro_batches():
    assert bubble(2, 1) == 0.5 and bubble(8, 8) == pytest.approx(7 / 15) and bubble(8, 64) == pytest.approx(7 / 71)
    assert bubble(16, 8) > bubble(8, 8) > bubble(8, 32)
    assert parallelism_map({"adamw": 100}, 4, micro_batches=4).bubble == pytest.approx(3 / 7)


def test_pipeline_stages_hold_whole_layers_so_an_uneven_split_loads_some_gpus_more():
    assert stage_parameters(1000, 10, 4) == [300, 300, 200, 200] and sum(stage_parameters(999, 7, 3)) == 999
    assert shares(10, 4) == [3, 3, 2, 2] and shares(0, 2) == [0, 0]
    m = parallelism_map({"adamw": 1200}, 4, layers=6)  # 2, 2, 1, 1 layers of 200 parameters
    assert [g.total for g in m.scheme("pipeline").gpus] == [16 * 400, 16 * 400, 16 * 200, 16 * 200]
    assert m.scheme("pipeline").largest.total > m.scheme("tensor").largest.total  # the fullest stage decides


def test_the_learners_model_with_its_optimizer_mix_splits_too():
    """A real GPT's parameter count and layers; Muon's one momentum buffer counts as optimizer state like Adam's."""
    config = GPTConfig(n_layer=4, n_head=2, n_embd=32, block_size=16, vocab_size=40)
    n = sum(p.numel() for p in GPT(config).parameters())
    mix = {"adamw": n // 3, "muon": n - n // 3}
    m = parallelism_map(mix, 2, layers=config.n_layer, precision="float32", adamw_tensors=5)
    state = training_memory(mix, "float32", adamw_tensors=5)
    assert m.parameters == n and m.state.state_bytes == pytest.approx(state.state_bytes)
    z1 = m.scheme("zero1")
    assert sum(g.of_kind("optimizer") for g in z1.gpus) == pytest.approx(
        sum(p.bytes for p in state.parts if kind(p.name) == "optimizer"))
    assert z1.largest.of_kind("weights") == 4 * n  # float32 weights, a full copy on each GPU
    assert sum(g.total for g in m.scheme("pipeline").gpus) == pytest.approx(state.state_bytes)


def test_a_published_model_from_the_catalogue():
    m = published_parallelism("llama3_8b", 8, micro_batches=4)
    assert m.parameters == 8_000_000_000 and m.layers is None and m.micro_batches == 4
    assert m.scheme("ddp").largest.total == 128e9 and m.scheme("zero3").largest.total == 16e9
    assert m.scheme("zero1").largest.total == pytest.approx(4 * 8e9 + 12 * 8e9 / 8)  # 44 GB: fits one H100
    with pytest.raises(KeyError):
        published_parallelism("no_such_model", 8)


@pytest.mark.parametrize("gpus", [0, -2, 2.5, True, "8"])
def test_a_bad_gpu_count_is_refused_with_a_clear_message(gpus):
    with pytest.raises(ValueError, match="the GPU count must be a whole number, 1 or more"):
        parallelism_map({"adamw": 1000}, gpus)


def test_other_impossible_splits_are_refused():
    with pytest.raises(ValueError, match="a pipeline of 8 stages needs at least 8 layers, one per GPU; this model has 4"):
        parallelism_map({"adamw": 1000}, 8, layers=4)
    with pytest.raises(ValueError, match="micro-batch count"):
        parallelism_map({"adamw": 1000}, 2, micro_batches=0)
    with pytest.raises(ValueError, match="no parameters"):
        parallelism_map({"adamw": 0}, 2)
    with pytest.raises(ValueError, match="precision"):
        parallelism_map({"adamw": 1000}, 2, precision="fp8")
