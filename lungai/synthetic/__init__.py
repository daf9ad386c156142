"""Synthetic chest-CT phantoms with known ground truth (deterministic from a seed).

The phantom's names are imported on first use (PEP 562): :mod:`lungai.synthetic.phantom` imports scipy.ndimage,
which ``lungai radiomics --phantom-labels`` imported before its first bar for the label values of
:mod:`lungai.synthetic.labels` alone (QA startbar66)."""

from lungai.lazy import lazy_names

from lungai.synthetic import labels

# name -> the module defining it, imported on first use
_LAZY = {"Phantom": "lungai.synthetic.phantom", "make_phantom": "lungai.synthetic.phantom",
         "PhantomSpec": "lungai.synthetic.spec", "TumourSpec": "lungai.synthetic.spec",
         "random_spec": "lungai.synthetic.spec", "SAMPLE_SEED": "lungai.synthetic.sample",
         "sample_spec": "lungai.synthetic.sample", "write_phantom": "lungai.synthetic.sample",
         "write_sample": "lungai.synthetic.sample"}

__all__ = ["labels", "Phantom", "make_phantom", "PhantomSpec", "TumourSpec", "random_spec",
           "SAMPLE_SEED", "sample_spec", "write_phantom", "write_sample"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
