"""The retention: section: Synapse's keys load, and a broken value stops the server with one
line naming the key (as every config error does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.config import load_config
from tests.test_config import base_config, run_server

BROKEN = [
    ({"enabled": "yes"}, "retention.enabled: expected true or false"),
    ({"allowed_lifetime_min": "a while"}, "retention.allowed_lifetime_min: expected a duration"),
    ({"allowed_lifetime_min": "2d", "allowed_lifetime_max": "1d"},
     "retention: allowed_lifetime_min may not be greater than allowed_lifetime_max"),
    ({"default_policy": {"min_lifetime": "2d", "max_lifetime": "1d"}},
     "retention: default_policy.min_lifetime may not be greater"),
    ({"purge_jobs": [{"shortest_max_lifetime": "3d", "longest_max_lifetime": "1d"}]},
     "retention: purge_jobs: shortest_max_lifetime may not be greater than longest_max_lifetime"),
    ({"purge_jobs": [{"interval": 0}]}, "retention: purge_jobs: interval must be greater than zero"),
    ({"purge_jobs": [{"intervall": "1d"}]}, "retention.purge_jobs[0].intervall: unknown key"),
]


@pytest.mark.parametrize(("section", "message"), BROKEN)
def test_broken_retention_config_gives_one_line(tmp_path: Path, section: dict[str, Any], message: str) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path) | {"retention": section}))
    result = run_server(path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_synapse_shaped_section_loads(tmp_path: Path) -> None:
    section = {"enabled": True, "default_policy": {"min_lifetime": "1d", "max_lifetime": "1y"},
               "allowed_lifetime_min": "1d", "allowed_lifetime_max": "1y",
               "purge_jobs": [{"longest_max_lifetime": "3d", "interval": "12h"},
                              {"shortest_max_lifetime": "3d", "interval": "1d"}]}
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path) | {"retention": section}))
    retention = load_config(str(path)).retention
    assert retention.enabled and retention.default_policy.max_lifetime == 365 * 86_400_000
    assert [job.job_id for job in retention.jobs()] == ["any-259200000", "259200000-any"]
    assert retention.clamp(1000) == 86_400_000 and retention.clamp(10**12) == 365 * 86_400_000
