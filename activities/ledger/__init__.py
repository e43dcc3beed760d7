"""The release ledger and its hash-chained audit log (sqlmodel; SQLite or PostgreSQL).

Contract
--------
* ``Ledger(url)`` creates the schema on start (``create_all`` plus the
  ``code_schema_version`` table; pending migrations in ``MIGRATIONS`` are applied in
  order). The same models and queries run on SQLite (default) and PostgreSQL.
* ``record(LedgerRecordInput)`` upserts the release row keyed by
  (service, environment, version, workflow_id) and sets its status. It is idempotent on
  ``idempotency_key``: every key ever applied is kept in ``code_ledger_request``, so a
  replayed call (even after later status changes) returns ``changed=False`` and writes
  nothing. Every status change appends an audit record
  (``action=f"release.{status}"``, ``subject=f"{service}/{environment}@{version}"``) in
  the same transaction.
* ``last_known_good`` returns the most recently promoted release (status ``promoted``,
  newest ``updated_at``) of a service/environment, excluding ``exclude_version`` (or only
  ``only_version``), with its spec parsed back into a ``DeploymentSpec``.
* ``audit(...)`` appends to the chain: ``hash = rust_core.chain_hash(prev_hash, payload)``
  where ``payload`` is the canonical JSON of (seq, ts, actor, action, subject,
  detail_json) and the genesis ``prev_hash`` is ``"0" * 64``. Appends are serialized
  (``SELECT ... FOR UPDATE`` on the chain-head row on PostgreSQL; ``BEGIN IMMEDIATE``
  plus a process lock on SQLite) so the chain never forks. ``seq`` starts at 0, so it
  equals the record's index in the chain.
* ``verify_audit()`` returns ``None`` when the chain is intact, else the seq (index)
  of the first broken record (``rust_core.verify_chain``).
* ``LedgerActivities`` exposes ``record``/``last_known_good`` as Temporal activities,
  runs the blocking DB calls in a thread and maps an unreachable database to the
  retryable :class:`LedgerUnavailable` (a ``ServerUnavailable``) whose message names the
  URL with its password masked. The engine pings pooled connections before use
  (``pool_pre_ping``), so calls succeed again as soon as the server is back.
"""

from activities.ledger.activities import LedgerActivities, LedgerUnavailable
from activities.ledger.models import (
    GENESIS_HASH,
    MIGRATIONS,
    SCHEMA_VERSION,
    AuditHead,
    AuditRecord,
    LedgerRequest,
    Release,
    SchemaVersion,
    canonical_json,
)
from activities.ledger.store import Ledger

__all__ = [
    "GENESIS_HASH",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AuditHead",
    "AuditRecord",
    "Ledger",
    "LedgerActivities",
    "LedgerRequest",
    "LedgerUnavailable",
    "Release",
    "SchemaVersion",
    "canonical_json",
]
