"""worker_mixin.py's operations on a real tiny Qwen2.5-VL under FSDP (gloo, CPU), with EasyR1's LambdaLR."""

from __future__ import annotations

import math

import easyr1_lane as lane
import pytest
import torch
from transformers import AutoTokenizer, GenerationConfig, Qwen2_5_VLForConditionalGeneration
from verl.utils.torch_functional import get_cosine_schedule_with_warmup

from vlm_capcurriculum.integrations import torch_ops
from vlm_capcurriculum.integrations.easyr1 import worker_mixin
from vlm_capcurriculum.integrations.easyr1.hf_export import write_hf_model_dir
from vlm_capcurriculum.integrations.easyr1.layout import has_weights

pytestmark = pytest.mark.usefixtures("process_group")


def _actor(model_config, *, use_orig_params=True, freeze_tower_at_start=False, seed=0, **kwargs):
    model = lane.build_model(model_config, seed)
    if freeze_tower_at_start:  # what EasyR1's worker.actor.model.freeze_vision_tower does before wrapping
        model.model.visual.requires_grad_(False)
    fsdp_module = lane.wrap_fsdp(model, use_orig_params=use_orig_params)
    actor, optimizer, scheduler = lane.build_actor(fsdp_module, **kwargs)
    return fsdp_module, actor, optimizer, scheduler


def _tower_keys(state):
    return [key for key in state if key.startswith("model.visual.")]


def test_frozen_tower_does_not_move_and_keeps_its_optimizer_state(model_config, batch):
    fsdp_module, actor, optimizer, scheduler = _actor(model_config, weight_decay=0.1)
    gate = torch_ops.VisionTowerGate(fsdp_module, optimizer)
    lane.train_step(actor, scheduler, batch)  # a trainable stage first: the tower gets Adam state
    tower_state = {id(p): {k: v.clone() for k, v in optimizer.state[p].items()} for p in gate.parameters}
    before = lane.full_state(fsdp_module)

    gate.set_trainable(False)
    for _ in range(3):
        lane.train_step(actor, scheduler, batch)
    after = lane.full_state(fsdp_module)

    tower = _tower_keys(before)
    assert tower and all(torch.equal(before[key], after[key]) for key in tower)  # no gradient, no weight decay
    assert all(not torch.equal(before[key], after[key]) for key in before if key not in tower)
    for param in gate.parameters:  # Adam moments and step count untouched
        for name, value in tower_state[id(param)].items():
            assert torch.equal(optimizer.state[param][name], value), name

    gate.set_trainable(True)
    lane.train_step(actor, scheduler, batch)
    resumed = lane.full_state(fsdp_module)
    assert all(not torch.equal(after[key], resumed[key]) for key in tower)


def test_gate_matches_easyr1_freeze_vision_tower(model_config, batch):
    """Our mid-run freeze trains the rest exactly like EasyR1's freeze-at-start (up to float summation order)."""
    gated, gated_actor, gated_optimizer, gated_scheduler = _actor(model_config)
    torch_ops.VisionTowerGate(gated, gated_optimizer).set_trainable(False)
    frozen, frozen_actor, _, frozen_scheduler = _actor(model_config, freeze_tower_at_start=True)
    for _ in range(3):
        gated_norm = lane.train_step(gated_actor, gated_scheduler, batch)
        frozen_norm = lane.train_step(frozen_actor, frozen_scheduler, batch)
        assert gated_norm == pytest.approx(frozen_norm, rel=1e-6)
    ours, theirs = lane.full_state(gated), lane.full_state(frozen)
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-7)


def test_gate_needs_orig_params_and_a_trainable_tower(model_config):
    fsdp_module, _, optimizer, _ = _actor(model_config, use_orig_params=False)
    with pytest.raises(ValueError, match="use_orig_params"):
        torch_ops.VisionTowerGate(fsdp_module, optimizer)
    fsdp_module, _, optimizer, _ = _actor(model_config, freeze_tower_at_start=True)
    with pytest.raises(ValueError, match="frozen at start"):
        torch_ops.VisionTowerGate(fsdp_module, optimizer)


