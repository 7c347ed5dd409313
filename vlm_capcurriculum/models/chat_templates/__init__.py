"""Jinja chat templates of the model families (package data, read by ``vlm_capcurriculum.models.tiny``)."""
