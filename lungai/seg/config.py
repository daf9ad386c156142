"""The one configuration of a segmentation model: architecture and preprocessing.

Axes: every size and spacing here is given as (x, y, z) like ITK / SimpleITK; arrays are
(z, y, x) and :meth:`SegConfig.patch_zyx` gives the patch in array order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lungai.errors import InputError

ARCHS = ("unet", "attention_unet", "unetr", "dynunet")
# Adam learning rate when --lr is not given: MONAI's AttentionUnet (batch norm, attention gates)
# collapsed to "no tumour anywhere" at 2e-3 on the LIDC crops in 2 of 3 members; 5e-4 trains.
DEFAULT_LR = {"unet": 2e-3, "attention_unet": 5e-4, "unetr": 2e-3, "dynunet": 2e-3}


# MC-dropout passes: `lungai train-seg` calibrates with them (its --mc-passes default).  `lungai segment`, `eval-seg`,
# segment_tumour, the console API (lungai.scene.segment) and the Segmentation panel take None (not given: the panel's 0,
# "model's calibration") and run the passes the model's own MC-dropout calibration was fitted with
# (lungai.seg.confidence.model_mc_passes), these for a model without one: a confidence from other passes is not the one
# the review threshold was chosen on (lungai segment notes it, with the model's calibration_mc_passes in result.json;
# QA: the default was 10 against the shipped calibration's 8).  Every shipped calibration used 8.
MC_PASSES = 8
MC_PASSES_MIN = 1           # the fewest check_mc_passes accepts (the panels' lower bound too)


# result.json spells "tumour", as lungai's other names do (seed_to_tumour_mm, tumour_ml, rad_tumour_* ...); "Tumor"
# stays where a standard or an existing file name fixes it (the segment "Tumor" of Slicer's / DICOM's terminology,
# tumor.nii.gz, tumor.seg.dcm).  These keys were spelled "tumor" before: written under both names for one release
# (the old one a deprecated alias with the same value, docs/segmentation.md "result.json"); read them with
# result_value, which also reads a result.json of an earlier lungai.
RESULT_KEY_ALIASES = {"tumour_volume_ml": "tumor_volume_ml", "in_tumour_mask": "in_tumor_mask"}


def with_result_aliases(record: dict) -> dict:
    """``record`` with the deprecated alias of each renamed key it holds, placed right after it (same value)."""
    out = {}
    for key, value in record.items():
        out[key] = value
        if key in RESULT_KEY_ALIASES:
            out[RESULT_KEY_ALIASES[key]] = value
    return out


def result_value(info: dict, key: str, default=None):
    """``info[key]``, or the value under the key's other spelling (``tumour_volume_ml`` / ``tumor_volume_ml``,
    :data:`RESULT_KEY_ALIASES`): a result.json of an earlier lungai (old keys only), of this one (both) or of the
    next (new keys only) reads the same, asked under either name; ``default`` when neither."""
    for name in (key, RESULT_KEY_ALIASES.get(key), _NEW_KEY.get(key)):
        if name is not None and name in info:
            return info[name]
    return default


_NEW_KEY = {old: new for new, old in RESULT_KEY_ALIASES.items()}


def check_mc_passes(n, method: str | None = None) -> int | None:
    """``--mc-passes``: the MC-dropout passes, 1 or more (0 averaged no map at all: "Mean of empty slice", no tumour
    and a made-up confidence), or None (not given: the model's calibration passes).  The one check of train-seg,
    segment, eval-seg and :func:`lungai.seg.infer.segment_tumour`.  ``method``: the ``--method`` given - passes given
    with ``--method ensemble`` are refused (the ensemble runs no MC-dropout pass: QA, they were ignored without a word,
    result.json saying mc_passes 0 and eval-seg's report recording the passes given; without ``--method`` the model
    decides, and :func:`lungai.seg.infer.segment_tumour` notes passes its ensemble did not use)."""
    if n is None:
        return None
    if int(n) != n or n < MC_PASSES_MIN:
        raise InputError(f"--mc-passes must be {MC_PASSES_MIN} or more (got {n})",
                         "e.g. leave --mc-passes out (the passes the model's calibration was fitted with, "
                         f"{MC_PASSES} for every shipped model)")
    if method == "ensemble":
        raise InputError(f"--mc-passes {n} with --method ensemble: the ensemble runs no MC-dropout passes (the "
                         "agreement of its members is the uncertainty), so they would not be used",
                         f"leave --mc-passes out for the ensemble, or give --method mc-dropout --mc-passes {n}")
    return int(n)


SEED_UNUSED_NOTE = ("--seed {n} not used: this model's ensemble ran, which is deterministic (the seed sets MC dropout's "
                    "passes only) - give --method mc-dropout to run MC dropout with it")
MC_PASSES_UNUSED_NOTE = ("--mc-passes {n} not used: this model's ensemble ran (its members' agreement is the "
                         "uncertainty; no MC-dropout passes) - give --method mc-dropout to run MC dropout with them")


@dataclass
class SegConfig:
    arch: str = "attention_unet"
    spacing: tuple = (1.0, 1.0, 2.0)          # model grid, mm (x, y, z)
    hu_window: tuple = (-1000.0, 400.0)       # clipped and scaled to [0, 1]
    patch_size: tuple = (48, 48, 16)          # training patch / UNETR image size, voxels (x, y, z)
    infer_patch: tuple = (96, 96, 32)         # sliding-window size at inference (UNETR uses patch_size)
    channels: tuple = (8, 16, 32, 64)
    dropout: float = 0.1
    members: int = 3
    roi_margin_mm: float = 10.0               # added around the lungs / user ROI
    seed_box_mm: float = 60.0                 # cube around a seed point
    deep_supervision: bool = False            # dynunet only: loss also on the lower decoder levels
    tta: bool = False                         # mirrored test-time augmentation (8 flips) by default
    extra: dict = field(default_factory=dict)  # UNETR sizes etc.

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise InputError(f"unknown architecture {self.arch!r}", f"use one of {', '.join(ARCHS)}")
        for name in ("spacing", "hu_window", "patch_size", "infer_patch", "channels"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.members < 1:
            raise InputError(f"members must be >= 1 (got {self.members})", "give --members 1 or more")
        if self.deep_supervision and self.arch != "dynunet":
            raise InputError(f"deep supervision needs --arch dynunet (got {self.arch})",
                             "add --arch dynunet, or leave out --deep-supervision")
        down = 2 ** (len(self.channels) - 1)
        if self.arch == "unetr":
            down = 16
        for p in (self.patch_size, self.infer_patch):
            if any(int(v) % down for v in p):
                raise InputError(f"patch {p} is not divisible by {down} for {self.arch} with "
                                 f"{len(self.channels)} levels", f"use multiples of {down}")

    @property
    def patch_zyx(self) -> tuple:
        return tuple(int(v) for v in self.patch_size[::-1])

    @property
    def infer_zyx(self) -> tuple:
        size = self.patch_size if self.arch == "unetr" else self.infer_patch
        return tuple(int(v) for v in size[::-1])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SegConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)
