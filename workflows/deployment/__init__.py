"""The deployment workflow, split along its seams (like argo-rollouts' rollout
package):

* :mod:`~workflows.deployment.workflow` — ``DeploymentWorkflow``: its handlers
  (``approve`` Update and validator, ``pause``/``resume``/``abort`` Signals,
  ``status`` Query) and the run from validation to promotion;
* :mod:`~workflows.deployment.strategies` — canary, blue-green and rolling;
* :mod:`~workflows.deployment.gates` — approval, error budget and audit;
* :mod:`~workflows.deployment.compensation` — the child ``RollbackWorkflow``;
* :mod:`~workflows.deployment.host` — what these share (options, the typed host).

Import the workflow as ``from workflows.deployment import DeploymentWorkflow``."""

from workflows.deployment.workflow import DeploymentWorkflow

__all__ = ["DeploymentWorkflow"]
