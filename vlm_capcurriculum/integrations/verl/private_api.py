"""Every verl name we touch that verl does not promise to keep, in one place (re-check them on a verl upgrade).

One line each: where, and why we need it. Tested with verl 0.9.1 (``pyproject.toml``'s ``verl`` extra pins
``>=0.9.1,<0.10``). The trainer-side names (``PPOTrainer``/worker/engine attributes the curriculum operations use) are
listed in ``docs/integrations/verl.md`` ("verl internals we depend on"); the names below are those our process-local
patches replace or read. Importing this module imports nothing from verl.
"""

from __future__ import annotations

#: (verl name, why) for every patch of the CPU device (:mod:`.cpu`, :mod:`.hf_rollout`, :mod:`.dataset`), of the
#: verl fixes (:mod:`.verl_fixes`) and for InternVL (:mod:`.internvl`).
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    # CPU device (applied only with backend.device=cpu)
    (
        "verl.workers.rollout.base._ROLLOUT_REGISTRY",
        "the rollout-class registry has no register function; the hf rollout's worker-side adapter is added to it",
    ),
    (
        "verl.utils.distributed.initialize_global_process_group(_ray)",
        "verl builds the backend string 'cpu:gloo,<device>:<backend>', which is 'cpu:gloo,cpu:gloo' on a CPU: gloo",
    ),
    (
        "verl.workers.engine.fsdp.transformer_impl.CPUOffloadPolicy",
        "the forward-only reference is wrapped with CPUOffloadPolicy(pin_memory=True); pinning needs an accelerator",
    ),
    (
        "verl.utils.tokenizer.tokenizer.hf_processor (and every verl module that bound it by name)",
        "binds get_rope_index by the processor's exact class name and drops our image-only subclasses as text-only",
    ),
    (
        "torch.compile (in the verl process)",
        "verl compiles log-prob/entropy kernels at import; inductor on a CPU needs a C++ toolchain and minutes",
    ),
    (
        "verl.utils.dataset.rl_dataset.RLHFDataset._process_multi_modal_info (overridden in our dataset class)",
        "imports qwen_vl_utils, which imports torchvision at module top (no CPU build for every torch)",
    ),
    (
        "verl.workers.rollout.replica.RolloutReplica.servers/_server_handle/_server_address",
        "what LLMServerManager reads from a replica after launch_servers (the hf replica sets them)",
    ),
    (
        "verl.trainer.ppo.v1.replay_buffer.ReplayBuffer.poll_interval (set after __init__)",
        "the trainer polls TransferQueue every 2 s (not configurable): half of a CPU step; 0.05 s on the CPU device",
    ),
    # verl fixes (applied on every device by the verl.plugins entry point)
    (
        "verl.models.transformers.qwen2_vl._get_input_embeds (+ unpack_visual_output)",
        "bug: text-only micro-batches on Qwen2/2.5-VL crash under transformers>=5 (vision output not unpacked)",
    ),
    (
        "verl.models.transformers.monkey_patch.is_trl_available",
        "bug: every model build imports TRL's AutoModelForCausalLMWithValueHead, which TRL>=1 no longer has",
    ),
    # InternVL3/3.5 (internvl.py; applied on every device by the verl.plugins entry point)
    (
        "verl.utils.tokenizer.tokenizer.hf_processor (and every verl module that bound it by name)",
        "InternVL: returns None for InternVLProcessor (class-name match), so every image would be dropped",
    ),
    (
        "verl.experimental.agent_loop.agent_loop.AgentLoopWorker._compute_multi_modal_inputs (+ .tokenizer/.processor)",
        "InternVL: its decode(skip_special_tokens=True) drops <IMG_CONTEXT>; run with a decode that keeps it",
    ),
    (
        "transformers InternVLModel.forward (not verl's, patched in verl processes)",
        "InternVL: text-only micro-batches skip the tower's FSDP collectives; a blank tile through tower + projector",
    ),
    (
        "verl.utils.tensordict_utils.maybe_fix_3d_position_ids (+ its copies in verl.workers.engine_workers, "
        "engine.base, engine_workers_tinker; nested_tensor_from_tensor_list)",
        "bug: equal-length batches of 3-D mrope position ids get a row-ragged layout that verl then misreads",
    ),
)
