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
  Read as zlib's gzread (ITK) reads it: member after member while the next bytes are a gzip header; other bytes
  after a complete member (zero padding, trailing garbage: then the ISIZE check misses and the full pass decides)
  are ignored, as ITK ignores them; a stream cut inside a member is cut off.
"""

from __future__ import annotations

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


GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(path: Path):
    """The decompressed bytes of the gzip file ``path``, in blocks of at most CHUNK, member after member as zlib's
    gzread (ITK) reads them: a following member only where the next bytes are a gzip header (1f 8b); anything else
    after a complete member (zero padding, trailing bytes) is ignored.  Raises EOFError for a stream cut inside a
    member, zlib.error for a damaged one."""
    with open(path, "rb") as f:
        d, data = zlib.decompressobj(31), b""       # wbits 31: a gzip header and trailer
        while True:
            data = data or f.read(CHUNK)
            if not data:
                raise EOFError("the gzip stream ends inside a member")
            while True:
                block = d.decompress(data, CHUNK)
                if block:
                    yield block
                data = d.unconsumed_tail
                if d.eof or (not data and len(block) < CHUNK):   # a full block: more may wait inside zlib
                    break
            if d.eof:
                data = d.unused_data
                while len(data) < 2:
                    more = f.read(CHUNK)
                    if not more:
                        break
                    data += more
                if data[:2] != GZIP_MAGIC:
                    return
                d = zlib.decompressobj(31)


def _stream_size(path: Path) -> int:
    """The decompressed size of the gzip file ``path``, read to its end (:func:`_gunzip`; raises EOFError /
    zlib.error for a cut-off or damaged stream)."""
    return sum(len(block) for block in _gunzip(path))


def _stream_head(path: Path, size: int = 540) -> bytes:
    """The first ``size`` decompressed bytes of the gzip file ``path`` (fewer if it holds fewer)."""
    head, blocks = b"", _gunzip(path)
    try:
        for block in blocks:
            head += block
            if len(head) >= size:
                break
    finally:
        blocks.close()
    return head[:size]


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
        expected = _expected_size(_stream_head(p))
        if not full and expected is not None:
            with open(p, "rb") as f:
                f.seek(-4, 2)
                if struct.unpack("<I", f.read(4))[0] == expected % 2 ** 32:
                    return None
        size = _stream_size(p)
    except EOFError:
        return "cut off: its gzip stream ends too early"
    except zlib.error as exc:
        return f"its gzip stream is damaged: {exc}"
    except OSError:
        return None                     # unreadable: the reader's own error says so
    if expected is not None and size < expected:
        return f"cut off: it holds {size} of its {expected} bytes"
    return None
