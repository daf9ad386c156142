"""Is a NIfTI file complete?  ITK reads a cut-off NIfTI (an interrupted copy or download) without an error, the
missing voxels 0, and writes one on a full disk without raising (it prints "NWAD: wrote only ... bytes").

:func:`nifti_incomplete` says why a ``.nii`` / ``.nii.gz`` file is cut off (None: complete, or not a NIfTI file
it can judge - ITK then has its say):

- ``.nii``: the file must hold the header's ``vox_offset`` plus the voxel data (the voxel count of ``dim`` x
  ``bitpix`` / 8) - a file size check, no data read.
- ``.nii.gz``: the gzip stream must end properly (its end-of-stream marker, CRC and length trailer) and hold as
  many bytes.  ``full=True`` (the check of a file just written) decompresses the whole stream, in chunks.
  ``full=False`` (the check of an input) first compares the gzip trailer's ISIZE - the last 4 bytes, the
  uncompressed size mod 2**32 - with ``vox_offset`` + the data size: a cut-off file ends inside its compressed data,
  whose last 4 bytes match that by chance once in 2**32, so a match is taken as complete at no cost.  Otherwise (a
  cut-off file, or a complete one of several gzip members, e.g. ``bgzip``'s, whose last trailer counts only the
  last member) the stream is decompressed to its end to decide, so a complete file is never refused.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

CHUNK = 1 << 20


def _expected_size(header: bytes) -> int | None:
    """``vox_offset`` + the voxel data's bytes of a NIfTI-1 / NIfTI-2 header (either byte order); None: not a NIfTI
    header this can read."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348:
            dim = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            offset = max(int(struct.unpack(order + "f", header[108:112])[0]), 352)
            break
        if len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540:
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            dim = struct.unpack(order + "8q", header[16:80])
            offset = max(struct.unpack(order + "q", header[168:176])[0], 544)
            break
    else:
        return None
    n = dim[0]
    if not 1 <= n <= 7 or bitpix <= 0 or bitpix % 8 or any(d < 1 for d in dim[1:n + 1]):
        return None
    count = 1
    for d in dim[1:n + 1]:
        count *= d
    return offset + count * bitpix // 8


def _stream_size(path: Path) -> int:
    """The decompressed size of the gzip file ``path``, read to its end (raises EOFError / gzip.BadGzipFile /
    zlib.error for a cut-off or damaged stream)."""
    total = 0
    with gzip.open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return total
            total += len(block)


def nifti_incomplete(path, full: bool = True) -> str | None:
    """Why the NIfTI file ``path`` (``.nii`` / ``.nii.gz``) is cut off or damaged, or None (see the module)."""
    p = Path(path)
    name = p.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return None
    try:
        with open(p, "rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
        if name.endswith(".nii") or (name.endswith(".nii.gz") and not compressed):   # ITK reads both unpacked
            with open(p, "rb") as f:
                expected = _expected_size(f.read(540))
            size = p.stat().st_size
            if expected is not None and size < expected:
                return f"cut off: it holds {size} of its {expected} bytes"
            return None
        with gzip.open(p, "rb") as f:
            expected = _expected_size(f.read(540))
        if not full and expected is not None:
            with open(p, "rb") as f:
                f.seek(-4, 2)
                if struct.unpack("<I", f.read(4))[0] == expected % 2 ** 32:
                    return None
        size = _stream_size(p)
    except EOFError:
        return "cut off: its gzip stream ends too early"
    except (gzip.BadGzipFile, zlib.error) as exc:
        return f"its gzip stream is damaged: {exc}"
    except OSError:
        return None                     # unreadable: the reader's own error says so
    if expected is not None and size < expected:
        return f"cut off: it holds {size} of its {expected} bytes"
    return None
