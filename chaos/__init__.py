"""Chaos engineering for CODE: the fault catalogue (:mod:`chaos.catalogue`), the
experiment model (:mod:`chaos.model`), tolerances (:mod:`chaos.tolerance`),
blast-radius selection (:mod:`chaos.blast`), Chaos Toolkit import
(:mod:`chaos.ctk`) and the journal/report (:mod:`chaos.journal`).

Everything here is pure (no I/O at import or call time, except
:func:`chaos.model.load_experiment` which reads the file it is given), so the
workflow may use it inside the sandbox."""
