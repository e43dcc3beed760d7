"""Every side effect of CODE lives here: platforms, ledger, artifacts,
secrets, metrics, validation, fault injection and load slices. Activities are
idempotent (idempotency key = workflow id + step) and raise the project's errors
(``code_foundation.errors.CodeError`` subclasses); one worker interceptor
(:mod:`activities.interceptor`) reports them as
``ApplicationError(type=<class name>, non_retryable=not retryable)``."""
