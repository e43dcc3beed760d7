"""Hand-written stub of the native module (checked by mypy.stubtest)."""

from collections.abc import Sequence
from typing import Any, final

__all__ = [
    "RULES",
    "Histogram",
    "LoadEngine",
    "__version__",
    "burn_rates",
    "chain_hash",
    "hodges_lehmann",
    "judge",
    "mann_kendall",
    "mann_whitney_u",
    "percentiles",
    "theil_sen",
    "validate_manifests",
    "verify_chain",
    "version",
]

__version__: str
RULES: tuple[tuple[str, str], ...]

def version() -> str: ...
def percentiles(values: Any, quantiles: Any) -> list[float]: ...

@final
class Histogram:
    def __new__(cls, relative_error: float = 0.01) -> Histogram: ...
    def record(self, value: float, count: int = 1) -> None: ...
    def record_many(self, values: Any) -> None: ...
    def merge(self, other: Histogram) -> None: ...
    def quantile(self, q: float) -> float: ...
    def quantiles(self, qs: Any) -> list[float]: ...
    @property
    def count(self) -> int: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    @property
    def mean(self) -> float: ...
    @property
    def sum(self) -> float: ...
    @property
    def relative_error(self) -> float: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(b: bytes) -> Histogram: ...
    def copy(self) -> Histogram: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...
    def __len__(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class LoadEngine:
    def __new__(
        cls,
        host: str,
        port: int,
        requests: Sequence[tuple[bytes, bool, float, Sequence[int]]],
        cycle: Sequence[int],
        segments: Sequence[tuple[float, float, float]],
        count: int,
        duration_s: float,
        max_vus: int,
        graceful_stop_s: float,
        warm: int,
        slo_latency_ms: float | None = None,
        relative_error: float = 0.01,
        tls: bool = False,
        ca_file: str | None = None,
    ) -> LoadEngine: ...
    def run(
        self,
    ) -> tuple[
        float,
        float,
        float,
        int,
        int,
        int,
        float,
        list[tuple[int, int, int, int, int, int, list[tuple[int, int]], bytes]],
    ]: ...
    def progress(self) -> tuple[float, int, int, int, int, int, int, float | None]: ...
    def stop(self) -> None: ...

def mann_whitney_u(
    x: Any,
    y: Any,
    alternative: str = "two-sided",
    method: str = "auto",
    use_continuity: bool = True,
) -> tuple[float, float, float]: ...
def hodges_lehmann(x: Any, y: Any, confidence: float = 0.95) -> tuple[float, float, float]: ...
def judge(
    metrics: Sequence[tuple[str, str, str, bool, bool, float, float, str, float]],
    canary: Sequence[Any],
    baseline: Sequence[Any],
    groups: Sequence[tuple[str, float]],
    pass_threshold: float,
    marginal_threshold: float,
    confidence: float,
) -> tuple[float, str, str, list[tuple[str, float]], list[dict[str, Any]]]: ...
def burn_rates(
    timestamps: Any,
    good: Any,
    total: Any,
    objective: float,
    windows: Sequence[tuple[float, float, float, str]] | None = None,
    now: float | None = None,
    budget_period: float = 2592000.0,
) -> tuple[list[tuple[str, float, float, float, float, float, bool]], float, float]: ...
def theil_sen(x: Any, y: Any, confidence: float = 0.95) -> tuple[float, float, float, float]: ...
def mann_kendall(y: Any, x: Any | None = None) -> tuple[float, float, float, float]: ...
def validate_manifests(
    yaml_text: str, required_labels: Sequence[str] = ..., rules: Sequence[str] | None = None
) -> list[tuple[str, str, int, str, str, str, str, str]]: ...
def chain_hash(prev_hash: str, payload: bytes | str) -> str: ...
def verify_chain(records: Any, genesis: str = ...) -> int | None: ...
