"""Picture files for upload tests, made on the fly."""

from __future__ import annotations

import io
import os
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def picture(
    fmt: str = "PNG",
    size: tuple[int, int] = (64, 48),
    *,
    name: str | None = None,
    mode: str = "RGB",
    **save: object,
) -> SimpleUploadedFile:
    image = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    ext = {"JPEG": "jpg"}.get(fmt, fmt.lower())
    return upload(buffer.getvalue(), name or f"me.{ext}")


def upload(data: bytes, name: str, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def jpeg_with_location() -> SimpleUploadedFile:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel 9"  # Model
    gps = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}
    exif[0x8825] = gps  # GPSInfo
    return picture("JPEG", (80, 60), exif=exif, name="holiday.jpg")


def noise_png(target_bytes: int) -> SimpleUploadedFile:
    """A real PNG larger than target_bytes (random pixels do not compress)."""
    side = int((target_bytes / 3) ** 0.5) + 16
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    assert buffer.tell() > target_bytes
    return upload(buffer.getvalue(), "noise.png")


def png_bomb(width: int = 20_000, height: int = 20_000) -> SimpleUploadedFile:
    """A valid PNG of a few dozen kilobytes that decodes to width by height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + 1-bit pixels
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    return upload(png, "bomb.png")
