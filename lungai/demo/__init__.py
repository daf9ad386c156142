"""``lungai demo``: the whole pipeline on the built-in sample (or the user's CT) -> report + scene."""

from lungai.demo.pipeline import run_demo

__all__ = ["run_demo"]
