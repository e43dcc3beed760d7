"""Every side effect of CODE lives here: platforms, ledger, artifacts,
secrets, metrics, validation, fault injection and load slices. Activities are
idempotent (idempotency key = workflow id + step) and raise
``ApplicationError(type=..., non_retryable=...)`` for business failures."""
