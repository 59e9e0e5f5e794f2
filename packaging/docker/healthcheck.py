"""The container's health check: exit 0 when ``GET /healthz`` answers 200, else 1.

``/healthz`` needs no token and answers 200 while the model is idle, loading or ready,
503 once loading failed. Only the standard library: the image has no curl.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8765/healthz"


def main(url: str = DEFAULT_URL, timeout_s: float = 5.0) -> int:
    """Probe ``url`` once; 0 when healthy."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"healthcheck: {url}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL))
