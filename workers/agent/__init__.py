"""The local platform agent: runs service versions as real subprocesses behind a
weighted HTTP router per service/environment, on 127.0.0.1 only.

Control plane apart from data plane, like a kubelet and its containers: each
router is its own process (``routerd``) and each instance its own session, so
both keep serving when the agent dies; the agent persists its desired state and
journal, and re-adopts what is alive when it starts again.

Run it with ``python -m workers.agent --host 127.0.0.1 --port 8270 --state-dir DIR``.
Modules: ``instances`` (service processes), ``router`` (weighted proxy and
samples), ``routerd`` (the router process), ``routers`` (the agent's handle on
router processes), ``faults`` (router fault injection), ``metrics`` (Prometheus
registries), ``model`` (data classes), ``state`` (atomic writes, the journal),
``core`` (the agent: desired state, keyed calls, monitor), ``ops`` (apply,
retire, traffic), ``chaosops`` (fault operations), ``reconcile`` (what a
starting agent adopts and restarts), ``app`` (control API), ``__main__`` (CLI
wiring). The HTTP contract is described in ``app``; :mod:`activities.platform.local`
is its client."""
