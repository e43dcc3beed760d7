"""Which release a deployment belonged to, for ``codectl history SERVICE``.

A release runs each target's deployment (and each restore) as a child workflow, so
Temporal records the release as the child's parent: :func:`releases_of` asks Temporal
(``describe``) for the parent of each ledger row's workflow, and that one's parent (a
deployment's own rollback is the release's grandchild), up to three levels, and keeps the
first ``ReleaseWorkflow`` id (``release-<service>-<version>``). A deployment started directly
has none; so does every row when Temporal cannot be reached (history still shows the
ledger, whose rows carry no release)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from activities.settings import Settings

RELEASE_PREFIX = "release-"
MAX_DEPTH = 3


async def _releases_of(settings: Settings, workflow_ids: list[str]) -> dict[str, str | None]:
    from workers.cli.common import client_for

    out: dict[str, str | None] = dict.fromkeys(workflow_ids)
    try:
        client = await asyncio.wait_for(client_for(settings), 5)
    except Exception:  # noqa: BLE001 - no Temporal: the ledger alone, no release column
        return out

    parents: dict[str, str | None] = {}

    async def parent_of(wid: str) -> str | None:
        if wid not in parents:
            desc = await asyncio.wait_for(client.get_workflow_handle(wid).describe(), 5)
            parents[wid] = desc.parent_id
        return parents[wid]

    async def one(wid: str) -> None:
        with contextlib.suppress(Exception):
            at: str | None = wid
            for _ in range(MAX_DEPTH):  # a deployment's own rollback is a grandchild
                at = await parent_of(at) if at else None
                if at and at.startswith(RELEASE_PREFIX):
                    out[wid] = at
                    return

    await asyncio.gather(*(one(w) for w in workflow_ids))
    return out


def releases_of(settings: Settings, workflow_ids: Iterable[str]) -> dict[str, str | None]:
    """workflow id → the release that started it (or None)."""
    ids = sorted({w for w in workflow_ids if w})
    return asyncio.run(_releases_of(settings, ids)) if ids else {}
