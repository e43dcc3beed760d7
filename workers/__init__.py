"""The processes people run: the Temporal worker, the embedded dev stack, the
local platform agent and the ``codectl`` CLI. Wiring only."""
