"""The local world's servers (Azurite, emulators.studio, emulators.azureml) as child processes on loopback, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class WorldError(RuntimeError):
    """A local server could not be started."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _wait_for_ports(proc: subprocess.Popen, ports: list[int], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            raise WorldError(f"process exited with {proc.returncode}; see {log}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise WorldError(f"ports {pending} not listening after {timeout:.0f}s; see {log}:\n{_tail(log)}")
        try:
            with socket.create_connection((LOOPBACK, pending[0]), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@dataclass
class Azurite:
    """Azurite (npm, pinned in package.json) with blob, queue and table services."""

    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen | None = None
    workdir: Path | None = None

    @property
    def connection_string(self) -> str:
        base = f"http://{LOOPBACK}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{DEV_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{DEV_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{DEV_ACCOUNT};"
        )

    @classmethod
    def start(cls, location: Path | None = None, ports: tuple[int, int, int] | None = None,
              timeout: float = 30) -> "Azurite":
        """In memory unless `location` is given (then data persists there)."""
        exe = REPO / "node_modules" / ".bin" / "azurite"
        if not exe.exists():
            raise WorldError(f"{exe} is missing: run ./dev setup (npm ci installs Azurite into the repo)")
        blob, queue, table = ports or (free_port(), free_port(), free_port())
        workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        args = [str(exe), "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--loose",
                "--blobHost", LOOPBACK, "--queueHost", LOOPBACK, "--tableHost", LOOPBACK,
                "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)]
        if location is None:
            args.append("--inMemoryPersistence")
        else:
            location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(location)]
        log = workdir / "azurite.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                    start_new_session=True)
        self = cls(blob, queue, table, proc, workdir)
        try:
            _wait_for_ports(proc, [blob, queue, table], timeout, log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self.process)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class _Service:
    """A local ML service (`python -m <module>`) on loopback: launched, awaited, restarted and stopped alike."""

    port: int
    config: Path
    data_dir: Path
    process: subprocess.Popen | None = None
    log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)

    module: ClassVar[str]
    log_name: ClassVar[str]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @classmethod
    def _start(cls, config: Path, data_dir: Path, port: int | None, options: list[str], env: dict[str, str] | None,
               timeout: float):
        data_dir.mkdir(parents=True, exist_ok=True)
        self = cls(port or free_port(), config, data_dir, None, data_dir / cls.log_name, env or {}, options)
        self._launch(timeout)
        return self

    @staticmethod
    def _common_options(faults: bool, workers: int | None) -> list[str]:
        return (["--enable-faults"] if faults else []) + (["--workers", str(workers)] if workers else [])

    def _healthy(self) -> bool:
        return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def _launch(self, timeout: float) -> None:
        args = [sys.executable, "-m", self.module, "--config", str(self.config), "--host", LOOPBACK,
                "--port", str(self.port), "--data-dir", str(self.data_dir), *self.options]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                            env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise WorldError(f"{self.module} exited with {self.process.returncode}:\n{_tail(self.log)}")
            try:
                if self._healthy():
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise WorldError(f"{self.module} not ready after {timeout:.0f}s:\n{_tail(self.log)}")
            time.sleep(0.1)

    def restart(self, timeout: float = 60):
        """Stop and start again on the same port and data dir (state must survive)."""
        self.stop()
        self._launch(timeout)
        return self

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class Emulator(_Service):
    """emulators.studio (`python -m emulators.studio`) serving one workspace config."""

    module: ClassVar[str] = "emulators.studio"
    log_name: ClassVar[str] = "emulator.log"

    @classmethod
    def start(cls, config: Path, data_dir: Path, port: int | None = None, faults: bool = False,
              workers: int | None = None, timeout: float = 60, env: dict[str, str] | None = None) -> "Emulator":
        return cls._start(config, data_dir, port, cls._common_options(faults, workers), env, timeout)


AZUREML_EXAMPLE_CONFIG = REPO / "examples" / "azureml" / "workspace.yaml"


@dataclass
class AzureML(_Service):
    """emulators.azureml (`python -m emulators.azureml`) over HTTPS; `ca` is the CA file clients must trust."""

    module: ClassVar[str] = "emulators.azureml"
    log_name: ClassVar[str] = "azureml.log"

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def ca(self) -> Path:
        """The generated CA certificate (use as REQUESTS_CA_BUNDLE or `verify=`)."""
        return self.data_dir / "tls" / "ca.pem"

    @classmethod
    def start(cls, config: Path = AZUREML_EXAMPLE_CONFIG, data_dir: Path | None = None, port: int | None = None,
              faults: bool = False, workers: int | None = None, provisioning_seconds: float | None = None,
              timeout: float = 60, env: dict[str, str] | None = None) -> "AzureML":
        options = cls._common_options(faults, workers)
        if provisioning_seconds is not None:
            options += ["--provisioning-seconds", str(provisioning_seconds)]
        data_dir = data_dir or Path(tempfile.mkdtemp(prefix="azureml-"))
        return cls._start(config, data_dir, port, options, env, timeout)

    def _healthy(self) -> bool:
        return self.ca.exists() and requests.get(f"{self.url}/healthz", timeout=1,
                                                 verify=str(self.ca)).status_code == 200
