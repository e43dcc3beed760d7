"""Screenshot a Temporal Web UI page with headless Chromium (apt `chromium`).

    python scripts/screenshot.py URL OUT.png [--dom OUT.html]

Uses --virtual-time-budget so the single-page app renders before the shot;
--dom also saves the rendered DOM so tests can check what the page shows."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("chromium not found: apt-get install -y chromium (make setup-test does)")


def base_args(profile: str) -> list[str]:
    return [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
        "--window-size=1500,1100",
    ]


def shoot(url: str, out: Path, dom: Path | None = None, timeout: float = 90) -> None:
    if not url.startswith(("http://127.", "http://localhost")):
        raise SystemExit(f"refusing to open {url}: only loopback pages")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [*base_args(profile), f"--screenshot={out}", url],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        if dom is not None:
            html = subprocess.run(
                [*base_args(profile), "--dump-dom", url],
                check=True,
                capture_output=True,
                timeout=timeout,
                text=True,
            ).stdout
            dom.write_text(html)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("out", type=Path)
    ap.add_argument("--dom", type=Path)
    a = ap.parse_args()
    shoot(a.url, a.out, a.dom)
    print(f"saved {a.out}" + (f" and {a.dom}" if a.dom else ""))


if __name__ == "__main__":
    sys.exit(main())
