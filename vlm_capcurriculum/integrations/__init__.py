"""Thin glue into each RL framework. Every subpackage uses only the core's public API."""