def test_set_base_lr_takes_effect_now_and_keeps_the_schedule(model_config, batch):
    _, actor, optimizer, _ = _actor(model_config, lr=1e-3)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=2, num_training_steps=10, min_lr_ratio=0.1)
    for _ in range(3):
        lane.train_step(actor, scheduler, batch)
    factor = scheduler.lr_lambdas[0]

    current = torch_ops.set_base_lr(optimizer, scheduler, 5e-4)

    assert current == [pytest.approx(5e-4 * factor(3))]
    assert scheduler.get_last_lr() == current  # what EasyR1 logs as actor/lr
    assert optimizer.param_groups[0]["lr"] == current[0]  # used by the very next optimizer step
    lane.train_step(actor, scheduler, batch)
    assert scheduler.get_last_lr()[0] == pytest.approx(5e-4 * factor(4))
    with pytest.raises(ValueError):
        torch_ops.set_base_lr(optimizer, scheduler, math.nan)


def test_a_stage_warm_up_restarts_easyr1s_constant_schedule(model_config, batch):
    _, actor, optimizer, scheduler = _actor(model_config, lr=1e-3)  # EasyR1's constant schedule, no warm-up
    for _ in range(2):
        lane.train_step(actor, scheduler, batch)
    # the stage starts with the next update and warms up over 4: lr x 0, 1/4, 2/4, 3/4, then 1
    assert torch_ops.set_stage_warmup(optimizer, scheduler, 0, 4) == [0.0]
    seen = []
    for _ in range(5):
        seen.append(optimizer.param_groups[0]["lr"])
        lane.train_step(actor, scheduler, batch)
    assert seen == [pytest.approx(1e-3 * f) for f in (0, 0.25, 0.5, 0.75, 1)]


def test_actor_knobs_are_the_ones_easyr1_reads(model_config, batch):
    _, actor, optimizer, scheduler = _actor(model_config, max_grad_norm=1.0)
    seen = []
    optimizer.register_step_pre_hook(
        lambda opt, *_: seen.append(
            math.sqrt(
                sum(
                    float(p.grad.float().pow(2).sum())
                    for g in opt.param_groups
                    for p in g["params"]
                    if p.grad is not None
                )
            )
        )
    )
    previous = worker_mixin.set_actor_knobs(
        actor.config, {"max_grad_norm": 0.05, "kl_coef": 0.05, "clip_ratio_low": 0.15, "clip_ratio_high": 0.25}
    )
    assert previous["max_grad_norm"] == 1.0
    norm = lane.train_step(actor, scheduler, batch)
    assert norm > 0.05 and seen[-1] == pytest.approx(0.05, rel=1e-3)  # EasyR1's clip used the new value
    assert (actor.config.kl_coef, actor.config.clip_ratio_low, actor.config.clip_ratio_high) == (0.05, 0.15, 0.25)
    with pytest.raises(AttributeError):  # not a field of EasyR1's ActorConfig (values: the core's knob table checks)
        worker_mixin.set_actor_knobs(actor.config, {"lr": 1.0})


def test_reset_optimizer_forgets_moments(model_config, batch):
    _, actor, optimizer, scheduler = _actor(model_config)
    lane.train_step(actor, scheduler, batch)
    assert torch_ops.reset_optimizer_state(optimizer) > 0
    assert len(optimizer.state) == 0
    lane.train_step(actor, scheduler, batch)
    assert all(float(state["step"]) == 1 for state in optimizer.state.values())


def test_refresh_reference_copies_actor_weights(model_config, batch):
    fsdp_module, actor, _, scheduler = _actor(model_config, seed=0)
    lane.train_step(actor, scheduler, batch)
    # EasyR1's reference: bf16 weights, FSDP without use_orig_params, no optimizer, different content
    reference_model = lane.build_model(model_config, seed=7).to(torch.bfloat16).requires_grad_(False)
    reference = lane.wrap_fsdp(reference_model, use_orig_params=False)

    torch_ops.copy_weights(fsdp_module, reference)

    actor_weights, reference_weights = lane.full_state(fsdp_module), lane.full_state(reference)
    assert actor_weights.keys() == reference_weights.keys()
    for key, value in actor_weights.items():
        assert torch.equal(reference_weights[key], value.to(torch.bfloat16)), key


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stage_checkpoint_is_a_loadable_hf_model(model_config, tokenizer, batch, tmp_path, dtype):
    fsdp_module, actor, _, scheduler = _actor(model_config)
    lane.train_step(actor, scheduler, batch)
    weights = torch_ops.gather_full_state_dict(fsdp_module)
    model = torch_ops.unwrap_model(fsdp_module)
    generation = GenerationConfig(eos_token_id=[5, 6], max_new_tokens=64)

    out = write_hf_model_dir(
        tmp_path / "stage_1",
        weights,
        model.config,
        processing_class=tokenizer,
        generation_config=generation,
        dtype=dtype,
    )

    assert has_weights(out) and not list(tmp_path.glob(".stage_1*"))
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(out, torch_dtype="auto").eval()
    assert loaded.dtype == dtype  # config.json records the dtype (vLLM reads it too)
    expected = lane.build_model(model_config)
    expected.load_state_dict({key: value.to(dtype).float() for key, value in weights.items()})
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    with torch.no_grad():
        assert torch.equal(loaded.float()(**inputs).logits, expected(**inputs).logits)
    assert GenerationConfig.from_pretrained(out).eos_token_id == [5, 6]
    assert AutoTokenizer.from_pretrained(out)("a<|image_pad|>").input_ids == tokenizer("a<|image_pad|>").input_ids
    with pytest.raises(FileExistsError):
        write_hf_model_dir(out, weights, model.config, dtype=dtype)


