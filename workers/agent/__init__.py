"""The local platform agent: runs service versions as real subprocesses behind a
weighted HTTP router per service/environment, on 127.0.0.1 only.

Run it with ``python -m workers.agent --host 127.0.0.1 --port 8270 --state-dir DIR``.
Modules: ``instances`` (process management), ``router`` (weighted proxy and
samples), ``faults`` (router fault injection), ``metrics`` (Prometheus
registry), ``model`` (data classes), ``core`` (operations, journal, state file),
``chaosops`` (fault operations), ``app``
(control API), ``__main__`` (CLI wiring). The HTTP contract is described in
``app``; :mod:`activities.platform.local` is its client."""
