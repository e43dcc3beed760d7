"""Every ``codectl`` command that reads a file refuses a binary file (NUL bytes) and a
non-UTF-8 file with exit 2 and a one-line reason: never a traceback, and nothing is
started (checked on a real Temporal dev server the commands are pointed at: no workflow
and no schedule exist afterwards).

The commands are the file arguments found in ``workers/cli``: ``validate``, ``deploy``,
``chaos run`` (and ``--dry-run``), ``chaos schedule``, ``soak start``, ``soak schedule``,
``load``, ``slo rules``, ``analyse --spec``, ``codec rotate`` (the keyring) and
``codec-server --token-file`` / ``--keyring``. ``load`` and ``soak`` report on stdout,
the others on stderr: either way the whole output is that one line. (There is no ``chaos plan`` command: the
plan is ``chaos run --dry-run``.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

BINARY = b"\x7fELF\x02\x01\x01\x00\x00\x00service: demo\x00\x00\xff\x00"
NOT_UTF8 = "service: d\u00e9mo\nenvironment: dev\n".encode("latin-1") + b"\xff\xfe\n"

# command line with {f} where the file goes
COMMANDS: dict[str, list[str]] = {
    "validate": ["validate", "{f}"],
    "deploy": ["deploy", "{f}"],
    "deploy --no-wait": ["deploy", "{f}", "--no-wait"],
    "chaos run": ["chaos", "run", "{f}"],
    "chaos run --dry-run": ["chaos", "run", "{f}", "--dry-run"],
    "chaos schedule": ["chaos", "schedule", "{f}", "--cron", "0 3 * * *"],
    "soak start": ["soak", "start", "{f}"],
    "soak schedule": ["soak", "schedule", "{f}", "--cron", "0 2 * * *"],
    "load": ["load", "{f}"],
    "slo rules": ["slo", "rules", "{f}"],
    "analyse --spec": [
        "analyse",
        *("--service", "demo", "--env", "dev", "--canary", "v2", "--baseline", "v1"),
        *("--spec", "{f}", "--duration", "1s"),
    ],
    "codec rotate": ["codec", "rotate", "{f}", "--id", "k2"],
    "codec-server --token-file": [
        *("codec-server", "--token-file", "{f}", "--keyring", "{ring}", "--port", "1"),
    ],
    "codec-server --keyring": ["codec-server", "--token-file", "{ok}", "--keyring", "{f}"],
}
KINDS = {"binary": BINARY, "non-utf8": NOT_UTF8}


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "200"},
        timeout=60,
        cwd=ROOT,
    )


async def _started(client: Any) -> list[str]:
    runs = [w.id async for w in client.list_workflows("")]
    schedules = [s.id async for s in await client.list_schedules()]
    return runs + schedules


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_bad_file_exit_2_one_line_nothing_started(
    dev_env: Any, tmp_path: Path, command: str, kind: str
) -> None:
    path = tmp_path / f"input-{kind}.yaml"
    path.write_bytes(KINDS[kind])
    env = {
        "CODE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "CODE_TASK_QUEUE": f"bin-{kind}",
        "CODE_STATE_DIR": str(tmp_path / "state"),
        # an agent address nothing listens on: a command that got past its file would fail
        "CODE_AGENT_URL": "http://127.0.0.1:9",
    }
    ring, ok = tmp_path / "ring.json", tmp_path / "token.txt"
    assert run_cli(["codec", "keygen", str(ring)], env).returncode == 0
    ok.write_text("a-token-of-sufficient-length-0123456789\n")
    before = await _started(dev_env.client)
    subst = {"{f}": str(path), "{ring}": str(ring), "{ok}": str(ok)}
    args = [subst.get(a, a) for a in COMMANDS[command]]
    proc = run_cli(args, env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, (command, proc.returncode, out)
    assert "Traceback" not in out, out
    # one line in all (some commands report on stdout, most on stderr)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, (command, out)
    reason = lines[0]
    assert reason.startswith("error:"), reason
    assert str(path) in reason or path.name in reason, reason
    expected = "binary" if kind == "binary" else "UTF-8"
    assert expected.lower() in reason.lower(), reason
    assert await _started(dev_env.client) == before
