"""Shared pytest fixtures: real MRML scenes (slicer-core), the shared-data marker, phantoms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from patient_scratch import patient_scratch  # noqa: F401 (the fixture, for every test)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LUNGAI_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    """Python's own Ctrl-C handling for the tests, as a user's terminal gives it: a test run started in the background
    by a non-interactive shell (``pytest ... &``, ``nohup``) inherits SIGINT ignored, and then neither
    ``_thread.interrupt_main`` nor a SIGINT raises KeyboardInterrupt here or in the children the tests start (an
    ignored signal stays ignored across exec) - the Ctrl-C tests failed in such a run only ("DID NOT RAISE", a child's
    exit status 0 for 130) and passed alone in a terminal."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    if SHARED.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs ../shared/data (not found at {SHARED})")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests using it must also be marked ``shared_data``."""
    return SHARED


@pytest.fixture
def mrml_scene():
    """A real MRML scene with what the Slicer application normally sets up (Colors,
    Segmentations and Volumes logics, ``slicer.mrmlScene``, ``slicer.modules``)."""
    pytest.importorskip("slicer")
    from slicer_module_helpers import headless_scene, restore_headless_scene

    scene, token = headless_scene()
    yield scene
    restore_headless_scene(scene, token)


@pytest.fixture(scope="session")
def small_phantom():
    """A small, fast phantom (96 x 96 x 40 at 3.5 x 3.5 x 5 mm) with a 30 mm tumour."""
    from lungai.synthetic import PhantomSpec, TumourSpec, make_phantom

    spec = PhantomSpec(shape=(96, 96, 40), spacing=(3.5, 3.5, 5.0), noise_hu=15.0,
                       tumour=TumourSpec(diameter_mm=30.0, location="free", shape="lobulated", side="right"))
    return make_phantom(spec, seed=7)


@pytest.fixture(scope="session")
def phantom_segments(small_phantom):
    """The five standard radiomics segments of ``small_phantom`` (tumour, right/left lung, lungs, lungs minus tumour)."""
    from lungai.radiomics import segments_from_phantom_labels

    errors = {}
    segs = segments_from_phantom_labels(small_phantom.labels, small_phantom.ct, errors=errors)
    assert errors == {}
    return segs


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """The built-in sample written once per session (ct.nii.gz, labels.nii.gz, meta.json)."""
    from lungai.synthetic import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(out)
    return out
