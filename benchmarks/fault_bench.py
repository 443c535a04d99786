"""Fault suite: the whole app as separate processes under load, killed with SIGKILL at random, then its invariants.

Azurite (on-disk persistence), the Studio (classic) emulator and devhost each run as a child process. For `--seconds`
a seeded schedule uploads bursts of new data, overwrites blobs while they train, injects BES and endpoint
faults ("applied, then 503" included) and SIGKILLs a process at random moments (restarting it after a
pause). Then everything stays up until the chain converges (`--settle` seconds at most) and the table of
invariants is printed; every row above "runs" must be 0.

    ./dev bench fault_bench --seed 1
    .venv/bin/python benchmarks/fault_bench.py --seed 2 --seconds 40

Azurite persists to disk every few seconds, so a SIGKILL of Azurite can lose writes it had acknowledged
(an upload, a run row). Those are counted apart ("acknowledged uploads lost"); the app must converge anyway.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from azure.data.tables import TableServiceClient  # noqa: E402
from azure.storage.blob import BlobServiceClient  # noqa: E402

from devhost.world import LOOPBACK, Azurite, Emulator, free_port  # noqa: E402
from retrain.etags import canonical  # noqa: E402
from retrain.runs import TERMINAL, Status, run_id_for, DataRef  # noqa: E402
from tests import datasets  # noqa: E402

WS, TRAIN, PREDICT, RESOURCE = "faultws", "fault-train", "fault-predict", "Fault Model [trained model]"
WS_TOKEN, TRAIN_KEY = "fault-ws-token", "fault-train-key"
TRAINING, OUTPUTS, PREFIX = "training-data", "retrain-outputs", "retrain"
POLICY = {"rules": [{"metric": "AUC", "min": 0.5, "min_improvement": None}]}  # every good model promotes


@dataclass
class Figures:
    actions: dict[str, int] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # blob name -> last acknowledged ETag

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1


class Host:
    """devhost as a child process (`python -m devhost`), killed with SIGKILL and started again."""

    def __init__(self, root: Path, settings: dict[str, str]):
        self.port = free_port()
        self.settings = root / "local.settings.json"
        self.settings.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
        self.log = root / "devhost.log"
        self.process: subprocess.Popen | None = None

    @property
    def api(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/api"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devhost", "--script-root", str(REPO), "--settings", str(self.settings),
                 "--port", str(self.port), "--max-polling-interval", "1"],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.api}/models", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"devhost did not come up; see {self.log}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class World:
    def __init__(self, root: Path, models: int):
        self.root = root
        self.azurite = Azurite.start(location=root / "azurite")
        self.ports = (self.azurite.blob_port, self.azurite.queue_port, self.azurite.table_port)
        storage = self.azurite.connection_string
        config = {"storage": {"connection_string": storage},
                  "workspaces": [{"id": WS, "token": WS_TOKEN,
                                  "training_services": [{"id": TRAIN, "api_key": TRAIN_KEY, "name": "Fault Model",
                                                         "recipe": {"task": "binary", "label": "label",
                                                                    "learner": "logistic_regression",
                                                                    "holdout": 0.3, "seed": 7}}],
                                  "predictive_services": [{"id": PREDICT, "api_key": "k", "trained_model": RESOURCE}]}]}
        self.config = root / "workspace.json"
        self.config.write_text(json.dumps(config))
        self.emulator = Emulator.start(self.config, root / "emulator", faults=True, workers=2)
        self.models = [f"m{i}" for i in range(models)]
        self.host = Host(root, {
            "AzureWebJobsStorage": storage, "RETRAIN_STORAGE": storage, "FUNCTIONS_WORKER_RUNTIME": "python",
            "TRAINING_CONTAINER": TRAINING, "OUTPUT_CONTAINER": OUTPUTS, "RETRAIN_TABLE_PREFIX": PREFIX,
            "RETRAIN_SCHEDULE": "0 0 2 * * *", "SWEEP_SCHEDULE": "*/3 * * * * *", "SWEEP_GRACE_SECONDS": "10",
            "CHECK_INITIAL_DELAY_SECONDS": "1", "CHECK_MAX_DELAY_SECONDS": "2", "RUN_TIMEOUT_MINUTES": "10",
            "RETRAIN_SECRET_FAULT_BES_KEY": TRAIN_KEY, "RETRAIN_SECRET_FAULT_WS_TOKEN": WS_TOKEN,
            "ALLOWED_SERVICE_HOSTS": urlsplit(self.emulator.url).netloc})
        self.host.start()
        self.blobs = BlobServiceClient.from_connection_string(storage)
        self.tables = TableServiceClient.from_connection_string(storage)
        for model in self.models:
            self._register(model)
        time.sleep(6)  # Azurite writes to disk every 5 s: the set-up itself is made durable before any SIGKILL

    def endpoint_url(self, model: str) -> str:
        return f"{self.emulator.url}/workspaces/{WS}/webservices/{PREDICT}/endpoints/{model}"

    def _register(self, model: str) -> None:
        auth = {"Authorization": f"Bearer {WS_TOKEN}"}
        requests.put(self.endpoint_url(model), json={"Description": "fault suite"}, headers=auth,
                     timeout=10).raise_for_status()
        body = {"training": {"url": f"{self.emulator.url}/workspaces/{WS}/services/{TRAIN}",
                             "key_setting": "RETRAIN_SECRET_FAULT_BES_KEY"},
                "endpoints": [{"kind": "classic", "url": self.endpoint_url(model),
                               "key_setting": "RETRAIN_SECRET_FAULT_WS_TOKEN", "resource_name": RESOURCE}],
                "policy": POLICY, "data_prefix": f"{model}/"}
        requests.put(f"{self.host.api}/models/{model}", json=body, timeout=30).raise_for_status()

    # --- faults ------------------------------------------------------------------------------
    def kill_emulator(self, pause: float) -> None:
        self.emulator.process.kill()
        self.emulator.process.wait()
        time.sleep(pause)
        self.emulator = Emulator.start(self.config, self.root / "emulator", port=self.emulator.port, faults=True,
                                       workers=2)

    def kill_azurite(self, pause: float) -> None:
        self.azurite.process.kill()
        self.azurite.process.wait()
        time.sleep(pause)
        self.azurite = Azurite.start(location=self.root / "azurite", ports=self.ports)

    def kill_host(self, pause: float) -> None:
        self.host.kill()
        time.sleep(pause)
        self.host.start()

    def inject(self, **fault) -> None:
        requests.post(f"{self.emulator.url}/_admin/faults", json=fault, timeout=10)

    def upload(self, name: str, data: bytes, figures: Figures) -> None:
        client = self.blobs.get_blob_client(TRAINING, name)
        try:
            figures.uploads[name] = canonical(client.upload_blob(data, overwrite=True)["etag"])
        except Exception:  # Azurite is down: the upload was never acknowledged
            figures.count("upload refused (storage down)")

    def stop(self) -> None:
        self.host.kill()
        self.emulator.stop()
        self.azurite.stop()


def load(world: World, rng: random.Random, seconds: float, figures: Figures, *, kills: bool) -> None:
    """The seeded schedule of uploads, overwrites and faults."""
    counter = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(rng.uniform(0.2, 1.0))
        model = rng.choice(world.models)
        action = rng.choices(["upload", "burst", "overwrite", "duplicate", "patch-lost", "bes-503", "interrupt",
                              "kill-host", "kill-emulator", "kill-azurite"],
                             weights=[5, 2, 3, 2, 2, 1, 1] + ([2, 1, 1] if kills else [0, 0, 0]))[0]
        figures.count(action)
        try:
            if action in ("upload", "burst", "duplicate"):
                for _ in range(rng.randint(3, 6) if action == "burst" else 1):
                    counter += 1
                    name = f"{model}/{counter:04d} data.csv"
                    world.upload(name, datasets.binary_csv(rows=200, seed=counter, noise=0.03), figures)
                    if action == "duplicate":  # the same bytes again: a new ETag, so new data
                        world.upload(name, datasets.binary_csv(rows=200, seed=counter, noise=0.03), figures)
            elif action == "overwrite":
                mine = [n for n in figures.uploads if n.startswith(f"{model}/")]
                if mine:
                    counter += 1
                    world.upload(rng.choice(mine), datasets.binary_csv(rows=200, seed=counter, noise=0.03), figures)
            elif action == "patch-lost":
                world.inject(method="PATCH", path=f"/endpoints/{model}$", status=503, after=True)
            elif action == "bes-503":
                world.inject(method="GET", path="/jobs/[^/]+$", status=503, count=2)
            elif action == "interrupt":
                world.inject(type="fail_job", details="The job was interrupted; submit it again.")
            elif action == "kill-host":
                world.kill_host(rng.uniform(0, 2))
            elif action == "kill-emulator":
                world.kill_emulator(rng.uniform(0, 2))
            elif action == "kill-azurite":
                world.kill_azurite(rng.uniform(0, 1))
        except requests.RequestException:
            figures.count("fault not armed (service down)")


def invariants(world: World, figures: Figures) -> dict[str, int]:
    runs = list(world.tables.get_table_client(f"{PREFIX}runs").list_entities())
    models = {e["RowKey"]: e for e in world.tables.get_table_client(f"{PREFIX}models").list_entities()}
    promotions = list(world.tables.get_table_client(f"{PREFIX}promotions").list_entities())
    open_runs = [r for r in runs if Status(r["Status"]) not in TERMINAL]
    versions: dict[tuple, int] = {}
    for r in runs:
        key = (r["PartitionKey"], r["DataName"], canonical(r["DataEtag"]))
        versions[key] = versions.get(key, 0) + 1
    auth = {"Authorization": f"Bearer {WS_TOKEN}"}
    excess = served_wrong = untrained = lost = 0
    for model in world.models:
        endpoint = requests.get(world.endpoint_url(model), headers=auth, timeout=10).json()
        patches = int(endpoint.get("Version", 1)) - 1  # each applied PATCH adds one version
        promoted = sum(1 for p in promotions if p["PartitionKey"] == model and p["Reason"] != "rollback")
        excess += abs(patches - promoted)
        champion = json.loads(models[model].get("Champion") or "null")
        resource = (endpoint.get("Resources") or [{}])[0].get("Location") or {}
        served = (resource.get("BaseLocation") or "") + (resource.get("RelativeLocation") or "")
        if champion and champion["location"]["base_location"] + champion["location"]["relative_location"] != served:
            served_wrong += 1
        newest = _newest(world, model)
        if newest is not None:
            data = DataRef(TRAINING, newest.name, newest.etag, newest.size)
            row = next((r for r in runs if r["PartitionKey"] == model and r["RowKey"] == run_id_for(model, data)),
                       None)
            if row is None or row["Status"] not in (Status.PROMOTED.value, Status.REJECTED.value):
                untrained += 1
    for name, etag in figures.uploads.items():
        try:
            if canonical(world.blobs.get_blob_client(TRAINING, name).get_blob_properties().etag) != etag:
                lost += 1
        except Exception:
            lost += 1
    jobs = _jobs_started(world.root / "emulator" / "emulator.sqlite3")
    attempts = sum(int(r.get("Attempt", 1)) for r in runs if r.get("JobId") or r["Status"] in
                   (Status.EVALUATING.value, Status.PROMOTING.value, Status.PROMOTED.value, Status.REJECTED.value)
                   or r.get("JobStarted"))
    repeated_jobs = max(0, jobs - attempts)
    storage_crashed = figures.actions.get("kill-azurite", 0) > 0
    table = {"stuck runs (not terminal)": len(open_runs),
                "duplicate runs (same blob version)": sum(n - 1 for n in versions.values() if n > 1),
                "PATCHes applied - promotions x endpoints": excess,
                "newest data not trained or rejected": untrained,
                "champion != what the endpoint serves": served_wrong}
    if not storage_crashed:
        table["BES jobs started beyond run attempts"] = repeated_jobs
    table["runs"] = len(runs)
    table["acknowledged uploads lost (Azurite SIGKILL)"] = lost
    if storage_crashed:  # a run row Azurite lost is recreated, and its job may be submitted again
        table["BES jobs repeated after Azurite lost run rows"] = repeated_jobs
    return table


def _newest(world: World, model: str):
    blobs = world.blobs.get_container_client(TRAINING).list_blobs(name_starts_with=f"{model}/")
    return max(blobs, key=lambda b: (b.last_modified, b.name), default=None)


def _jobs_started(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT body FROM docs WHERE kind = 'job'").fetchall()
    finally:
        db.close()
    return sum(1 for (body,) in rows if "queued_at" in json.loads(body).get("meta", {}))


def converged(world: World) -> bool:
    try:
        runs = list(world.tables.get_table_client(f"{PREFIX}runs").list_entities())
    except Exception:
        return False
    if any(Status(r["Status"]) not in TERMINAL for r in runs):
        return False
    for model in world.models:
        newest = _newest(world, model)
        if newest is not None:
            run_id = run_id_for(model, DataRef(TRAINING, newest.name, newest.etag, newest.size))
            if not any(r["PartitionKey"] == model and r["RowKey"] == run_id for r in runs):
                return False
    return True


def run(seed: int, seconds: float = 40, settle: float = 180, models: int = 2, kills: bool = True,
        root: Path | None = None) -> tuple[dict[str, int], Figures, float]:
    """One seeded fault run; (invariants, what was done, seconds to converge)."""
    rng = random.Random(seed)
    root = root or Path(tempfile.mkdtemp(prefix=f"fault-bench-{seed}-"))
    world = World(root, models)
    figures = Figures()
    try:
        load(world, rng, seconds, figures, kills=kills)
        started = time.monotonic()
        deadline = started + settle
        while time.monotonic() < deadline and not converged(world):
            time.sleep(1)
        time.sleep(2)
        settled = time.monotonic() - started
        return invariants(world, figures), figures, settled
    finally:
        world.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seconds", type=float, default=40, help="length of the load with faults (default 40)")
    p.add_argument("--settle", type=float, default=180, help="most seconds to wait for convergence (default 180)")
    p.add_argument("--models", type=int, default=2)
    args = p.parse_args()
    figures, done, settled = run(args.seed, args.seconds, args.settle, args.models)
    print(f"fault_bench seed {args.seed}: {args.seconds:g} s of load, converged in {settled:.0f} s")
    print("  actions: " + ", ".join(f"{k} {v}" for k, v in sorted(done.actions.items())))
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
