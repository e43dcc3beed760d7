"""Platform routing by cluster: no cluster (or ``local``) is the configured agent, a
named cluster is the agent ``codectl dev --clusters`` recorded for it, an unknown one is
a ``ConfigError`` naming the known ones; one client per cluster. (The live routing to
real agents is tests/integration/test_release_live.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.deploy import DeployActivities
from activities.platform.clusters import agent_url, known_clusters, write_clusters
from activities.settings import Settings
from code_foundation.errors import ConfigError
from workers.clusters import parse_clusters


def test_clusters_route_to_their_own_agents(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, agent_url="http://127.0.0.1:1")
    assert agent_url(settings, None) == agent_url(settings, "local") == "http://127.0.0.1:1"
    write_clusters(tmp_path, {"eu-1": "http://127.0.0.1:2", "us-1": "http://127.0.0.1:3"})
    assert agent_url(settings, "us-1") == "http://127.0.0.1:3"
    assert known_clusters(settings) == ["eu-1", "local", "us-1"]
    with pytest.raises(ConfigError, match="unknown cluster 'mars-1': this stack has eu-1, local"):
        agent_url(settings, "mars-1")
    acts = DeployActivities(settings)
    eu, us, default = (acts.platform("local", c) for c in ("eu-1", "us-1", None))
    assert [getattr(p, "agent_url", "") for p in (eu, us, default)] == [
        "http://127.0.0.1:2",
        "http://127.0.0.1:3",
        "http://127.0.0.1:1",
    ]
    assert acts.platform("local", "eu-1") is eu  # one client per cluster, kept


def test_cluster_names_on_the_command_line() -> None:
    assert parse_clusters("eu-1, us-1,eu-1,local") == ["eu-1", "us-1"]
    assert parse_clusters("") == []
    with pytest.raises(ConfigError, match="not a cluster name: EU_1"):
        parse_clusters("EU_1")
