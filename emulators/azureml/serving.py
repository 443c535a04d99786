"""Online deployments as worker processes (one per `sku.capacity` instance) running the scoring script."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path

from .assets import asset_version, parse_asset_ref
from .errors import BadRequest, InputError, NotFound
from .storage import download, resolve_uri

log = logging.getLogger("emulators.azureml.serving")
REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120


class ScoringError(Exception):
    """run() raised, or the instance died; `status` is what the caller gets."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


class Instance:
    """One worker process; one request at a time (its lock)."""

    def __init__(self, script: Path, code_dir: Path, model_dir: Path, env: dict, log_path: Path):
        self.lock = threading.Lock()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "emulators.azureml.scorer", str(script)],
                                     cwd=code_dir, env={**os.environ, **env, "AZUREML_MODEL_DIR": str(model_dir),
                                                        "PYTHONPATH": str(REPO)},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     start_new_session=True)

    def ready(self) -> str | None:
        """None once init() returned, else the reason it did not."""
        answer = self._receive()
        if answer is None:
            return "the scoring process exited during init()"
        return None if answer.get("ok") else answer.get("error", "init() failed")

    def _receive(self) -> dict | None:
        import json
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            return None
        (size,) = struct.unpack(">I", head)
        return json.loads(self.proc.stdout.read(size))

    def call(self, body: bytes):
        with self.lock:
            if self.proc.poll() is not None:
                raise ScoringError("The deployment's scoring process is not running.", 503)
            self.proc.stdin.write(struct.pack(">I", len(body)) + body)
            self.proc.stdin.flush()
            answer = self._receive()
        if answer is None:
            raise ScoringError("The deployment's scoring process exited while scoring.", 502)
        if not answer.get("ok"):
            raise ScoringError(f"The scoring script's run() failed: {answer.get('error')}")
        return answer.get("result")

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self._log.close()


def model_of(ctx, doc: dict) -> tuple[str, str, str]:
    """(name, version, modelUri) of the model a deployment references; NotFound/BadRequest if it is gone."""
    w = next(w for w in ctx.config.workspaces if w.arm_id == doc["_ws"])
    ref = doc["properties"]["model"]
    ref = ref if isinstance(ref, str) else ref.get("assetId", "")
    name, version = parse_asset_ref(ref, "models")
    model = asset_version(ctx, w, "models", name, version)
    return name, model["name"], model["properties"]["modelUri"]


class RequestLog:
    """Scoring requests, newest last (bounded): (unix time, endpoint, deployment, status)."""

    def __init__(self, size: int = 200_000):
        self._items: deque = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, endpoint: str, deployment: str, status: int) -> None:
        with self._lock:
            self._items.append((time.time(), endpoint, deployment, status))

    def between(self, endpoint: str, start: float, end: float) -> list[tuple]:
        with self._lock:
            return [r for r in self._items if r[1] == endpoint and start <= r[0] <= end]


class Serving:
    """Instances by deployment key, started when provisioning succeeds (or lazily after a restart)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self._instances: dict[str, list[Instance]] = {}
        self._cycle: dict[str, itertools.cycle] = {}
        self._lock = threading.RLock()
        self.counts: Counter = Counter()  # "<endpoint>/<deployment> served|mirrored" -> requests
        self.requests = RequestLog()  # every scoring answer, for the Azure Monitor metrics (metrics.py)

    def start(self, key: str, doc: dict) -> str | None:
        """Materialise the model, start `sku.capacity` instances, wait for init(); the error text or None."""
        w = next(w for w in self.ctx.config.workspaces if w.arm_id == doc["_ws"])
        props = doc["properties"]
        code = props.get("codeConfiguration")
        if not code:
            return ("This emulator runs deployments through a scoring script: set codeConfiguration "
                    "(codeId and scoringScript).")
        try:
            name, version, uri = model_of(self.ctx, doc)
            model_dir = self._materialise(w, name, version, uri)
            code_dir = self.ctx.runner.code_folder(w, code.get("codeId"))
        except (BadRequest, NotFound, InputError) as e:
            return f"The model cannot be loaded: {getattr(e, 'message', e)}"
        script = (code_dir / code["scoringScript"]).resolve()
        if not script.is_file() or code_dir not in script.parents:
            return f"The scoring script '{code['scoringScript']}' is not in the code folder."
        env = {str(k): str(v) for k, v in (props.get("environmentVariables") or {}).items()}
        log_path = self.ctx.data_dir / "deployments" / key.rsplit("/", 2)[-2] / f"{key.rsplit('/', 1)[-1]}.log"
        instances = [Instance(script, code_dir, model_dir, env, log_path)
                     for _ in range((doc.get("sku") or {}).get("capacity") or 1)]
        errors = [e for e in (i.ready() for i in instances) if e]
        if errors:
            for i in instances:
                i.stop()
            return errors[0]
        with self._lock:
            old = self._instances.pop(key, [])
            self._instances[key] = instances
            self._cycle[key] = itertools.cycle(instances)
        for i in old:
            i.stop()
        return None

    def _materialise(self, w, name: str, version: str, uri: str) -> Path:
        """The model's files under data_dir/models/<name>/<version>/<last path segment>/ (AZUREML_MODEL_DIR)."""
        root = self.ctx.data_dir / "models" / name / version
        done = root / ".complete"
        if done.exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        place = resolve_uri(self.ctx, w, uri)
        leaf = place.path.rstrip("/").rsplit("/", 1)[-1] or name
        try:
            download(place, root / leaf, folder=True)
        except InputError:
            download(place, root, folder=False)
        done.touch()
        return root

    def instance(self, key: str, doc: dict) -> Instance:
        with self._lock:
            if key not in self._instances:
                error = self.start(key, doc)
                if error:
                    raise ScoringError(f"The deployment cannot serve: {error}", 503)
            return next(self._cycle[key])

    def stop(self, key: str) -> None:
        with self._lock:
            instances = self._instances.pop(key, [])
            self._cycle.pop(key, None)
        for i in instances:
            i.stop()

    def stop_all(self) -> None:
        with self._lock:
            keys = list(self._instances)
        for key in keys:
            self.stop(key)
