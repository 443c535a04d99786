"""`python -m devhost` as a process: serves until SIGTERM, then exits 0; start-up errors exit 2 with the reason."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .devhost_testkit import make_script_root

REPO = Path(__file__).resolve().parents[2]


def _start(root: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "devhost", "--app", "sample_app", "--script-root", str(root),
                             "--port", "0", "--max-polling-interval", "0.2", *extra],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)


def _url(proc: subprocess.Popen, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError("devhost did not report its URL:\n" + "".join(seen))


def test_the_cli_serves_the_app_and_exits_0_on_sigterm(sample, tmp_path):
    root = make_script_root(tmp_path / "root")
    (root / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": sample.settings}))
    proc = _start(root)
    try:
        url = _url(proc)
        assert requests.get(f"{url}/api/models/m/runs/3", timeout=5).json()["run"] == 3
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "devhost: stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_cli_exits_2_with_the_reason_when_settings_are_bad(tmp_path):
    root = make_script_root(tmp_path / "root")
    (root / "local.settings.json").write_text('{"Values": {')
    proc = _start(root)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "devhost: error:" in err and "not valid JSON" in err
