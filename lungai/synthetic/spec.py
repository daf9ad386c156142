"""What a synthetic phantom contains: :class:`PhantomSpec` and its seeded random draw."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from lungai.errors import InputError

LOCATIONS = ("free", "juxta_pleural", "juxta_vascular", "central")
SHAPES = ("round", "lobulated", "spiculated")
SIDES = ("right", "left")


@dataclass
class TumourSpec:
    diameter_mm: float = 30.0          # 5-100 mm
    location: str = "free"             # one of LOCATIONS
    shape: str = "lobulated"           # one of SHAPES
    side: str = "right"                # one of SIDES
    ground_glass: bool = False         # ground-glass halo around the solid part
    atelectasis: bool = False          # collapsed lung distal to the tumour (hard case)

    def validate(self) -> None:
        if not 5.0 <= self.diameter_mm <= 100.0:
            raise InputError(f"tumour diameter {self.diameter_mm} mm is outside 5-100 mm",
                             "choose a diameter between 5 and 100 mm")
        for name, value, allowed in (("location", self.location, LOCATIONS),
                                     ("shape", self.shape, SHAPES), ("side", self.side, SIDES)):
            if value not in allowed:
                raise InputError(f"unknown tumour {name} {value!r}", f"use one of {', '.join(allowed)}")


@dataclass
class PhantomSpec:
    """Geometry and content of one phantom.  All lengths in mm, images in LPS."""

    shape: tuple[int, int, int] = (256, 256, 96)          # (x, y, z) voxels
    spacing: tuple[float, float, float] = (1.4, 1.4, 2.5)  # mm; z spacing = slice thickness
    noise_hu: float = 18.0                                # scanner noise (SD, HU)
    tumour: Optional[TumourSpec] = field(default_factory=TumourSpec)
    effusion: bool = False                                # pleural effusion (hard case)
    effusion_side: str = "right"

    def validate(self) -> None:
        if len(self.shape) != 3 or min(self.shape) < 16:
            raise InputError(f"phantom shape {self.shape} is too small", "use at least 16 voxels per axis")
        if not 1.0 <= self.spacing[2] <= 5.0:
            raise InputError(f"slice thickness {self.spacing[2]} mm is outside 1-5 mm",
                             "choose a z spacing between 1 and 5 mm")
        if self.tumour is not None:
            self.tumour.validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PhantomSpec":
        data = dict(data)
        tumour = data.pop("tumour", None)
        spec = cls(**{k: tuple(v) if k in ("shape", "spacing") else v for k, v in data.items()})
        spec.tumour = TumourSpec(**tumour) if tumour else None
        return spec


def random_spec(seed: int, shape=(128, 128, 64), spacing=(2.6, 2.6, 4.0),
                hard_fraction: float = 0.4, diameter_range=(8.0, 70.0)) -> PhantomSpec:
    """A varied phantom drawn from ``seed``: size, location, shape, side and hard cases.

    About ``hard_fraction`` of the draws have a hard case (small tumour, atelectasis or
    pleural effusion).  Used to build training and test cohorts.
    """
    rng = np.random.default_rng(seed)
    lo, hi = diameter_range
    diameter = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    hard = rng.random() < hard_fraction
    kind = rng.choice(["small", "atelectasis", "effusion"]) if hard else "none"
    if kind == "small":
        diameter = float(rng.uniform(5.0, 10.0))
    side = str(rng.choice(SIDES))
    tumour = TumourSpec(
        diameter_mm=round(diameter, 1),
        location=str(rng.choice(LOCATIONS)),
        shape=str(rng.choice(SHAPES)),
        side=side,
        ground_glass=bool(rng.random() < 0.2),
        atelectasis=kind == "atelectasis",
    )
    return PhantomSpec(shape=tuple(shape), spacing=tuple(spacing), noise_hu=float(rng.uniform(10, 30)),
                       tumour=tumour, effusion=kind == "effusion", effusion_side=side)
