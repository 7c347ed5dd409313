"""Files EasyR1 loads by path, found from any working directory: the reward function here (the format prompt
through :func:`vlm_capcurriculum.prompts.resolve_prompt`).

EasyR1 resolves ``worker.reward.reward_function`` against the current directory. Ours lives in the repository next
to the package (``reward_fns/capcurriculum.py``), which is where an editable install (``pip install -e .``, the
documented install) keeps it. :func:`resolve_repo_file` tries the path as given (absolute, or relative to the
current directory), then relative to the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

import vlm_capcurriculum

#: The reward EasyR1 runs by default: our batch reward (``REWARD_TYPE = "batch"``), the paper's 0.9/0.1 score.
DEFAULT_REWARD_FILE = "reward_fns/capcurriculum.py"
DEFAULT_REWARD_FUNCTION = "compute_score"


def repo_root() -> Path:
    """The directory holding the ``vlm_capcurriculum`` package (the repository root for a clone)."""
    return Path(vlm_capcurriculum.__file__).resolve().parent.parent


def resolve_repo_file(path: str, *, what: str) -> str:
    """``path`` as an absolute path: as given if it exists, else under the repository root; an error if neither."""
    given = Path(os.path.expanduser(path))
    if given.is_file():
        return str(given.absolute())
    in_repo = repo_root() / given
    if not given.is_absolute() and in_repo.is_file():
        return str(in_repo)
    raise FileNotFoundError(
        f"{what}: {path} is neither a file here ({Path.cwd()}) nor in the repository ({repo_root()}); "
        "install vlm-capcurriculum from a clone (pip install -e .) or give an absolute path"
    )


def resolve_function_path(spec: str, *, what: str) -> str:
    """``file.py:function`` with the file resolved by :func:`resolve_repo_file` (split as EasyR1's
    ``RewardConfig.post_init`` does: at the last colon)."""
    if ":" not in spec:
        return resolve_repo_file(spec, what=what)
    path, function = spec.rsplit(":", 1)
    return f"{resolve_repo_file(path, what=what)}:{function}"


def default_reward_function() -> str:
    """``<abs>/reward_fns/capcurriculum.py:compute_score``."""
    return resolve_function_path(
        f"{DEFAULT_REWARD_FILE}:{DEFAULT_REWARD_FUNCTION}", what="worker.reward.reward_function"
    )
