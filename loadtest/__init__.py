"""Open-model HTTP load generation for CODE.

- :mod:`loadtest.scenario`: the scenario file (weighted targets, headers, body,
  expected status) and load profiles (constant / ramping arrival rate); pure.
- :mod:`loadtest.safety`: load only ever targets loopback addresses.
- :mod:`loadtest.stats`: per-(name, method) ``rust_core`` histograms and
  counters, serialisable and mergeable across slices and processes.
- :mod:`loadtest.engine`: the asyncio engine (latency from the *intended* send
  time, dropped iterations, keep-alive connections, per-request timeouts).
- :mod:`loadtest.native`: the same contract on the native engine
  (``rust_core.LoadEngine``; also HTTPS), the default; :func:`loadtest.native.load_run`
  picks an engine.

Nothing here performs I/O at import time."""
