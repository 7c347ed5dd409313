"""The verl entry point, driven through verl 0.9.1's own reward loop on CPU.

The path is the one ``main_ppo`` takes: ``RewardLoopWorker`` loads the custom function from
``pkg://vlm_capcurriculum.integrations.verl.reward`` (``verl.trainer.ppo.reward.get_custom_reward_fn``), builds the
registered ``naive`` reward manager, decodes each response with the tokenizer and calls ``compute_score`` from an
executor thread; the outputs are then stacked per key as ``RewardLoopManager.compute_rm_score`` does (which is
why every sample must return the same keys) and reduced by ``process_validation_metrics``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker  # noqa: E402
from verl.trainer.ppo.metric_utils import process_validation_metrics  # noqa: E402

from vlm_capcurriculum.integrations.verl.reward import RESULT_KEYS, compute_score  # noqa: E402
from vlm_capcurriculum.integrations.verl.trainer import reward_extra_metrics  # noqa: E402

BREAKDOWN_KEYS = (
    "accuracy_choice",
    "accuracy_math",
    "accuracy_number",
    "accuracy_yesno",
    "accuracy_text",
    "accuracy_perception",
    "accuracy_text_reasoning",
    "accuracy_visual_reasoning",
)

PROMPT = "<|im_start|>user\nHow many apples?<|im_end|>\n<|im_start|>assistant\n"
OPTIONS = {
    "A": "a red umbrella",
    "B": "a blue umbrella",
    "C": None,
    "D": None,
}  # parquet fills absent options with None

SAMPLES = [
    # (data_source, response, ground_truth, extra_info, accuracy)
    ("perception", "<think>two red, one green</think> \\boxed{three}", "3", {"answer_type": "number"}, 1.0),
    ("perception", "<think>the umbrella is blue</think> \\boxed{a blue umbrella}", "B",
     {"answer_type": "choice", "choices": OPTIONS, "capability": "perception"}, 1.0),
    ("perception", "<think>hmm</think> \\boxed{A}", "B", {"answer_type": "choice", "choices": OPTIONS}, 0.0),
    ("text_reasoning", "<think>simplify</think> \\boxed{2\\sqrt{3}}", "\\sqrt{12}", {}, 1.0),
    ("text_reasoning", "<think>chain</think> \\boxed{-2 \\le x \\le 7}", "x \\in [-2, 7]", {"capability": "text_reasoning"}, 1.0),
    ("visual_reasoning", "The answer is 4 weeks.", json.dumps({"answer": "4 days", "type": "number"}), {}, 0.0),
    ("visual_reasoning", "<think>" + "x" * 50, "1", {}, 0.0),  # truncated reasoning: no answer
]  # fmt: skip


def make_config(tokenizer_dir: str):
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": tokenizer_dir, "tokenizer_path": None}},
            "reward": {
                "num_workers": 1,
                "reward_model": {"enable": False},
                "custom_reward_function": {
                    "path": "pkg://vlm_capcurriculum.integrations.verl.reward",
                    "name": "compute_score",
                    "reward_kwargs": {"format_weight": 0.1, "timeout_s": 2.0},
                },
                "reward_manager": {
                    "source": "register",
                    "name": "naive",
                    "module": {"path": None, "name": "custom_reward_manager"},
                },
            },
        }
    )


def make_batch(tokenizer) -> DataProto:
    prompt_ids = tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    responses = [
        tokenizer(sample[1], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for sample in SAMPLES
    ]
    width = max(len(ids) for ids in responses)
    batch = len(SAMPLES)
    prompts = torch.tensor([prompt_ids] * batch)
    response_ids = torch.full((batch, width), tokenizer.pad_token_id)
    attention = torch.zeros((batch, len(prompt_ids) + width), dtype=torch.long)
    attention[:, : len(prompt_ids)] = 1
    for row, ids in enumerate(responses):
        response_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, len(prompt_ids) : len(prompt_ids) + len(ids)] = 1
    return DataProto.from_single_dict(
        {
            "prompts": prompts,
            "responses": response_ids,
            "attention_mask": attention,
            "data_source": np.array([sample[0] for sample in SAMPLES], dtype=object),
            "reward_model": np.array([{"ground_truth": sample[2]} for sample in SAMPLES], dtype=object),
            "extra_info": np.array([sample[3] for sample in SAMPLES], dtype=object),
            "uid": np.array([f"prompt-{i}" for i in range(batch)], dtype=object),
        }
    )


@pytest.mark.timeout(300)
def test_through_verl_reward_loop(byte_bpe_tokenizer_dir, byte_bpe_tokenizer) -> None:
    config = make_config(byte_bpe_tokenizer_dir)
    worker = RewardLoopWorker(config)
    data = make_batch(byte_bpe_tokenizer)
    outputs = worker.loop.run_until_complete(worker.compute_score_batch(data))

    # RewardLoopManager.compute_rm_score: scores into rm_scores, extra info stacked per key of the first sample.
    scores = [output["reward_score"] for output in outputs]
    rm_scores = worker.reward_manager.assemble_rm_scores(data, scores)
    infos = [output["reward_extra_info"] for output in outputs]
    keys = list(infos[0])
    stacked = {key: np.array([info[key] for info in infos]) for key in keys}

    assert tuple(keys) == RESULT_KEYS + BREAKDOWN_KEYS
    assert all(tuple(info) == tuple(keys) for info in infos)  # the same keys on every sample
    expected = [sample[4] for sample in SAMPLES]
    assert stacked["acc"].tolist() == expected
    formats = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert stacked["format"].tolist() == formats
    assert stacked["score"].tolist() == pytest.approx(
        [0.9 * a + 0.1 * f for a, f in zip(expected, formats, strict=True)]
    )
    assert stacked["pred"].tolist()[:3] == ["three", "a blue umbrella", "A"]
    assert rm_scores.sum(dim=1).tolist() == pytest.approx(stacked["score"].tolist())
    last = data.batch["attention_mask"][:, data.batch["prompts"].size(1) :].sum(dim=1) - 1
    assert rm_scores[torch.arange(len(SAMPLES)), last].tolist() == pytest.approx(stacked["score"].tolist())

    metrics = process_validation_metrics(
        list(data.non_tensor_batch["data_source"]), list(data.non_tensor_batch["uid"]), stacked
    )
    assert metrics["perception"]["acc"]["mean@1"] == pytest.approx(2 / 3)
    assert metrics["text_reasoning"]["acc"]["mean@1"] == 1.0
    assert "pred" not in metrics["perception"]  # strings are skipped by verl's reduction
    # Breakdown keys: None where they do not apply, dropped by verl's reduction and by our trainer's metrics.
    assert stacked["accuracy_choice"].tolist() == [None, 1.0, 0.0, None, None, None, None]
    assert stacked["accuracy_perception"].tolist() == [None, 1.0, None, None, None, None, None]
    assert metrics["perception"]["accuracy_choice"]["mean@1"] == 0.5
    assert "accuracy_choice" not in metrics["text_reasoning"]
    logged = reward_extra_metrics([{"reward_extra_info": info} for info in infos])
    assert logged["reward/accuracy_choice"] == 0.5
    assert logged["reward/accuracy_number"] == 0.5  # "three" right, "4 weeks" against "4 days" wrong
    assert logged["reward/accuracy_text_reasoning"] == 1.0
    assert "reward/accuracy_visual_reasoning" not in logged


def test_extra_info_overrides_and_bad_specs() -> None:
    response = "<think>r</think> \\boxed{blue}"
    assert (
        compute_score("x", response, "B", {"answer_type": "choice", "choices": {"A": "red", "B": "blue"}})["acc"] == 1.0
    )
    assert compute_score("x", response, "B", {})["acc"] == 0.0  # a bare letter without options: letters only
    writer_style = {
        "answer_type": "choice",
        "choices": [{"letter": "A", "text": "red"}, {"letter": "B", "text": "blue"}],
    }
    assert compute_score("x", response, "B", writer_style)["acc"] == 1.0
    bad = compute_score(
        "x", response, "E", {"answer_type": "choice", "choices": {"A": "red", "B": "blue"}}, breakdown=False
    )
    assert bad == {"score": 0.0, "acc": 0.0, "overall": 0.0, "accuracy": 0.0, "format": 0.0, "pred": ""}
    custom = compute_score("x", response, "B", {**writer_style, "capability": "charts"}, capabilities=["charts"])
    assert custom["accuracy_charts"] == 1.0 and "accuracy_perception" not in custom
    assert compute_score("x", "<think>r</think> \\boxed{7}", 7)["acc"] == 1.0  # a numeric ground truth column
    assert compute_score("x", "\\boxed{7}", "7", None, reward_router_address=None)["acc"] == 1.0


def test_scores_rows_written_by_our_verl_writer(stage_files) -> None:
    """The handshake with ``integrations/verl/writer.py``: its ``reward_model.ground_truth`` and ``extra_info`` (read
    back from parquet, options as a list of ``{"letter", "text"}``) grade the right answer 1 and a wrong one 0."""
    import pyarrow.parquet as pq

    from vlm_capcurriculum.rewards import AnswerSpec

    rows = []
    for stage in ("perception", "text_reasoning"):
        rows += pq.read_table(stage_files[stage]).to_pylist()
    for row in rows:
        ground_truth = row["reward_model"]["ground_truth"]
        spec = AnswerSpec.parse(ground_truth)
        right = compute_score(
            row["data_source"], f"<think>r</think> \\boxed{{{spec.answer}}}", ground_truth, row["extra_info"]
        )
        wrong = compute_score(row["data_source"], "<think>r</think> \\boxed{Z}", ground_truth, row["extra_info"])
        assert (right["acc"], wrong["acc"]) == (1.0, 0.0), row["extra_info"]
        assert right[f"accuracy_{row['data_source']}"] == 1.0
        if spec.type == "choice":
            options = {option["letter"]: option["text"] for option in row["extra_info"]["choices"]}
            by_text = compute_score(
                row["data_source"],
                f"<think>r</think> \\boxed{{{options[spec.answer]}}}",
                ground_truth,
                row["extra_info"],
            )
            assert by_text["acc"] == 1.0
