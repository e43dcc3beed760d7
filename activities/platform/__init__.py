"""Deployment targets: the ``Platform`` protocol (``base``), the local agent
client (``local``) and Kubernetes (``kubernetes``)."""
