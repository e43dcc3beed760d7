"""The processes people run, and their wiring: the Temporal worker
(:mod:`workers.worker`, registration in :mod:`workers.registry`), the embedded dev stack
(:mod:`workers.devstack`), the local platform agent (:mod:`workers.agent`), the payload
codec and its server (:mod:`workers.codec`, :mod:`workers.codec_server`), telemetry
(:mod:`workers.telemetry`), TLS (:mod:`workers.tls`), and the ``codectl`` CLI, a package
of its own (:mod:`workers.cli`; its demo and progress view live there too). The CLI
imports the processes' modules; they never import the CLI."""
