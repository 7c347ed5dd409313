"""Our reward inside verl's reward loop, and its extra info through TransferQueue into our per-step metrics, under a
local Ray. ``RewardLoopManager`` starts its ``RewardLoopWorker`` actors from the composed config
(``reward.custom_reward_function`` = ``pkg://...verl.reward``, ``compute_score``, with ``reward_kwargs``), and each
worker scores the launcher's real sample rows the two ways verl calls it:

* training (streaming): one ``compute_score.remote`` per sample, as ``AgentLoopWorker._compute_score`` does; the
  agent loop stores the result's ``reward_extra_info`` in the sample's ``extra_fields`` in TransferQueue
  (``AgentLoopWorkerTQ._agent_loop_postprocess``), where ``CapCurriculumTrainer`` reads it into ``reward/<key>``;
* ``RewardLoopManager.compute_rm_score`` (the colocated path): verl takes the extra-info keys from the first sample
  and indexes every other sample with them, so every sample must return the same keys.

The one module of the verl tests that starts Ray (slow: about a minute on two cores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("verl")

import numpy as np
import ray
import torch
from omegaconf import open_dict
from tensordict import TensorDict
from testkit import REPO
from transfer_queue import KVBatchMeta
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopManager
from verl.utils.dataset.rl_dataset import collate_fn

from vlm_capcurriculum.integrations.verl.dataset import CurriculumRLDataset
from vlm_capcurriculum.integrations.verl.reward import RESULT_KEYS
from vlm_capcurriculum.integrations.verl.trainer import CapCurriculumTrainer, reward_extra_metrics


@pytest.fixture(scope="module")
def local_ray() -> Any:
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    # Ray's workers get the repository on their path (where the project is not installed) and no GPU.
    # Logical CPUs: every Ray actor (reward workers, TransferQueue's controller and storage) reserves one to start.
    ray.init(
        num_cpus=8,
        num_gpus=0,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}},
    )
    yield
    ray.shutdown()


def _samples(run: Any, processor: Any) -> dict[str, Any]:
    """One row per capability from the launcher's training files, collated as verl's dataloader does."""
    data_config = run.config.data
    dataset = CurriculumRLDataset(data_config.train_files, processor.tokenizer, data_config, processor)
    wanted, rows = {"perception", "text_reasoning", "visual_reasoning"}, []
    for index in range(len(dataset)):
        row = dataset[index]
        if row["data_source"] in wanted:
            wanted.discard(row["data_source"])
            rows.append(row)
    return collate_fn(rows)


def _responses(batch: dict[str, Any]) -> list[str]:
    """A correct answer for the first sample, a wrong one for the second, no answer at all for the third."""
    from vlm_capcurriculum.rewards import to_spec

    answer = to_spec(batch["reward_model"][0]["ground_truth"]).answer
    return [
        f"<think>I look at the image.</think> \\boxed{{{answer}}}",
        "<think>Let me compute.</think> \\boxed{-12345}",
        "I am not sure.",
    ]


def _data_proto(batch: dict[str, Any], responses: list[str], tokenizer: Any) -> DataProto:
    """The reward inputs verl builds from rollouts: prompt and response ids, masks, and the dataset row's fields."""
    prompt_ids = [tokenizer("<|im_start|>user\nWhat?<|im_end|>\n")["input_ids"] for _ in responses]
    response_ids = [tokenizer(text)["input_ids"] for text in responses]
    width_p, width_r = max(map(len, prompt_ids)), max(map(len, response_ids))
    prompts = torch.zeros(len(responses), width_p, dtype=torch.int64)
    resp = torch.zeros(len(responses), width_r, dtype=torch.int64)
    mask = torch.zeros(len(responses), width_p + width_r, dtype=torch.int64)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        prompts[i, width_p - len(p) :] = torch.tensor(p)
        resp[i, : len(r)] = torch.tensor(r)
        mask[i, width_p - len(p) : width_p + len(r)] = 1
    tensors = TensorDict(
        {"prompts": prompts, "responses": resp, "attention_mask": mask, "input_ids": torch.cat([prompts, resp], 1)},
        batch_size=len(responses),
    )
    non_tensors = {key: np.asarray(batch[key], dtype=object) for key in ("data_source", "reward_model", "extra_info")}
    return DataProto(batch=tensors, non_tensor_batch=non_tensors)


