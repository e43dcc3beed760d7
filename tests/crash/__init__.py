"""The crash matrix: workflows SIGKILLed at every crash point found in their own history
(worker, agent or Temporal dev server), brought back, and checked. ``matrix`` is the
runner (``make crash-matrix``), ``test_crash_matrix`` the CI subset."""
