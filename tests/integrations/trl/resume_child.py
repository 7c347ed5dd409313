"""Child process of test_trl_resume: trains the 3 x 2-step curriculum with a checkpoint after every step, resuming from
the newest complete checkpoint in the output directory; with ``--kill-after N`` it SIGKILLs itself as soon as
checkpoint-N is on disk (the Trainer's ``on_save``), like a preempted job.

python resume_child.py FAMILY BASE_MODEL_DIR OUTPUT_DIR [--kill-after N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ["HF_HUB_OFFLINE"] = "1"

from transformers import TrainerCallback
from trl_helpers import make_trainer, small_plan

from vlm_capcurriculum.integrations.trl.trainer import last_complete_checkpoint


class KillAfterSave(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("family")
    parser.add_argument("base", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--kill-after", type=int, default=0)
    args = parser.parse_args()
    data, plan = small_plan(steps=(2, 2, 2))
    trainer = make_trainer(args.family, args.base, args.output, data, plan, save_steps=1, save_total_limit=None)
    if args.kill_after:
        trainer.add_callback(KillAfterSave(args.kill_after))
    checkpoint = last_complete_checkpoint(args.output)
    print(f"resume_from={checkpoint.name if checkpoint else None}", flush=True)
    trainer.train(resume_from_checkpoint=True if checkpoint else None)


if __name__ == "__main__":
    main()
