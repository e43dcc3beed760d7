"""The ledger's Temporal activities (``ledger.record``, ``ledger.last_known_good``): the
blocking :class:`~activities.ledger.store.Ledger` runs in a thread; an unreachable
database is the retryable :class:`LedgerUnavailable`, its URL's password masked."""

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from temporalio import activity

from activities.ledger.store import Ledger
from code_foundation.errors import ServerUnavailable
from code_foundation.names import A
from workflows.models import LastGoodInput, LastGoodResult, LedgerRecordInput, LedgerRecordResult

_UNREACHABLE = (OperationalError, InterfaceError, DisconnectionError)


class LedgerUnavailable(ServerUnavailable):
    """The ledger database cannot be reached; retry (the pool reconnects by itself)."""

    @classmethod
    def of(cls, exc: BaseException, url: str) -> "LedgerUnavailable":
        """The error naming the database (password masked) and the driver's reason."""
        where = make_url(url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return cls(
            f"ledger database {where} unreachable ({type(exc).__name__}: "
            f"{(reason[0] if reason else '')[:300]}); will retry: check that the database "
            "server is running and reachable (CODE_LEDGER_URL)"
        )


class LedgerActivities:
    """Temporal activities over a :class:`Ledger` (blocking calls run in a thread)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except _UNREACHABLE as exc:
            raise LedgerUnavailable.of(exc, self.ledger.url) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise LedgerUnavailable.of(exc, self.ledger.url) from exc
            raise

    @activity.defn(name=A.LEDGER_RECORD)
    async def record(self, inp: LedgerRecordInput) -> LedgerRecordResult:
        result: LedgerRecordResult = await self._call(self.ledger.record, inp)
        return result

    @activity.defn(name=A.LEDGER_LAST_GOOD)
    async def last_known_good(self, inp: LastGoodInput) -> LastGoodResult:
        result: LastGoodResult = await self._call(self.ledger.last_known_good, inp)
        return result
