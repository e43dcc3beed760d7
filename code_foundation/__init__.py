"""CODE's foundations: the leaf package every other package may import.

It imports nothing of the project's own packages. It holds:

- :mod:`code_foundation.errors` — the exception root ``CodeError`` (each error type
  says whether it is ``retryable``) and :func:`~code_foundation.errors.to_application_error`,
  the one way an error becomes a Temporal ``ApplicationError``;
- :mod:`code_foundation.error_types` — the ``ApplicationError.type`` names and the one
  ``NON_RETRYABLE`` list every ``RetryPolicy`` takes;
- :mod:`code_foundation.durations` — human durations ("30s", "1h30m") as pydantic fields;
- :mod:`code_foundation.loader` — the one document loader (text/bytes/file → YAML/JSON →
  pydantic model, or ``SpecError`` naming every bad field);
- :mod:`code_foundation.names` — task queue, workflow and activity names, search attributes;
- :mod:`code_foundation.targets` — the one target-safety check (loopback by default).
"""
