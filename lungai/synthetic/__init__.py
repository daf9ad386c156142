"""Synthetic chest-CT phantoms with known ground truth (deterministic from a seed)."""

from lungai.synthetic import labels
from lungai.synthetic.phantom import Phantom, make_phantom
from lungai.synthetic.spec import PhantomSpec, TumourSpec, random_spec
from lungai.synthetic.sample import SAMPLE_SEED, sample_spec, write_phantom, write_sample

__all__ = ["labels", "Phantom", "make_phantom", "PhantomSpec", "TumourSpec", "random_spec",
           "SAMPLE_SEED", "sample_spec", "write_phantom", "write_sample"]
