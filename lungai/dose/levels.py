"""The dose levels ``lungai dose-features`` is given with its arguments: ``--v-levels`` (:func:`parse_v_levels`) and
``--max-dose-gy`` (:func:`max_dose_limit`), with the column name of a V level (:func:`v_column`).  Numbers only (no
numpy, SimpleITK or pandas; :mod:`lungai.dose` imports its modules on first use), so that the command refuses a bad
level with its arguments, before it loads pandas and SimpleITK and reads the CT (QA radiomics71: ``--v-levels x`` was
refused 3.0-3.8 s after the command against 0.8-1.3 s for another argument error; ``--max-dose-gy 0`` 5-8 s after it,
once the CT and the masks of LUNG1-002 were read)."""

from __future__ import annotations

import math

from lungai.errors import InputError

V_LEVELS = (5, 13, 20, 30)

# a NIfTI / NRRD / MHA dose is in Gy unless told (--dose-unit cGy); no physical external-beam lung dose reaches
# MAX_PLAUSIBLE_GY (an EQD2 / BED map or a sum of courses may: --max-dose-gy raises it)
MAX_PLAUSIBLE_GY = 150.0


def max_dose_limit(max_gy: float | None = None) -> float:
    """The largest plausible dose in Gy: ``max_gy`` (``--max-dose-gy``) or :data:`MAX_PLAUSIBLE_GY`."""
    limit = MAX_PLAUSIBLE_GY if max_gy is None else float(max_gy)
    if not (math.isfinite(limit) and limit > 0):
        raise InputError(f"--max-dose-gy {max_gy!r} is not a positive dose in Gy",
                         f"give the largest dose the map may hold, in Gy (default {MAX_PLAUSIBLE_GY:g})")
    return limit


def v_column(level: float) -> str:
    """``dose_v20_pct`` for 20 Gy; ``dose_v2p5_pct`` for 2.5 Gy."""
    return f"dose_v{float(level):g}_pct".replace(".", "p")


def parse_v_levels(text: str, max_gy: float | None = None) -> tuple[float, ...]:
    """``"5,10,13,20"`` -> (5.0, 10.0, 13.0, 20.0): V levels in Gy, positive, each once, in increasing order.
    A level above the largest plausible dose (``max_gy``, ``--max-dose-gy``: :func:`max_dose_limit`, 150 Gy by
    default) is refused: levels written in cGy (``500,1300,2000``, as V2000cGy) gave V 0 % at every level, exit 0
    (QA radiomics64), as a dose above it is refused."""
    try:
        levels = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        levels = []
    if not levels or any(not math.isfinite(v) or v <= 0 for v in levels) or len(set(levels)) != len(levels):
        raise InputError(f"--v-levels {text!r} is not a list of different positive doses in Gy",
                         "give them comma-separated, e.g. --v-levels 5,10,13,20,30,40")
    limit = max_dose_limit(max_gy)
    high = [v for v in levels if v > limit]
    if high:
        gy = ",".join(f"{v / 100:g}" if v > limit else f"{v:g}" for v in levels)
        raise InputError(f"--v-levels {text!r}: {', '.join(f'{v:g}' for v in high)} Gy "
                         f"{'is' if len(high) == 1 else 'are'} above {limit:g} Gy, the largest plausible dose, so "
                         f"V would be 0 % there: the levels look like cGy ({gy} Gy?)",
                         f"give the levels in Gy, e.g. --v-levels {gy}; if a level really is that high (an EQD2 / "
                         "BED map, summed courses) pass --max-dose-gy above it")
    names: dict = {}
    for v in sorted(levels):
        names.setdefault(v_column(v), []).append(v)
    same = {name: vs for name, vs in names.items() if len(vs) > 1}
    if same:   # 20 and 20.0000001 would both be dose_v20_pct: two columns of one name
        raise InputError(f"--v-levels {text!r}: " + "; ".join(f"{', '.join(repr(v) for v in vs)} all give the column "
                                                             f"{name}" for name, vs in same.items()),
                         "give levels that differ in their first 6 significant digits, each once")
    return tuple(sorted(levels))
