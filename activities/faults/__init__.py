"""Fault implementations behind the chaos activities: :mod:`.local` (the local
agent plus host burners), :mod:`.kubernetes` (pods and Deployments) and the
:mod:`.burner` process used for CPU/memory pressure. Each fault has an
idempotent inject (keyed by workflow id + action + target) and revert."""
