"""Write a small synthetic RTDOSE DICOM (for the dose-reading tests): the project's writer, lungai.dicom.synthetic."""

from __future__ import annotations

import SimpleITK as sitk


def write_rtdose(dose: sitk.Image, path, scaling: float = 1e-3, reverse_frames: bool = False, units: str = "GY",
                 offsets: str = "relative"):
    """``dose`` (axis-aligned, Gy) as an RTDOSE file: uint32 pixels x DoseGridScaling, GridFrameOffsetVector."""
    from lungai.dicom.synthetic import write_rtdose as write

    return write(dose, path, offsets=offsets, reverse_frames=reverse_frames, units=units, scaling=scaling)
