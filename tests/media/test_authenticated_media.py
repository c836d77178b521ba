"""enable_authenticated_media: what the legacy unauthenticated endpoints still serve after the switch."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from tests.support.accounts import custom_server
from tests.support.client import register_user
from tests.support.databases import ENGINES
from tests.support.media import image_bytes, thumbnail, upload


@pytest.mark.parametrize("engine", ENGINES)
def test_media_from_after_the_switch_is_authenticated_only(tmp_path: Path, engine: str) -> None:
    with custom_server(tmp_path, engine, enable_authenticated_media=False) as server:
        alice = register_user(server.base_url)
        before = upload(alice, image_bytes("PNG", (80, 80)), "image/png", "before.png")
        for prefix in ("r0", "v1", "v3"):
            legacy = requests.get(f"{server.base_url}/_matrix/media/{prefix}/download/{before[0]}/{before[1]}",
                                  timeout=30)
            assert legacy.status_code == 200, prefix
        assert thumbnail(alice, *before, authenticated=False, width=32, height=32).status_code == 200

        config = yaml.safe_load(server.config_path.read_text())
        config["enable_authenticated_media"] = True
        server.config_path.write_text(yaml.safe_dump(config))
        server.restart()

        after = upload(alice, image_bytes("PNG", (80, 80), color=(1, 2, 3)), "image/png", "after.png")
        assert requests.get(f"{server.base_url}/_matrix/media/v3/download/{before[0]}/{before[1]}",
                            timeout=30).status_code == 200
        assert thumbnail(alice, *before, authenticated=False, width=32, height=32).status_code == 200
        for path in (f"/_matrix/media/v3/download/{after[0]}/{after[1]}",
                     f"/_matrix/media/v3/download/{after[0]}/{after[1]}/after.png"):
            refused = requests.get(server.base_url + path, timeout=30)
            assert (refused.status_code, refused.json()["errcode"]) == (404, "M_NOT_FOUND")
        refused_thumb = thumbnail(alice, *after, authenticated=False, width=32, height=32)
        assert (refused_thumb.status_code, refused_thumb.json()["errcode"]) == (404, "M_NOT_FOUND")
        authed = requests.get(f"{server.base_url}/_matrix/client/v1/media/download/{after[0]}/{after[1]}",
                              headers={"Authorization": f"Bearer {alice.access_token}"}, timeout=30)
        assert authed.status_code == 200
        assert thumbnail(alice, *after, width=32, height=32).status_code == 200
