"""Fault implementations behind the chaos activities: :mod:`.local` (the local
agent plus host burners), :mod:`.kubernetes` (pods and Deployments) and the
:mod:`.burner` process used for CPU/memory pressure. Each fault has an
idempotent inject (keyed by workflow id + action + target) and revert.

A revert (or explicit rollback) returns a readable detail string; when there was
nothing to revert (the fault was never injected, or is already gone: the service,
version, policy or burner no longer exists, or nothing was dead or stopped) it
returns a :class:`NothingToRevert`, a ``str`` the chaos activity reports as the
outcome ``nothing_to_revert`` rather than as a revert."""

from __future__ import annotations


class NothingToRevert(str):
    """A revert's detail when nothing was in place to revert (not a failure)."""

    __slots__ = ()
