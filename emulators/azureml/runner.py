"""Running command jobs: a bounded pool of threads, each job a child process in its own process group.

Status moves NotStarted -> Queued -> Starting -> Preparing (inputs downloaded) -> Running (the command)
-> Finalizing (outputs uploaded) -> Completed, or Failed / Canceled. Every change is written to the
store first, so a restart finds jobs it cut off and ends them Failed (an infrastructure error).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from .errors import BadRequest, InputError
from .storage import BlobPlace, download, resolve_uri, upload_folder

log = logging.getLogger("emulators.azureml.jobs")
TERMINAL = ("Completed", "Failed", "Canceled")
STARTED = ("Starting", "Preparing", "Running", "Finalizing", "CancelRequested")
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
REPO = Path(__file__).resolve().parents[2]


class JobRunner:
    """Queue of job keys and `workers` threads; processes tracked by job key for cancel."""

    def __init__(self, ctx, workers: int):
        self.ctx = ctx
        self.workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._procs: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, name=f"job-worker-{i}", daemon=True)
                         for i in range(workers)]

    def start(self) -> None:
        self._recover()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            _kill_group(proc)

    # --- state ---------------------------------------------------------------------------

    def _set(self, key: str, status: str, **changes) -> dict | None:
        def change(doc: dict) -> dict | None:
            props = doc["properties"]
            if props["status"] in TERMINAL:
                return None
            props["status"] = status
            props.update({k: v for k, v in changes.items() if not k.startswith("_")})
            doc.update({k: v for k, v in changes.items() if k.startswith("_")})
            doc.setdefault("_history", []).append([status, time.time()])
            return doc
        doc = self.ctx.store.update("job", key, change)
        if doc is not None and doc["properties"]["status"] == status:
            self.ctx.tracking.job_status(doc)
        return doc

    def _recover(self) -> None:
        """Jobs a restart cut off end Failed (infrastructure); jobs that never started are queued again."""
        for key, doc in self.ctx.store.all("job"):
            status = doc["properties"]["status"]
            if status in STARTED:
                self._set(key, "Failed", _error={
                    "code": "ServiceRestarted", "category": "SystemError",
                    "message": f"Infrastructure error: the job was interrupted because the service restarted "
                               f"while it was {status}; submit it again."})
            elif status in ("NotStarted", "Queued"):
                self.submit(key)

    def submit(self, key: str) -> None:
        self._set(key, "Queued")
        self._queue.put(key)

    def cancel(self, key: str) -> dict | None:
        """CancelRequested, then Canceled once the process group is gone (at once if it never started)."""
        doc = self.ctx.store.get("job", key)
        if doc is None or doc["properties"]["status"] in TERMINAL:
            return doc
        with self._lock:
            self._cancelled.add(key)
            proc = self._procs.get(key)
        if proc is None and doc["properties"]["status"] in ("NotStarted", "Queued"):
            return self._set(key, "Canceled")
        self._set(key, "CancelRequested")
        if proc is not None:
            _kill_group(proc)
        return self.ctx.store.get("job", key)

    # --- running ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            key = self._queue.get()
            if key is None:
                return
            try:
                self._run(key)
            except Exception as e:  # never lose a job: it ends with a reason
                log.exception("job %s crashed the runner", key)
                self._set(key, "Failed", _error={"code": "SystemError", "category": "SystemError",
                                                 "message": f"Infrastructure error: {type(e).__name__}: {e}"})
            finally:
                with self._lock:
                    self._procs.pop(key, None)
                    self._cancelled.discard(key)

    def _stopped(self, key: str) -> bool:
        with self._lock:
            if key not in self._cancelled:
                return False
        self._set(key, "Canceled")
        return True

    def _run(self, key: str) -> None:
        doc = self.ctx.store.get("job", key)
        if doc is None or doc["properties"]["status"] in TERMINAL or self._stopped(key):
            return
        faults = self.ctx.faults.take_job()
        self._set(key, "Starting", startTimeUtc=_now())
        w = self.ctx.config.workspace(*doc["_ws"])
        props = doc["properties"]
        folder = self.ctx.data_dir / "jobs" / doc["name"]
        shutil.rmtree(folder, ignore_errors=True)
        logs = folder / "user_logs"
        logs.mkdir(parents=True)
        log_file = logs / "std_log.txt"

        self._set(key, "Preparing")
        try:
            paths = self._inputs(w, props.get("inputs") or {}, folder / "inputs")
        except (InputError, BadRequest) as e:
            self._set(key, "Failed", _error={"code": "UserError", "category": "UserError",
                                             "message": f"Input could not be prepared: {e}"})
            return
        outputs = {n: folder / "outputs" / n for n in (props.get("outputs") or {})}
        for path in outputs.values():
            path.mkdir(parents=True, exist_ok=True)
        command = PLACEHOLDER.sub(lambda m: shlex.quote(str(paths[m.group(2)] if m.group(1) == "inputs"
                                                            else outputs[m.group(2)])), props["command"])
        if self._stopped(key):
            return

        delay = faults.get("delay_seconds", 0)
        proc = self._spawn(doc, w, command, log_file, delay)
        with self._lock:
            self._procs[key] = proc
        if self._stopped(key):
            _kill_group(proc)
            return
        self._set(key, "Running")
        code = proc.wait()
        with self._lock:
            self._procs.pop(key, None)
        if self._stopped(key):
            return
        if faults.get("fail_details"):
            self._fail(key, faults["fail_details"], log_file, "SystemError")
            return
        if code != 0:
            self._fail(key, f"The command exited with code {code}.", log_file, "UserError")
            return

        self._set(key, "Finalizing")
        try:
            for name, path in outputs.items():
                upload_folder(path, self._output_place(w, doc["name"], name))
        except Exception as e:  # noqa: BLE001 - storage trouble is the service's, reported as such
            self._set(key, "Failed", _error={"code": "SystemError", "category": "SystemError",
                                             "message": f"Infrastructure error: outputs could not be uploaded: {e}"})
            return
        self._set(key, "Completed", endTimeUtc=_now())

    def _fail(self, key: str, message: str, log_file: Path, category: str) -> None:
        tail = _tail(log_file, self.ctx.config.max_log_lines)
        self._set(key, "Failed", endTimeUtc=_now(), _error={
            "code": category, "category": category,
            "message": message + (f"\nLast lines of user_logs/std_log.txt:\n{tail}" if tail else "")})

    def _output_place(self, w, job: str, name: str) -> BlobPlace:
        return BlobPlace(w.datastores[w.default_datastore], f"azureml/{job}/{name}",
                         self.ctx.config.storage.connection_string)

    def _inputs(self, w, inputs: dict, root: Path) -> dict[str, str]:
        """Each input as the text its placeholder becomes: literals as given, data and models downloaded."""
        from .assets import parse_asset_ref

        paths: dict[str, str] = {}
        for name, spec in inputs.items():
            kind = spec.get("jobInputType", "uri_folder")
            if kind == "literal":
                paths[name] = str(spec.get("value", ""))
                continue
            uri = spec.get("uri") or ""
            if kind in ("custom_model", "mlflow_model", "triton_model") and not uri.startswith(("azureml://",
                                                                                                 "http")):
                model_name, version = parse_asset_ref(uri, "models")
                from .assets import asset_version
                uri = asset_version(self.ctx, w, "models", model_name, version)["properties"]["modelUri"]
            place = resolve_uri(self.ctx, w, uri)
            folder = kind != "uri_file"
            paths[name] = str(download(place, root / name, folder=folder))
        return paths

    def _spawn(self, doc: dict, w, command: str, log_file: Path, delay: float) -> subprocess.Popen:
        code_dir = self.code_folder(w, doc["properties"].get("codeId"))
        # `python` in the command is the configured interpreter: its folder first on PATH (a venv stays a venv)
        bin_dir = Path(self.ctx.config.job_python or sys.executable).parent
        env = {**os.environ,
               **{str(k): str(v) for k, v in (doc["properties"].get("environmentVariables") or {}).items()},
               "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
               "MLFLOW_TRACKING_URI": self.ctx.tracking_uri(w),
               "MLFLOW_RUN_ID": doc["name"], "AZUREML_RUN_ID": doc["name"],
               "MLFLOW_EXPERIMENT_NAME": doc["properties"].get("experimentName") or "Default",
               "MLFLOW_TRACKING_TOKEN": self.ctx.config.token,
               "PYTHONUNBUFFERED": "1"}
        if self.ctx.tls is not None:
            env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(self.ctx.tls.ca)
        full = f"sleep {delay:g} && {command}" if delay else command
        with log_file.open("ab") as out:
            return subprocess.Popen(["/bin/sh", "-c", full], cwd=code_dir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def code_folder(self, w, code_id: str | None) -> Path:
        """The local folder the config maps a code asset to (the job's working directory)."""
        if not code_id:
            return self.ctx.data_dir
        from .assets import parse_asset_ref
        name, _ = parse_asset_ref(code_id, "codes")
        folder = w.code.get(name)
        if folder is None:
            raise BadRequest(f"The code asset '{name}' is not configured in workspace '{w.name}' (the emulator maps "
                             "code names to local folders in its config; uploading code is not emulated).",
                             code="InvalidCodeAsset")
        return folder


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            return "\n".join(deque(f.read().decode("utf-8", "replace").splitlines(), maxlen=lines))
    except OSError:
        return ""


def _now() -> str:
    from .web import now_iso
    return now_iso()
