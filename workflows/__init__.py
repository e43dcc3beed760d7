"""Deterministic orchestration for CODE: workflow definitions, their public
pydantic models, task-queue and activity names, and typed client helpers.

Nothing here performs I/O at import time; workflow modules import activity
*names* only (see :mod:`code_foundation.names`)."""