def test_two_ranks_freeze_and_export(tmp_path):
    """Real sharding: 2 gloo ranks, tower frozen mid-run, stage export, the export reloaded into a bf16 reference
    (broadcast from rank 0), EasyR1 shards merged by hf_export.py."""
    lane.run_distributed(lane.two_rank_scenario, 2, str(tmp_path))
    results = torch.load(tmp_path / "results.pt", weights_only=False)
    assert results["tower_unchanged"] and results["text_changed"]
    assert results["exported_equals_full"] and results["merged_equals_full"]
    assert results["reference_loaded"]


@pytest.mark.parametrize("strategy", ["adamw", "adamw_bf16"])
def test_freezing_before_any_step_leaves_the_state_a_first_step_would_create(model_config, batch, strategy):
    """Frozen-then-unfrozen with no step in between trains exactly like never frozen, for both EasyR1 optimizers."""
    gated, gated_actor, gated_optimizer, gated_scheduler = _actor(model_config, strategy=strategy)
    gate = torch_ops.VisionTowerGate(gated, gated_optimizer)
    before = lane.full_state(gated)
    gate.set_trainable(False)
    assert all(gated_optimizer.state[param] for param in gate.parameters)  # filled (FSDP needs it to save)
    assert all(torch.equal(value, lane.full_state(gated)[key]) for key, value in before.items())
    gate.set_trainable(True)
    plain, plain_actor, _, plain_scheduler = _actor(model_config, strategy=strategy)
    for _ in range(2):
        lane.train_step(gated_actor, gated_scheduler, batch)
        lane.train_step(plain_actor, plain_scheduler, batch)
    ours, theirs = lane.full_state(gated), lane.full_state(plain)
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


@pytest.mark.parametrize("freeze_first", [True, False])
def test_checkpoint_of_a_tower_frozen_from_the_start_saves_and_resumes_exactly(
    model_config, batch, freeze_first, tmp_path
):
    """EasyR1's save/load (torch get_state_dict/set_state_dict, as FSDPCheckpointManager calls them) with the
    tower frozen before it ever stepped, and the gate re-applied before or after the restore."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

    options = StateDictOptions(cpu_offload=True)
    fsdp_module, actor, optimizer, scheduler = _actor(model_config)
    original_gate = torch_ops.VisionTowerGate(fsdp_module, optimizer)
    original_gate.set_trainable(False)
    for _ in range(2):
        lane.train_step(actor, scheduler, batch)
    # through files, as FSDPCheckpointManager does (the in-memory dicts alias the live optimizer's tensors)
    torch.save(get_state_dict(fsdp_module, optimizer, options=options), tmp_path / "model_and_optim.pt")
    model_state, optim_state = torch.load(tmp_path / "model_and_optim.pt", weights_only=False)

    resumed, resumed_actor, resumed_optimizer, resumed_scheduler = _actor(model_config, seed=5)
    gate = torch_ops.VisionTowerGate(resumed, resumed_optimizer)
    if freeze_first:
        gate.set_trainable(False)
    set_state_dict(
        resumed, resumed_optimizer, model_state_dict=model_state, optim_state_dict=optim_state, options=options
    )
    gate.set_trainable(False)
    resumed_scheduler.load_state_dict(scheduler.state_dict())

    original_gate.set_trainable(True)  # the next stage trains the tower: both runs must agree from here on
    gate.set_trainable(True)
    for _ in range(2):
        lane.train_step(actor, scheduler, batch)
        lane.train_step(resumed_actor, resumed_scheduler, batch)
    ours, theirs = lane.full_state(fsdp_module), lane.full_state(resumed)
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
