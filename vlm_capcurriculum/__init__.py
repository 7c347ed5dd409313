"""Capability-curriculum RL post-training for vision-language models.

The core (schema, rewards, curriculum, transitions, data) imports neither torch nor any RL framework;
framework glue lives in :mod:`vlm_capcurriculum.integrations`.
"""

__version__ = "0.1.0"
