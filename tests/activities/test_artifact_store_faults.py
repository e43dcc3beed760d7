"""The local artifact store when its disk is full or its place is unwritable: a clear,
retryable ``ArtifactStoreUnavailable`` naming the key and the place, and nothing
half-written is ever read back (the last complete version still reads, with its
checksum). "Full" is a real ENOSPC-like failure: a child process with a file-size
limit (RLIMIT_FSIZE) writes for real and gets EFBIG from the kernel."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from activities.artifacts import ArtifactStoreUnavailable
from activities.artifacts.local import LocalArtifactStore

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from activities.artifacts import ArtifactStoreUnavailable
    from activities.artifacts.local import LocalArtifactStore

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    store = LocalArtifactStore(sys.argv[1])
    try:
        store.put("reports/run-1/report.md", b"x" * (1024 * 1024), "text/markdown")
    except ArtifactStoreUnavailable as exc:
        print(json.dumps({"type": type(exc).__name__, "message": str(exc),
                          "retryable": exc.retryable}))
        sys.exit(0)
    print(json.dumps({"type": "none"}))
    """
)


def test_a_full_disk_is_a_clear_retryable_error_and_nothing_half_written_is_read(
    tmp_path: Path,
) -> None:
    import json

    root = tmp_path / "artifacts"
    store = LocalArtifactStore(root)
    first = store.put("reports/run-1/report.md", b"# complete report\n", "text/markdown")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["type"] == "ArtifactStoreUnavailable", out.stdout + out.stderr
    assert res["retryable"] is True
    assert "reports/run-1/report.md" in res["message"] and str(root) in res["message"]
    # the failed write left nothing that reads back: the complete version is still the latest
    assert store.get("reports/run-1/report.md") == b"# complete report\n"
    assert [v.version_id for v in store.versions("reports/run-1/report.md")] == [first.version_id]
    leftovers = [p.name for p in (root / "reports/run-1/report.md.versions").iterdir()]
    assert not [n for n in leftovers if n.startswith(".tmp-")], leftovers


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    store = LocalArtifactStore(blocker)
    with pytest.raises(ArtifactStoreUnavailable) as exc:
        store.put("chaos/x/journal.json", b"{}", "application/json")
    assert "chaos/x/journal.json" in str(exc.value) and str(blocker) in str(exc.value)
    assert exc.value.retryable
