"""Verifiable rewards for the capability curriculum."""

from vlm_capcurriculum.rewards.spec import ANSWER_TYPES, AnswerSpec, AnswerSpecError, AnswerType

__all__ = ["ANSWER_TYPES", "AnswerSpec", "AnswerSpecError", "AnswerType"]
