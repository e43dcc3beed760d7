"""A real Prometheus (apt ``prometheus``) for analysis tests: scrapes the given
loopback targets every second; ``stop()``/``start()`` simulate an outage. A missing
binary or a server that does not come up goes through ``require_server`` (fails when
``CI=true``, skips locally)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port, require_server, stop_process, wait_until

CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: code-agent
    scrape_interval: 1s
    static_configs:
      - targets: [{targets}]
"""


@dataclass
class PromServer:
    root: Path
    targets: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PromServer:
        exe = shutil.which("prometheus")
        if exe is None:
            require_server("prometheus", "binary not found (apt-get install -y prometheus)")
        cfg = self.root / "prometheus.yml"
        cfg.write_text(CONFIG.format(targets=", ".join(f'"{t}"' for t in self.targets)))
        log = (self.root / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:  # noqa: S310
                return bool(r.status == 200)

        try:
            wait_until(ready, 30, "prometheus", self.proc)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            tail = (self.root / "prometheus.log").read_text(errors="replace")[-1500:]
            require_server("prometheus", f"{exc}; log: {tail}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def wait_for_series(self, selector: str, timeout: float = 20) -> None:
        import json
        import urllib.parse

        def has() -> bool:
            q = urllib.parse.urlencode({"query": selector})
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=2) as r:  # noqa: S310
                return bool(json.load(r)["data"]["result"])

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if has():
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"prometheus has no {selector} after {timeout}s")