def test_our_reward_in_verls_reward_loop(sample_run: Any, tiny_processor: Any, tmp_path: Path, local_ray: Any):
    run = sample_run()
    tokenizer_dir = tmp_path / "tokenizer"
    tiny_processor.tokenizer.save_pretrained(tokenizer_dir)
    config = run.config
    with open_dict(config):
        config.actor_rollout_ref.model.path = str(tokenizer_dir)  # the reward workers load the tokenizer from it
        config.reward.num_workers = 2
    assert config.reward.custom_reward_function.path == "pkg://vlm_capcurriculum.integrations.verl.reward"
    assert dict(config.reward.custom_reward_function.reward_kwargs) == {"format_weight": 0.1}

    batch = _samples(run, tiny_processor)
    assert sorted(batch["data_source"]) == ["perception", "text_reasoning", "visual_reasoning"]
    responses = _responses(batch)
    data = _data_proto(batch, responses, tiny_processor.tokenizer)
    manager = RewardLoopManager(config)
    assert len(manager.reward_loop_worker_handles) == 2

    # training: one sample per call, as the agent loop streams them
    results = ray.get([manager.reward_loop_workers[i % 2].compute_score.remote(data[i : i + 1]) for i in range(3)])
    infos = [result["reward_extra_info"] for result in results]
    keys = list(infos[0])
    assert keys[: len(RESULT_KEYS)] == list(RESULT_KEYS)
    assert [list(info) for info in infos] == [keys] * 3  # the same keys for every sample
    # per-capability accuracy: a value on the samples of that capability, None on the others
    assert [info["accuracy_perception"] for info in infos] == [1.0, None, None]
    assert [info["accuracy_text_reasoning"] for info in infos] == [None, 0.0, None]
    scores = [result["reward_score"] for result in results]
    assert scores[0] == pytest.approx(1.0)  # right answer, right format: 0.9 + 0.1
    assert scores[1] == pytest.approx(0.1)  # wrong answer, right format
    assert scores[2] == pytest.approx(0.0)  # no answer, no format
    assert [info["score"] for info in infos] == scores
    # what our trainer logs from TransferQueue's extra_fields (strings such as pred are left out)
    metrics = reward_extra_metrics([{"reward_extra_info": info, "num_turns": 2} for info in infos])
    assert metrics["reward/score"] == pytest.approx(sum(scores) / 3) and "reward/pred" not in metrics
    assert metrics["reward/format"] == pytest.approx(2 / 3)
    assert metrics["reward/accuracy_perception"] == 1.0 and metrics["reward/accuracy_visual_reasoning"] == 0.0

    # the colocated path stacks every key of every sample (KeyError on a key missing from any sample)
    scored = manager.compute_rm_score(data)
    assert scored.meta_info["reward_extra_keys"] == keys
    assert all(len(scored.non_tensor_batch[key]) == 3 for key in keys)
    assert scored.batch["rm_scores"].sum(dim=1).tolist() == pytest.approx(scores)

    # the streaming path's extra info, stored in TransferQueue as the agent loop stores it, read by our trainer
    _through_transfer_queue(config, infos, scores)


def _through_transfer_queue(config: Any, infos: list[dict], scores: list[float]) -> None:
    import transfer_queue as tq
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    with open_dict(config):
        config.transfer_queue.enable = True  # what TaskRunnerV1.run sets before tq.init
        config.transfer_queue.backend.SimpleStorage.num_data_storage_units = 1
    tq.init(config.transfer_queue)
    try:
        keys = [f"uid{i}_0_0" for i in range(len(infos))]  # {uid}_{session}_{index}, as the agent loop names them
        fields = [
            {"extra_fields": {"reward_extra_info": info, "num_turns": 2}, "input_ids": torch.tensor([1, 2, 3])}
            for info in infos
        ]
        tags = [{"status": "success"} for _ in keys]
        tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(fields), tags=tags)
        trainer = CapCurriculumTrainer(config)
        padded = KVBatchMeta(partition_id="train", keys=[*keys, "pad"], tags=[*tags, {"is_padding": True}])
        metrics = trainer._reward_metrics(padded)  # what step() logs for the batch (padding rows left out)
    finally:
        tq.close()
    assert metrics["reward/score"] == pytest.approx(sum(scores) / 3)
    assert metrics["reward/accuracy"] == pytest.approx(1 / 3) and "reward/pred" not in metrics
    assert metrics["reward/accuracy_perception"] == 1.0 and metrics["reward/accuracy_text_reasoning"] == 0.0
