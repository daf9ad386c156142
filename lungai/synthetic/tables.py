"""Which tables lungai wrote as synthetic: one place for ``lungai stage train`` and ``lungai rp train`` to record a
model trained on a synthetic cohort as such (model card ``training_data.synthetic``, read by
:func:`lungai.rp.predict.synthetic_model`)."""

from __future__ import annotations

from pathlib import Path

# commands whose output tables are synthetic cohorts (their marker .lungai-<command> stamps each file they wrote)
SYNTHETIC_COMMANDS = ("stage-synth", "rp-synth")
# the synthetic cohort files `lungai demo` writes into its folder (listed, stamped, in its marker .lungai-demo)
DEMO_SYNTHETIC_TABLES = ("rp_training_cohort.csv", "stage_cohort/ehr.csv", "stage_cohort/rna.csv",
                         "stage_cohort/manifest.csv")


def synthetic_patient_ids(n: int, seed: int) -> list[str]:
    """The patient IDs of a synthetic cohort (``lungai stage synth``, ``lungai rp synth``): ``SYN<seed>-<number>``,
    the seed in every ID, so that cohorts of two seeds share no patient (a locked model validated on another seed's
    cohort is validated on patients it never saw), zero-padded so that their text order is their number order."""
    return [f"SYN{seed:03d}-{i:05d}" for i in range(n)]


def written_as_synthetic(path) -> bool:
    """Whether the file ``path`` is a synthetic cohort table lungai wrote, unchanged since: an output of
    ``lungai stage synth`` or ``lungai rp synth``, or one of the demo's synthetic cohort files
    (:data:`DEMO_SYNTHETIC_TABLES`, recorded in the marker of the demo's folder).  A copy, an edited file or a file
    of the user's is not."""
    from lungai.io.outputs import written_by

    p = Path(path).absolute()   # 'ehr.csv' given inside stage_cohort/ too (absolute, not resolved: a link stays one)
    if p.is_symlink() or not p.is_file():
        return False
    if any(written_by(p, command) for command in SYNTHETIC_COMMANDS):
        return True
    for rel in DEMO_SYNTHETIC_TABLES:
        parts = Path(rel).parts
        if p.parts[-len(parts):] == parts:
            return written_by(p, "demo", folder=p.parents[len(parts) - 1])   # the demo's marker lists it as rel
    return False


def all_synthetic(paths) -> bool:
    """Whether ``paths`` (None entries left out) are given and every one is :func:`written_as_synthetic`: a mix with
    the user's tables is not a synthetic cohort."""
    given = [p for p in paths if p is not None]
    return bool(given) and all(written_as_synthetic(p) for p in given)
