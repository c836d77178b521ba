"""The media config keys: Synapse's names and shapes, and the cross-key rule for URL previews."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeserver.config import ConfigError, parse_config
from tests.test_config import base_config


def test_defaults_are_synapses(tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path))
    assert [(s.width, s.height, s.method) for s in config.thumbnail_sizes] == [
        (32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (640, 480, "scale"), (800, 600, "scale")]
    assert config.max_upload_size == 50 * 1024 * 1024
    assert config.max_image_pixels == 32 * 1024 * 1024
    assert config.enable_authenticated_media is True
    assert config.dynamic_thumbnails is False
    assert config.unused_expiration_time == 24 * 3_600_000
    assert config.max_pending_media_uploads == 5
    assert config.media_upload_limits == []
    assert config.url_preview_enabled is False
    assert config.media_store_path == "media_store"


def test_upload_limits_take_synapses_shape(tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path) | {"media_upload_limits": [{"time_period": "1h", "max_size": "100M"}]})
    (limit,) = config.media_upload_limits
    assert (limit.time_period, limit.max_size) == (3_600_000, 100 * 1024 * 1024)


BROKEN = [
    ({"url_preview_enabled": True}, "url_preview_ip_range_blacklist: url_preview_enabled is true"),
    ({"url_preview_enabled": True, "url_preview_ip_range_blacklist": ["10.0.0.0/99"]},
     "url_preview_ip_range_blacklist: expected IP ranges"),
    ({"thumbnail_sizes": [{"width": 32, "height": 32, "method": "stretch"}]}, "thumbnail_sizes[0].method"),
    ({"thumbnail_sizes": [{"width": 0, "height": 32}]}, "thumbnail_sizes[0].width"),
    ({"media_upload_limits": [{"time_period": "often", "max_size": "1M"}]}, "media_upload_limits[0].time_period"),
    ({"media_upload_limits": [{"max_size": "1M"}]}, "media_upload_limits[0].time_period: missing"),
    ({"max_pending_media_uploads": 0}, "max_pending_media_uploads"),
    ({"max_image_pixels": "lots"}, "max_image_pixels: expected a size"),
]


@pytest.mark.parametrize(("change", "message"), BROKEN)
def test_broken_media_keys_name_the_key(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(base_config(tmp_path) | change)


def test_previews_with_a_blacklist_load(tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path) | {"url_preview_enabled": True,
                                                     "url_preview_ip_range_blacklist": ["127.0.0.0/8"]})
    assert config.url_preview_ip_range_blacklist == ["127.0.0.0/8"]
