"""What the emulator costs: a BES training job vs. the same scikit-learn fit called directly, and RRS latency.

Run: `.venv/bin/python benchmarks/emulator_bench.py [--rows 1000000] [--learner logistic_regression]`.

It generates a binary dataset (18 numeric + 2 categorical features), starts its own Azurite and
emulators.studio (`devhost.world`), uploads the CSV, trains it through BES (submit, start, poll)
and, in a fresh child process, fits the same pipeline directly (read CSV, hold-out split, fit).
The job's peak RSS comes from the emulator's `/_debug/jobs/{id}` route (the job process's
ru_maxrss); the emulator's process tree is also sampled with psutil while the job runs. Then it
deploys the trained model to a new endpoint (PUT + PATCH, management API) and times RRS requests
of 1 row and of 1,000 rows (bounded loops). It prints one table and stops what it started.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

WORKSPACE = "be9c4b3a2f1e4d5c8b7a69584736251a"
TOKEN = "bench-workspace-token"
TRAIN_SERVICE, TRAIN_KEY = "bench-train", "bench-train-key"
PREDICT_SERVICE, PREDICT_KEY = "bench-predict", "bench-predict-key"
TRAINED_MODEL = "Bench Model [trained model]"
LABEL = "label"
NUMERIC = [f"f{i:02d}" for i in range(18)]
CATEGORICAL = ["region", "plan"]
API = {"api-version": "2.0"}


# ----------------------------------------------------------------------------- data


def generate(rows: int, path: Path, seed: int = 0) -> None:
    """A learnable binary dataset written in chunks (the generator itself stays small)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=len(NUMERIC))
    chunk = 200_000
    with path.open("w", newline="") as out:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, len(NUMERIC)))
            df = pd.DataFrame(x, columns=NUMERIC)
            df["region"] = rng.choice(["north", "south", "east", "west"], size=n)
            df["plan"] = rng.choice([f"plan-{k}" for k in range(12)], size=n)
            logit = x @ weights + (df["region"] == "north") * 1.0 + rng.normal(size=n)
            df[LABEL] = np.where(logit > 0, "yes", "no")
            df.to_csv(out, index=False, header=start == 0, float_format="%.6g")


def sample_rows(path: Path, n: int) -> tuple[list[str], list[list[str]]]:
    """The first n data rows as strings, without the label: an RRS input table."""
    df = pd.read_csv(path, nrows=n, dtype=str).drop(columns=[LABEL])
    return list(df.columns), df.values.tolist()


# ----------------------------------------------------------------------------- direct fit (child process)


def direct_fit(path: str, learner: str, holdout: float, seed: int) -> dict:
    """The same pipeline scikit-learn would fit without the emulator: read, split, fit. Runs in a fresh child."""
    import resource

    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    estimators = {
        "logistic_regression": lambda: LogisticRegression(max_iter=1000, random_state=seed),
        "boosted_trees": lambda: HistGradientBoostingClassifier(random_state=seed),
        "random_forest": lambda: RandomForestClassifier(random_state=seed),
    }
    started = time.perf_counter()
    df = pd.read_csv(path)
    y = df.pop(LABEL).to_numpy()
    x_train, _, y_train, _ = train_test_split(df, y, test_size=holdout, stratify=y, random_state=seed)
    estimator = estimators[learner]()
    dense = isinstance(estimator, HistGradientBoostingClassifier)
    prepare = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler(copy=False))]), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ],
        sparse_threshold=0.0 if dense else 0.3,
    )
    read_split = time.perf_counter() - started
    Pipeline([("prepare", prepare), ("learner", estimator)]).fit(x_train, y_train)
    return {
        "seconds": time.perf_counter() - started,
        "read_split_seconds": read_split,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def run_direct(path: Path, learner: str, holdout: float, seed: int) -> dict:
    """direct_fit in a fresh interpreter, so its peak RSS is its own."""
    code = (
        "import json, sys; sys.path.insert(0, %r); from benchmarks.emulator_bench import direct_fit; "
        "print(json.dumps(direct_fit(%r, %r, %r, %r)))" % (str(REPO), str(path), learner, holdout, seed)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the emulator world


def workspace_config(directory: Path, initial_model: Path, learner: str, connection_string: str) -> Path:
    """One training service (the recipe under test) and one predictive service, in H1's config format."""
    config = {
        "storage": {"connection_string": connection_string},
        "workspaces": [
            {
                "id": WORKSPACE,
                "token": TOKEN,
                "training_services": [
                    {
                        "id": TRAIN_SERVICE,
                        "api_key": TRAIN_KEY,
                        "recipe": {"task": "binary", "label": LABEL, "learner": learner, "holdout": 0.25, "seed": 42},
                    }
                ],
                "predictive_services": [
                    {
                        "id": PREDICT_SERVICE,
                        "api_key": PREDICT_KEY,
                        "trained_model": TRAINED_MODEL,
                        "initial_model": str(initial_model),
                    }
                ],
            }
        ],
    }
    path = directory / "workspace.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def initial_model(path: Path, directory: Path) -> Path:
    """A small model of the same schema for the predictive service to start with."""
    from emulators.training.training import Recipe, train

    head = pd.read_csv(path, nrows=2000).to_csv(index=False).encode()
    model = directory / "initial.ilearner"
    model.write_bytes(train(head, Recipe("binary", LABEL, "logistic_regression")).model)
    return model


@dataclass
class TreeSampler:
    """Samples the RSS of a process and its descendants until stopped; keeps the maximum."""

    pid: int
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "TreeSampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        root = psutil.Process(self.pid)
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)


def bes_job(url: str, blobs, location: str, out_container: str) -> dict:
    """Submit, start and poll one job; returns client-seen seconds and the final status."""
    base = f"{url}/workspaces/{WORKSPACE}/services/{TRAIN_SERVICE}/jobs"
    auth = {"Authorization": f"Bearer {TRAIN_KEY}"}
    body = {
        "Inputs": {"input1": blobs.connection_reference(location)},
        "Outputs": {
            "output1": blobs.connection_reference(f"{out_container}/model.ilearner"),
            "output2": blobs.connection_reference(f"{out_container}/evaluation.csv"),
        },
    }
    started = time.perf_counter()
    r = requests.post(base, params=API, json=body, headers=auth, timeout=60)
    r.raise_for_status()
    job_id = r.json()
    requests.post(f"{base}/{job_id}/start", params=API, headers=auth, timeout=60).raise_for_status()
    delay = 0.1
    while True:
        status = requests.get(f"{base}/{job_id}", params=API, headers=auth, timeout=60).json()
        if status["StatusCode"] in ("Finished", "Failed", "Cancelled", 2, 3, 4):
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)  # fine-grained: the wait is what is measured
    seconds = time.perf_counter() - started
    if status["StatusCode"] not in ("Finished", 4):
        raise RuntimeError(f"the job ended {status['StatusCode']}: {status['Details']}")
    debug = requests.get(f"{url}/_debug/jobs/{job_id}", timeout=30).json()
    return {"seconds": seconds, "status": status, "debug": debug}


