"""Thumbnails, checked by decoding what the server sends with Pillow."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from tests.support.client import Client, register_user
from tests.support.media import CSP, decode, image_bytes, media_files, thumbnail, upload
from tests.support.server import RunningServer

SOURCES = [  # upload type, Pillow format, the thumbnail type expected
    ("image/png", "PNG", "image/png"),
    ("image/jpeg", "JPEG", "image/jpeg"),
    ("image/gif", "GIF", "image/png"),
    ("image/webp", "WEBP", "image/jpeg"),
]


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return register_user(server.base_url)


def bluish(pixel: tuple[int, ...]) -> bool:
    return pixel[2] > 150 and pixel[0] < 100


def reddish(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 150 and pixel[2] < 100


def thumb_image(client: Client, server_name: str, media_id: str, expected_type: str, **params: object) -> Image.Image:
    response = thumbnail(client, server_name, media_id, **params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == expected_type
    assert response.headers["Content-Disposition"] == f"inline; filename=thumbnail.{expected_type.split('/')[1]}"
    assert response.headers["Content-Security-Policy"] == CSP
    return decode(response.content)


@pytest.mark.parametrize(("media_type", "fmt", "thumb_type"), SOURCES, ids=[s[1] for s in SOURCES])
def test_crop_and_scale(alice: Client, media_type: str, fmt: str, thumb_type: str) -> None:
    server_name, media_id = upload(alice, image_bytes(fmt, (400, 300)), media_type)
    small = thumb_image(alice, server_name, media_id, thumb_type, width=32, height=32, method="crop")
    assert small.size == (32, 32)
    assert bluish(small.convert("RGB").getpixel((2, 2))) and reddish(small.convert("RGB").getpixel((29, 29)))
    # 50x50 crop is served from the nearest configured size that covers it, 96x96.
    medium = thumb_image(alice, server_name, media_id, thumb_type, width=50, height=50, method="crop")
    assert medium.size == (96, 96)
    # 300x200 scale: the 320x240 size; the 4:3 image fits it exactly.
    scaled = thumb_image(alice, server_name, media_id, thumb_type, width=300, height=200, method="scale")
    assert scaled.size == (320, 240)
    assert bluish(scaled.convert("RGB").getpixel((10, 10))) and reddish(scaled.convert("RGB").getpixel((310, 230)))
    # No method means scale; 700x500 needs the 800x600 size, but the image is never scaled up.
    largest = thumb_image(alice, server_name, media_id, thumb_type, width=700, height=500)
    assert largest.size == (400, 300)


def test_thumbnails_are_kept_and_served_again(server: RunningServer, alice: Client) -> None:
    server_name, media_id = upload(alice, image_bytes("PNG", (200, 200)), "image/png")
    first = thumbnail(alice, server_name, media_id, width=96, height=96, method="crop")
    files = media_files(server)
    second = thumbnail(alice, server_name, media_id, width=90, height=90, method="crop")
    assert first.content == second.content
    assert media_files(server) == files
    assert any(os.sep + "thumbnails" + os.sep in str(path) and media_id[4:] in str(path) for path in files)


def test_exif_orientation_is_honoured(alice: Client) -> None:
    image = Image.new("RGB", (400, 300), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 200, 150))  # blue top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    server_name, media_id = upload(alice, out.getvalue(), "image/jpeg")
    upright = thumb_image(alice, server_name, media_id, "image/jpeg", width=320, height=240, method="scale")
    assert upright.size == (180, 240)  # 300x400 once upright, fitted into 320x240
    # Rotated clockwise, the stored top-left corner is now the top-right.
    assert bluish(upright.getpixel((170, 10))) and reddish(upright.getpixel((10, 10)))


def animated_gif(frames: int = 3) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", (120, 90), colours[i % len(colours)]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def test_animated_stays_animated_only_when_asked(alice: Client) -> None:
    server_name, media_id = upload(alice, animated_gif(3), "image/gif")
    moving = thumb_image(alice, server_name, media_id, "image/webp", width=96, height=96, method="crop",
                         animated="true")
    assert moving.format == "WEBP" and getattr(moving, "is_animated", False) and moving.n_frames == 3
    assert moving.size == (90, 90)  # 96x96 would be an upscale of the 90-pixel-high source
    for params in ({"animated": "false"}, {}):
        still = thumb_image(alice, server_name, media_id, "image/png", width=96, height=96, method="crop", **params)
        assert not getattr(still, "is_animated", False)


def test_animated_request_for_a_still_image_gets_a_still(alice: Client) -> None:
    server_name, media_id = upload(alice, image_bytes("JPEG", (200, 100)), "image/jpeg")
    still = thumb_image(alice, server_name, media_id, "image/jpeg", width=32, height=32, method="crop",
                        animated="true")
    assert still.format == "JPEG"


def test_small_images_are_never_scaled_up(alice: Client) -> None:
    server_name, media_id = upload(alice, image_bytes("PNG", (20, 10)), "image/png")
    assert thumb_image(alice, server_name, media_id, "image/png", width=96, height=96, method="crop").size == (10, 10)
    assert thumb_image(alice, server_name, media_id, "image/png", width=320, height=240).size == (20, 10)


def test_encrypted_and_other_non_images_are_never_thumbnailed(server: RunningServer, alice: Client) -> None:
    ciphertext = os.urandom(5000)
    for media_type in ("application/octet-stream", "application/pdf", "image/svg+xml", "video/mp4"):
        server_name, media_id = upload(alice, ciphertext, media_type)
        before = media_files(server)
        response = thumbnail(alice, server_name, media_id, width=32, height=32)
        assert (response.status_code, response.json()["errcode"]) == (400, "M_UNKNOWN"), media_type
        assert media_files(server) == before


def test_undecodable_images_get_a_matrix_error(server: RunningServer, alice: Client) -> None:
    truncated = image_bytes("PNG", (300, 300))[:200]
    for data in (os.urandom(3000), truncated, b"GIF89a" + b"\x00" * 20):
        server_name, media_id = upload(alice, data, "image/png")
        before = media_files(server)
        response = thumbnail(alice, server_name, media_id, width=32, height=32, method="crop")
        assert (response.status_code, response.json()["errcode"]) == (400, "M_UNKNOWN")
        assert "thumbnail" in response.json()["error"]
        assert media_files(server) == before


BAD_PARAMS = [
    ({"height": 32}, "M_MISSING_PARAM"), ({"width": 32}, "M_MISSING_PARAM"),
    ({"width": 0, "height": 32}, "M_INVALID_PARAM"), ({"width": -5, "height": 32}, "M_INVALID_PARAM"),
    ({"width": "big", "height": 32}, "M_INVALID_PARAM"), ({"width": 32, "height": 32, "method": "stretch"},
                                                          "M_INVALID_PARAM"),
    ({"width": 32, "height": 32, "animated": "maybe"}, "M_INVALID_PARAM"),
]


@pytest.mark.parametrize(("params", "errcode"), BAD_PARAMS)
def test_bad_parameters(alice: Client, params: dict[str, object], errcode: str) -> None:
    server_name, media_id = upload(alice, image_bytes("PNG", (50, 50)), "image/png")
    response = thumbnail(alice, server_name, media_id, **params)
    assert (response.status_code, response.json()["errcode"]) == (400, errcode)


# The tight server: dynamic thumbnails, at most 1,000,000 pixels decoded.

def test_dynamic_thumbnails_are_the_size_asked_for(tight_server: RunningServer) -> None:
    client = register_user(tight_server.base_url)
    server_name, media_id = upload(client, image_bytes("PNG", (400, 300)), "image/png")
    assert thumb_image(client, server_name, media_id, "image/png", width=40, height=30, method="scale").size == (40, 30)
    assert thumb_image(client, server_name, media_id, "image/png", width=50, height=50, method="crop").size == (50, 50)
    assert thumb_image(client, server_name, media_id, "image/png", width=100, height=30).size == (40, 30)


def test_decompression_bombs_are_refused(tight_server: RunningServer) -> None:
    client = register_user(tight_server.base_url)
    bomb = image_bytes("PNG", (2000, 1000), optimize=True)  # 2,000,000 pixels in a few kilobytes
    assert len(bomb) < 100_000
    server_name, media_id = upload(client, bomb, "image/png")
    response = thumbnail(client, server_name, media_id, width=32, height=32, method="crop")
    assert (response.status_code, response.json()["errcode"]) == (413, "M_TOO_LARGE")
    assert "pixels" in response.json()["error"]
    # The file itself is still there for whoever wants it.
    fits = upload(client, image_bytes("PNG", (1000, 1000)), "image/png")
    assert thumbnail(client, *fits, width=32, height=32).status_code == 200
