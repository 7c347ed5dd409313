"""Hydra configs for verl's ``main_ppo`` (``--config-path pkg://vlm_capcurriculum.integrations.verl.config``)."""
