"""Upstream verl (>= 0.9.1): reward entry point, ``verl.plugins`` plugin, trainer mode and dataset."""