def deploy(url: str, model_ref: dict) -> tuple[str, str]:
    """PUT a new endpoint and PATCH the trained model onto it; returns (scoring URL, key)."""
    endpoint = f"{url}/workspaces/{WORKSPACE}/webservices/{PREDICT_SERVICE}/endpoints/bench"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.put(endpoint, json={"Description": "benchmark", "ThrottleLevel": "High"}, headers=auth, timeout=30)
    r.raise_for_status()
    wire = r.json()
    patch = {"Resources": [{"Name": TRAINED_MODEL, "Location": model_ref}]}
    requests.patch(endpoint, json=patch, headers=auth, timeout=120).raise_for_status()
    return wire["ApiLocation"] + "/execute?api-version=2.0&details=true", wire["PrimaryKey"]


def rrs_latency(score_url: str, key: str, names: list[str], rows: list[list[str]], requests_count: int) -> dict:
    """Sequential requests on one connection: p50/p99 latency (ms) and requests per second."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}
    body = {"Inputs": {"input1": {"ColumnNames": names, "Values": rows}}, "GlobalParameters": {}}
    for _ in range(3):  # warm-up: the model is loaded into the server's cache on first use
        session.post(score_url, json=body, headers=headers, timeout=60).raise_for_status()
    latencies = []
    started = time.perf_counter()
    for _ in range(requests_count):
        t0 = time.perf_counter()
        r = session.post(score_url, json=body, headers=headers, timeout=60)
        latencies.append(time.perf_counter() - t0)
        r.raise_for_status()
    elapsed = time.perf_counter() - started
    returned = len(r.json()["Results"]["output1"]["value"]["Values"])
    assert returned == len(rows), (returned, len(rows))
    latencies.sort()
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))],
        "rps": requests_count / elapsed,
        "requests": requests_count,
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Generate, measure direct and through the emulator, print the table, stop what was started."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows (default 1,000,000)")
    parser.add_argument("--learner", default="logistic_regression",
                        choices=["logistic_regression", "boosted_trees", "random_forest"])
    parser.add_argument("--small-requests", type=int, default=200, help="1-row RRS requests (default 200)")
    parser.add_argument("--large-requests", type=int, default=50, help="1,000-row RRS requests (default 50)")
    args = parser.parse_args(argv)

    from devhost.world import Azurite, Emulator
    from tests.emulator_world import Blobs

    work = Path(tempfile.mkdtemp(prefix="emulator-bench-"))
    data = work / "train.csv"
    t0 = time.perf_counter()
    generate(args.rows, data)
    size_mb = data.stat().st_size / 2**20
    print(f"generated {args.rows:,} rows x {len(NUMERIC) + len(CATEGORICAL) + 1} columns ({size_mb:.0f} MiB) "
          f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    # The direct fit runs before and after the emulator's job; on a shared machine the two bracket its load.
    direct = [run_direct(data, args.learner, 0.25, 42)]
    print(f"direct fit: {direct[0]['seconds']:.1f}s", file=sys.stderr)
    loads = [os.getloadavg()[0]]
    azurite = emulator = None
    try:
        azurite = Azurite.start()
        blobs = Blobs(azurite.connection_string)
        config = workspace_config(work, initial_model(data, work), args.learner, azurite.connection_string)
        emulator = Emulator.start(config, work / "emulator-data", faults=True)
        container = blobs.container("bench")
        t0 = time.perf_counter()
        location = blobs.upload(container, "train.csv", data.read_bytes())
        upload_seconds = time.perf_counter() - t0
        with TreeSampler(emulator.process.pid) as tree:
            job = bes_job(emulator.url, blobs, location, container)
        print(f"BES job: {job['seconds']:.1f}s", file=sys.stderr)
        evaluation = requests.get(_sas_url(job["status"]["Results"]["output2"]), timeout=60).text
        score_url, key = deploy(emulator.url, job["status"]["Results"]["output1"])
        names, rows = sample_rows(data, 1000)
        small = rrs_latency(score_url, key, names, rows[:1], args.small_requests)
        large = rrs_latency(score_url, key, names, rows, args.large_requests)
    finally:
        if emulator:
            emulator.stop()
        if azurite:
            azurite.stop()
    loads.append(os.getloadavg()[0])
    direct.append(run_direct(data, args.learner, 0.25, 42))
    shutil.rmtree(work, ignore_errors=True)
    print_table(args, size_mb, direct, upload_seconds, job, tree.peak, evaluation, small, large, loads)
    return 0


def _sas_url(ref: dict) -> str:
    return ref["BaseLocation"] + ref["RelativeLocation"] + ref["SasBlobToken"]


def print_table(args, size_mb: float, direct: list[dict], upload_seconds: float, job: dict, tree_peak: int,
                evaluation: str, small: dict, large: dict, loads: list[float]) -> None:
    """One row per measure; the overhead ratio uses the mean of the two direct fits."""
    debug = job["debug"]
    header, first = list(csv.reader(io.StringIO(evaluation)))[:2]
    metrics = dict(zip(header, first))
    mib = 2**20
    direct_mean = statistics.mean(d["seconds"] for d in direct)
    columns = len(NUMERIC) + len(CATEGORICAL) + 1
    table = [
        ("dataset", f"{args.rows:,} rows x {columns} cols ({len(NUMERIC)} numeric, {len(CATEGORICAL)} categorical, "
                    f"label), {size_mb:.0f} MiB CSV"),
        ("learner", f"{args.learner} (binary, holdout 0.25, seed 42)"),
        ("direct scikit-learn: read + split + fit", " / ".join(f"{d['seconds']:.2f} s" for d in direct)
         + f" (before / after; read+split {direct[0]['read_split_seconds']:.2f} s)"),
        ("direct scikit-learn: peak RSS", f"{max(d['peak_rss_bytes'] for d in direct) / mib:.0f} MiB"),
        ("upload CSV to Azurite (not in job time)", f"{upload_seconds:.2f} s"),
        ("BES job: submit -> Finished (client)", f"{job['seconds']:.2f} s"),
        ("BES job: queued -> started -> ended (server)", _server_times(debug)),
        ("BES job: train() inside the job", f"{debug.get('train_seconds', float('nan')):.2f} s"),
        ("overhead ratio (job / mean direct)", f"{job['seconds'] / direct_mean:.2f}x "
                                               f"(train() alone {debug.get('train_seconds', 0) / direct_mean:.2f}x)"),
        ("job process peak RSS (/_debug)", f"{debug.get('peak_rss_bytes', 0) / mib:.0f} MiB "
                                           f"(at start {debug.get('start_rss_bytes', 0) / mib:.0f} MiB)"),
        ("emulator process tree peak RSS (psutil)", f"{tree_peak / mib:.0f} MiB"),
        ("hold-out AUC / Accuracy (evaluation row 1)", f"{metrics.get('AUC', '?')} / {metrics.get('Accuracy', '?')}"),
        (f"RRS 1 row x {small['requests']}", _latency(small)),
        (f"RRS 1,000 rows x {large['requests']}", _latency(large) + f" ({large['rps'] * 1000:,.0f} rows/s)"),
        ("1-min load average (before / after)", " / ".join(f"{x:.1f}" for x in loads) + f" on {os.cpu_count()} cores"),
    ]
    width = max(len(k) for k, _ in table)
    print(f"{'measure'.ljust(width)} | value")
    print(f"{'-' * width}-|-{'-' * 40}")
    for name, value in table:
        print(f"{name.ljust(width)} | {value}")


def _server_times(debug: dict) -> str:
    """The emulator's own timestamps: waiting for a worker, then the job process (download, train, upload)."""
    try:
        waited = debug["started_at"] - debug["queued_at"]
        ran = debug["ended_at"] - debug["started_at"]
    except (KeyError, TypeError):
        return "n/a"
    return f"waited {waited:.2f} s, ran {ran:.2f} s"


def _latency(result: dict) -> str:
    return f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, {result['rps']:.1f} req/s"


if __name__ == "__main__":
    raise SystemExit(main())
