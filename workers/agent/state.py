"""The agent's durable state: atomic file writes and the operations journal.

- :func:`atomic_write_json` writes ``path.tmp``, fsyncs it, renames it over
  ``path`` and fsyncs the directory, so a crash leaves either the old or the new
  file, never a torn one. A failure raises :class:`AgentError` 507
  ``state_not_persisted`` (never swallowed): the caller learns its operation was
  not recorded.
- :class:`Journal` is ``ops.jsonl``: every call of a platform mutation (keyed or
  not) writes a ``begin`` line before it does anything and an ``end`` line when
  it is over, both fsynced. The ``end`` line holds the outcome:

  ``done``        the first successful call of its key (its ``result`` is kept)
  ``replayed``    a later call with the same key: nothing was done, the first
                  result was returned (``first_call`` names that call)
  ``repaired``    a later call with the same key that re-created instances lost
                  in an agent crash (their secrets are never persisted)
  ``failed``      the call raised (``error``); nothing is kept for its key
  ``interrupted`` the agent died during the call (found at the next start)

  plus ``call`` (unique id), ``ts``, ``op``, ``service``, ``environment``,
  ``version``, ``idempotency_key``, ``fingerprint`` (hash of the request, never
  of secret values) and ``changed``. An outside checker counts, per key, the
  calls with ``outcome == "done"``: more than one means a key was applied twice.
  ``GET /v1/ops`` lists the ``end`` lines (without ``result``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from workers.agent.model import AgentError

DONE, REPLAYED, REPAIRED, FAILED, INTERRUPTED = (
    "done",
    "replayed",
    "repaired",
    "failed",
    "interrupted",
)


def state_error(path: Path, exc: OSError) -> AgentError:
    return AgentError(
        507,
        "state_not_persisted",
        f"the agent could not write {path}: {exc.strerror or exc}. The operation was not "
        "recorded (fix the state dir: disk full? permissions?); retrying with the same "
        "idempotency key is safe",
    )


def atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    body = json.dumps(data, indent=1, sort_keys=True).encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise state_error(path, exc) from None


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("result", "phase")}


class Journal:
    def __init__(self, path: Path, boot: str, keep: int = 10_000) -> None:
        self.path = path
        self.boot = boot
        self._seq = 0
        self.entries: deque[dict[str, Any]] = deque(maxlen=keep)
        self._done: dict[tuple[str, str], dict[str, Any]] = {}
        self._fh: IO[str] | None = None

    # ------------------------------------------------------------ loading
    def load(self) -> list[dict[str, Any]]:
        """Read the journal; close calls begun but never ended as ``interrupted``
        (written back, so the file tells the whole story) and return them."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise state_error(self.path, exc) from None
        if text and not text.endswith("\n"):  # a torn last line from a crash
            self._write_raw("\n")
        open_calls: dict[str, dict[str, Any]] = {}
        for line in text.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if not isinstance(e, dict) or "call" not in e:
                continue
            if e.get("phase") == "begin":
                open_calls[e["call"]] = e
            else:
                open_calls.pop(e["call"], None)
                self._index(e)
        out = []
        for b in open_calls.values():
            e = {**b, "outcome": INTERRUPTED, "changed": None, "ended_at": time.time()}
            self.end(e)
            out.append(e)
        return out

    # ------------------------------------------------------------ calls
    def new(
        self,
        op: str,
        service: str | None,
        environment: str | None,
        version: str | None,
        key: str | None,
        fp: str | None = None,
    ) -> dict[str, Any]:
        self._seq += 1
        return {
            "call": f"{self.boot}-{self._seq}",
            "ts": time.time(),
            "op": op,
            "service": service,
            "environment": environment,
            "version": version,
            "idempotency_key": key,
            "fingerprint": fp,
        }

    def first(self, op: str, key: str | None) -> dict[str, Any] | None:
        return self._done.get((op, key)) if key else None

    def begin(self, entry: dict[str, Any]) -> None:
        self._write({**public(entry), "phase": "begin"})

    def end(self, entry: dict[str, Any]) -> None:
        entry.setdefault("ended_at", time.time())
        self._write({**entry, "phase": "end"})
        self._index(entry)

    def list(self, key: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.entries if key is None or e.get("idempotency_key") == key]

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    # ------------------------------------------------------------ internals
    def _index(self, e: dict[str, Any]) -> None:
        self.entries.append(public(e))
        key = e.get("idempotency_key")
        if key and e.get("outcome") == DONE:
            self._done.setdefault((str(e.get("op")), str(key)), e)

    def _write(self, e: dict[str, Any]) -> None:
        self._write_raw(json.dumps(e, sort_keys=True, default=str) + "\n")

    def _write_raw(self, text: str) -> None:
        try:
            if self._fh is None:
                self._fh = open(self.path, "a")  # noqa: SIM115 - kept open for appends
            self._fh.write(text)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self.close()
            raise state_error(self.path, exc) from None
