"""A QR code as a PNG image, from the standard library alone (``zlib``, ``struct``).

IAM's ``CreateVirtualMFADevice`` returns the device's QR code as PNG bytes. The ``qrcode`` package (the ``qr`` extra)
lays out the code; it writes PNG only through Pillow or pypng, and a black-and-white image of a few thousand pixels
needs neither: a 1-bit greyscale PNG is a header, the rows deflated, and an end marker.
"""

from __future__ import annotations

import struct
import zlib

from ..authenticators._totp import _qr

__all__ = ["png_of_matrix", "qr_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_matrix(matrix: list[list[bool]], *, scale: int = 6) -> bytes:
    """A 1-bit greyscale PNG of ``matrix`` (True: a dark module), each module ``scale`` pixels square."""
    if not matrix or not matrix[0] or not 1 <= scale <= 64:
        raise ValueError("a QR matrix has at least one module, drawn 1 to 64 pixels wide")
    width, height = len(matrix[0]) * scale, len(matrix) * scale
    rows = []
    for modules in matrix:
        bits = "".join(("0" if dark else "1") * scale for dark in modules)  # 0 is black in greyscale
        bits += "1" * (-len(bits) % 8)
        row = b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")  # filter type 0 (None), then the pixels
        rows.extend([row] * scale)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale, no interlace
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + _chunk(b"IEND", b""))


def qr_png(uri: str, *, scale: int = 6) -> bytes:
    """The QR code of ``uri`` (with a quiet zone) as PNG bytes. Needs the optional ``qrcode`` package."""
    return png_of_matrix(_qr(uri).get_matrix(), scale=scale)
