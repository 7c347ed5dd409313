"""A saved tiny checkpoint loads with plain ``AutoProcessor`` (no ``import vlm_capcurriculum.models``) as our image
processor through ``auto_map``, or fails loudly: never a silent text-only tokenizer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from testkit import REPO

from vlm_capcurriculum.models.tiny import save_tiny

IMAGE = REPO / "data_recipes" / "samples" / "images"


def load_in_fresh_process(path: Path, trust_remote_code: bool) -> subprocess.CompletedProcess[str]:
    image = sorted(IMAGE.glob("**/*.*"))[0]
    script = textwrap.dedent(
        f"""
        import sys
        from PIL import Image
        from transformers import AutoProcessor
        processor = AutoProcessor.from_pretrained({str(path)!r}, trust_remote_code={trust_remote_code})
        assert "vlm_capcurriculum.models" not in sys.modules or {trust_remote_code}
        batch = processor(text=["<|vision_start|><|image_pad|><|vision_end|> what?"],
                          images=[Image.open({str(image)!r}).convert("RGB")], return_tensors="pt")
        print(type(processor).__name__, tuple(batch["pixel_values"].shape))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(path.parent / "modules")}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)


def test_plain_auto_processor_gets_the_image_processor_or_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tiny"
    save_tiny("qwen3_vl", path, seed=0)
    config = json.loads((path / "processor_config.json").read_text())
    assert config["auto_map"] == {"AutoProcessor": "capcurriculum_processor.Qwen3VLImageOnlyProcessor"}

    trusted = load_in_fresh_process(path, trust_remote_code=True)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert trusted.stdout.startswith("Qwen3VLImageOnlyProcessor (")

    untrusted = load_in_fresh_process(path, trust_remote_code=False)
    assert untrusted.returncode != 0 and "trust_remote_code" in untrusted.stderr  # loud, not a bare tokenizer
