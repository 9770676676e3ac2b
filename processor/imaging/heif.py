"""HEIC/HEIF sources (what phones upload by default), decoded by libheif through pillow-heif.

Recognised by the brands of the file's ``ftyp`` box, never by the key's extension. pillow-heif (a
C extension and the libheif/libde265 libraries bundled in its wheel) is imported on the first HEIF
source only, so that a container that never meets one neither pays for the import nor loads the
libraries. Nothing is registered with Pillow (no ``register_heif_opener``): Pillow's plugin list
and every other format's path stay exactly as they were.

The same guarantees as the formats Pillow decodes itself:

- *Header first*: opening parses the boxes only (``ispe`` gives the size, after the ``irot``
  rotation); the caller checks ``MAX_PIXELS`` before :meth:`load` decodes any pixel.
- *Orientation once*: HEIF's own transforms (``irot``, ``imir``, ``clap``) are applied by libheif
  while decoding, and they are authoritative; an EXIF ``Orientation`` tag (phones write both) only
  repeats them. So a HEIF source counts as orientation 1 (:func:`identify.read_orientation`),
  whatever its EXIF says.
- *Primary image*: a file with several images (bursts, collections) renders its primary item, the
  one viewers show.
- *ICC*: a ``colr`` box of type ``prof``/``rICC`` becomes ``info["icc_profile"]`` and goes through
  the same conversion to sRGB as every other source. (An ``nclx`` colour description is not a
  profile and is taken as sRGB.)
- *Truncation is an error*: pillow-heif's plugin returns a blank image for cut data when Pillow's
  ``LOAD_TRUNCATED_IMAGES`` is set; :meth:`load` here always raises.

AVIF (also an ISO-BMFF ``ftyp`` file) stays with Pillow's own AVIF plugin: pillow-heif 1.x dropped it.
"""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import ImageFile

FORMAT = "HEIF"  # the source's format name (Pillow style), as identify and the catalog report it
# ftyp brands that mean HEVC-coded HEIF images or sequences (ISO/IEC 23008-12), and the structural
# brands of any HEIF file ('mif1' images, 'msf1' sequences), which AVIF files carry too.
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_STRUCTURAL_BRANDS = frozenset({b"mif1", b"msf1", b"miaf"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MAX_FTYP = 4096  # an ftyp box is a few dozen bytes; a larger size field is not a brand list


def ftyp_brands(data: bytes) -> frozenset[bytes]:
    """The major and compatible brands of the ``ftyp`` box ``data`` starts with (empty if none)."""
    if data[4:8] != b"ftyp" or len(data) < 12:
        return frozenset()
    size = int.from_bytes(data[0:4], "big")
    end = min(size if 16 <= size <= _MAX_FTYP else 16, len(data))
    compatible = (data[i : i + 4] for i in range(16, end - 3, 4))
    return frozenset({data[8:12], *compatible})


def is_heif(data: bytes) -> bool:
    """Whether ``data`` is a HEIF file for libheif: an HEVC brand, or only the structural brands;
    never one that names AVIF (Pillow decodes those)."""
    brands = ftyp_brands(data)
    if not brands or brands & _AVIF_BRANDS:
        return False
    return bool(brands & _HEVC_BRANDS) or data[8:12] in _STRUCTURAL_BRANDS


def open_header(data: bytes) -> ImageFile.ImageFile:
    """The primary image, boxes parsed and no pixel decoded: ``size`` (displayed, after ``irot``),
    ``mode``, ``info`` (``icc_profile``, ``exif``). Raises what libheif raises, as ``SyntaxError``
    (the caller turns it into our errors)."""
    return _strict_image_file()(io.BytesIO(data))


@cache
def _strict_image_file() -> type[ImageFile.ImageFile]:
    """pillow-heif's Pillow image class (imported here, on the first HEIF source), with a
    :meth:`load` that never hides a decoding error."""
    from pillow_heif.as_plugin import HeifImageFile  # noqa: PLC0415 - on the first HEIF source only

    class StrictHeifImageFile(HeifImageFile):
        def load(self):  # type: ignore[no-untyped-def]  # Pillow's own signature
            heif_file = self._heif_file
            if heif_file is not None:
                heif_file[self.tell()].load()  # decode now: a truncated or broken stream raises here
            return super().load()

    return StrictHeifImageFile
