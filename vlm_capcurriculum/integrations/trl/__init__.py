"""TRL's GRPOTrainer as the embedded backend: CPU quick start and single-GPU runs."""
