"""``{type: endpoint, service, environment}`` configuration values: the service's
router endpoint, asked of the platform by the caller's lookup (``codectl`` asks the
local agent: :func:`workers.cli.chaos_runs.agent_endpoints`)."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.model import UNRESOLVED_ENDPOINT, parse_experiment
from code_foundation.errors import SpecError


def doc(**endpoint: Any) -> dict[str, Any]:
    return {
        "title": "t",
        "configuration": {"endpoint": {"type": "endpoint", **endpoint}},
        "steady_state": {"probes": [{"name": "p", "url": "${endpoint}/work"}]},
        "method": [{"pause": "1s"}],
    }


def test_the_lookup_answers_the_endpoint() -> None:
    asked: list[tuple[str, str]] = []

    def lookup(service: str, env: str) -> str:
        asked.append((service, env))
        return "http://127.0.0.1:4321"

    exp = parse_experiment(doc(service="demo", environment="dev"), "t", {}, lookup)
    assert exp.steady_state and exp.steady_state.probes[0].url == "http://127.0.0.1:4321/work"
    assert asked == [("demo", "dev")]
    assert exp.configuration == {"endpoint": "http://127.0.0.1:4321"}


def test_without_a_lookup_the_document_still_validates() -> None:
    exp = parse_experiment(doc(service="demo", environment="dev"), "t", {})
    assert exp.steady_state and exp.steady_state.probes[0].url == f"{UNRESOLVED_ENDPOINT}/work"


def test_a_service_not_deployed_is_named() -> None:
    def lookup(service: str, env: str) -> str:
        raise ValueError(f"{service}/{env} is not deployed on the local platform")

    with pytest.raises(SpecError) as ei:
        parse_experiment(doc(service="demo", environment="dev"), "t", {}, lookup)
    assert ei.value.problems == [
        "configuration.endpoint: demo/dev is not deployed on the local platform"
    ]
    with pytest.raises(SpecError) as ei:
        parse_experiment(doc(service="demo"), "t", {})
    assert "names its service and environment" in ei.value.problems[0]
