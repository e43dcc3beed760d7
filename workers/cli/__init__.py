"""``codectl``, the command line of CODE: wiring only (parse arguments, read and
validate files, call Temporal through the typed client helpers, render with rich).
``main`` is the console script (``codectl = "workers.cli:main"``), ``app`` the root
typer app; ``python -m workers.cli`` runs it too.

Exit codes: 0 success, 1 the run did not succeed (rolled back, failed), 2 invalid input
(``SpecError``: every file a command reads goes through :mod:`code_foundation.loader`,
so a missing, binary or non-UTF-8 file is refused with the reason), 3 a server could
not be reached.

Modules (one per command group; :mod:`root` imports them, they never import it):

* :mod:`~workers.cli.root`: the root app; mounts every command and sub-app.
* :mod:`~workers.cli.common`: the shared helpers: the one stdout/stderr rich Console,
  ``fail`` (the one way to fail: exit 2 / 3 / 1), ``run_async``, ``load_spec_file``,
  ``identity``, ``client_for``, ``ui_link``, ``mask_url``. Imports no command module.
* :mod:`~workers.cli.progress`: the live progress view of a deployment (``follow``,
  ``render_status``).
* :mod:`~workers.cli.approvals`: sending an approval / budget override; audits rejections.
* :mod:`~workers.cli.stack`: ``dev``, ``down``, ``worker``.
* :mod:`~workers.cli.deploy`: ``schema``, ``validate``, ``deploy``, ``status``, ``pause``,
  ``resume``, ``abort``, ``approve``, ``rollback``, ``history``.
* :mod:`~workers.cli.lanes`: ``lanes`` (the release lanes in use: holder and queue), and
  the lane look-up of ``deploy`` / ``rollback`` with ``concurrency: reject``.
* :mod:`~workers.cli.demo`: ``demo``, the two-minute tour.
* :mod:`~workers.cli.load`: ``load``, an open-model load run.
* :mod:`~workers.cli.analysis`: ``rejudge`` and ``analyse``.
* :mod:`~workers.cli.chaos` (commands) and :mod:`~workers.cli.chaos_runs` (plan, start,
  schedule): ``chaos ...``.
* :mod:`~workers.cli.soak`: ``soak start|schedule|status|report``.
* :mod:`~workers.cli.slo`: ``slo rules|override``.
* :mod:`~workers.cli.codec`: ``codec keygen|rotate`` and ``codec-server``.
* :mod:`~workers.cli.audit`: ``audit verify``; :mod:`~workers.cli.config`: ``config show``.
"""

from workers.cli.root import app, main

__all__ = ["app", "main"]
