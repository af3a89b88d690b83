"""An input image's container, read from its bytes before PIL sees them: what the file is when it is not one of
ours (named in the refusal), and what decoding it would cost beyond its pixels.

PIL's cost is not only the pixels. libjpeg decodes every scan of a JPEG over the whole image, and a progressive
JPEG may repeat its scans: 1,000 repeats of a 64-byte scan make a 5000x5000 file of 0.3 MB take 39 s of CPU.
PIL reads a JPEG's marker segments up to its first scan, and a PNG's chunks, one Python call each: 6 MiB of empty
segments or chunks take it 3 to 9 s. So the walks here count scans, segments and chunks; each stops one past its
limit, so that a hostile file costs them no more than an ordinary one. They never raise: a file they cannot
follow is PIL's to refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"
# A marker: 0xFF (after any fill 0xFFs) and a code that is not a stuffed zero or a restart (RSTn sit inside a scan's
# data and cost nothing to skip), as libjpeg's next_marker finds them; the data of a scan is skipped by the search.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")
_EOI, _SOS = 0xD9, 0xDA
_NO_LENGTH = {0x01, 0xD8}  # TEM, SOI: markers without a segment
_OTHERS = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"%PDF", "PDF"),
)
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}
_RIFF_FORMS = {b"WAVE": "WAVE audio", b"AVI ": "AVI video"}


@dataclass(frozen=True)
class Jpeg:
    """A JPEG's first picture (an MPO's others are never decoded), up to its end (EOI)."""

    segments: int  # marker segments, restarts not counted
    scans: int  # start-of-scan segments: libjpeg decodes each over the whole image
    # The walk stops once either is one past its limit.


@dataclass(frozen=True)
class Png:
    chunks: int  # one past the walk's limit at most
    exif: bytes | None  # the eXIf chunk's body, wherever it is (PIL reads one after the pixels only as it loads them)


def is_riff_webp(data: bytes) -> bool:
    return data.startswith(b"RIFF") and data[8:12] == b"WEBP"


def jpeg(data: bytes, max_segments: int, max_scans: int) -> Jpeg:
    segments = scans = 0
    position = 2  # after SOI
    while segments <= max_segments and scans <= max_scans:
        found = _JPEG_MARKER.search(data, position)
        if found is None:
            break
        code, position = found[0][1], found.end()
        if code == _EOI:
            break
        segments += 1
        if code in _NO_LENGTH:
            continue
        if code == _SOS:
            scans += 1
        position += int.from_bytes(data[position : position + 2], "big")  # the length counts its own 2 bytes
    return Jpeg(segments, scans)


def png(data: bytes, max_chunks: int) -> Png:
    chunks, position, exif = 0, len(PNG_SIGNATURE), None
    while chunks <= max_chunks and position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        chunks += 1
        if kind == b"eXIf" and exif is None:
            exif = data[position + 8 : position + 8 + length]
        if kind == b"IEND":
            break
        position += 12 + length  # length, type, body, CRC
    return Png(chunks, exif)


def not_ours(data: bytes) -> str:
    """Why PIL's PNG, JPEG and WebP plugins could not identify the bytes, named from their signature."""
    if data.startswith((PNG_SIGNATURE, JPEG_SOI)) or is_riff_webp(data):
        return "is truncated or corrupt (its header could not be read)"
    found = next((name for magic, name in _OTHERS if data.startswith(magic)), None)
    if data.startswith(b"BM") and data[6:10] == b"\x00\x00\x00\x00":  # BMP's reserved bytes: "BM" alone is text
        found = "BMP"
    if data[4:8] == b"ftyp":
        found = _FTYP_BRANDS.get(data[8:12], found)
    if data.startswith(b"RIFF"):  # a RIFF container of something else than WebP
        form = data[8:12]
        found = _RIFF_FORMS.get(form, f"a RIFF {form.decode('latin-1')!r} file")
    if found is None:
        return "is not an image; it must be a PNG, JPEG or WebP file"
    return f"is not a PNG, JPEG or WebP image (found {found})"
