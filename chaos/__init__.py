"""Chaos engineering for CODE: the fault catalogue (:mod:`chaos.catalogue`), the
experiment model and loader (:mod:`chaos.model`), tolerances (:mod:`chaos.tolerance`),
blast-radius selection (:mod:`chaos.blast`), Chaos Toolkit translation
(:mod:`chaos.ctk`), abort conditions and deviation decisions (:mod:`chaos.abort`),
the messages and journal (:mod:`chaos.messages`) and the report (:mod:`chaos.report`).

Everything here is pure (no I/O at import or call time, except
:func:`chaos.model.load_experiment` which reads the file it is given), so the
workflow may use it inside the sandbox."""
