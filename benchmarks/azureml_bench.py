"""What emulators.azureml costs: a command job vs. the same script run directly, provisioning, scoring latency.

Run: `.venv/bin/python benchmarks/azureml_bench.py [--rows 1000000] [--requests 200]`.

It generates a binary dataset (20 columns: 17 numeric + 2 categorical features and the label; the
generator of emulator_bench.py), starts its own Azurite and emulators.azureml (`devhost.world`,
provisioning time 0), uploads the CSV and runs the shipped example training script
(examples/azureml/src/train.py) twice: directly in a child process on the local file (with
MLflow logging to the same server), and as a command job (PUT, then GET polls until Completed;
inputs downloaded from Azurite, outputs uploaded). The ratio is the service's overhead (goal <= 1.2x).
Then it registers the job's model, times a deployment PUT until its operation reports Succeeded
(which includes starting the scoring worker and its init()), and times scoring requests of 1 and
of 1,000 rows through the endpoint's scoringUri. It prints one table and stops what it started.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import requests  # noqa: E402
from azure.storage.blob import BlobServiceClient  # noqa: E402

from benchmarks.emulator_bench import LABEL, generate, sample_rows  # noqa: E402
from devhost.world import Azurite, AzureML  # noqa: E402

TOKEN = "bench-azureml-token"
SUB, RG, WS = "00000000-0000-0000-0000-00000000bbbb", "bench-rg", "bench-ws"
WS_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
SRC = REPO / "examples" / "azureml" / "src"
COMMAND = f"python train.py --data ${{{{inputs.data}}}} --label {LABEL} --model ${{{{outputs.model}}}}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="dataset rows (default 1,000,000)")
    p.add_argument("--requests", type=int, default=200, help="scoring requests per size (default 200)")
    return p.parse_args(argv)


class Client:
    """REST calls with the static token and the server's CA."""

    def __init__(self, server: AzureML):
        self.server = server
        self.session = requests.Session()
        self.session.verify = str(server.ca)
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        url = path if path.startswith("http") else f"{self.server.url}{WS_PATH}{path}"
        kw.setdefault("params", {"api-version": "2024-10-01"})
        r = self.session.request(method, url, timeout=600, verify=str(self.server.ca), **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r


def write_config(folder: Path) -> Path:
    config = {"token": TOKEN, "storage": {"connection_string": "${AZUREML_STORAGE}"}, "provisioning_seconds": 0,
              "workspaces": [{"subscription": SUB, "resource_group": RG, "name": WS,
                              "datastores": {"workspaceblobstore": "azureml", "training": "training-data"},
                              "code": {"retrain-src": str(SRC)}, "environments": ["sklearn-env"]}]}
    path = folder / "workspace.json"
    path.write_text(json.dumps(config))
    return path


def run_direct(csv_path: Path, out: Path, server: AzureML) -> float:
    """The example script run by hand on the local file (its own MLflow run on the same server)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"{server.url}/mlflow/v1.0{WS_PATH}", "MLFLOW_TRACKING_TOKEN": TOKEN,
           "MLFLOW_TRACKING_SERVER_CERT_PATH": str(server.ca), "MLFLOW_EXPERIMENT_NAME": "Default",
           "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "train.py", "--data", str(csv_path), "--label", LABEL, "--model", str(out)],
                   cwd=SRC, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_job(client: Client, name: str, uri: str) -> float:
    body = {"properties": {"jobType": "Command", "command": COMMAND, "experimentName": "bench",
                           "codeId": f"{WS_PATH}/codes/retrain-src/versions/1",
                           "environmentId": f"{WS_PATH}/environments/sklearn-env/versions/1",
                           "inputs": {"data": {"jobInputType": "uri_file", "uri": uri}},
                           "outputs": {"model": {"jobOutputType": "custom_model"}}}}
    started = time.perf_counter()
    client("PUT", f"/jobs/{name}", json=body)
    while True:
        status = client("GET", f"/jobs/{name}").json()["properties"]
        if status["status"] in ("Completed", "Failed", "Canceled"):
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if status["status"] != "Completed":
        raise RuntimeError(f"job {name} ended {status['status']}: {status.get('error')}")
    return seconds


def deploy(client: Client, model: str) -> tuple[float, str, str]:
    """Endpoint, then a deployment PUT timed until its operation reports Succeeded."""
    client("PUT", "/onlineEndpoints/bench-ep", json={"properties": {"authMode": "Key"}})
    while client("GET", "/onlineEndpoints/bench-ep").json()["properties"]["provisioningState"] != "Succeeded":
        time.sleep(0.01)
    started = time.perf_counter()
    r = client("PUT", "/onlineEndpoints/bench-ep/deployments/blue", json={
        "sku": {"capacity": 1}, "properties": {
            "model": f"{WS_PATH}/models/{model}/versions/1",
            "codeConfiguration": {"codeId": f"{WS_PATH}/codes/retrain-src/versions/1", "scoringScript": "score.py"}}})
    operation = r.headers["Azure-AsyncOperation"]
    while (status := client("GET", operation, params={}).json()["status"]) == "InProgress":
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    if status != "Succeeded":
        raise RuntimeError(f"deployment {status}")
    client("PUT", "/onlineEndpoints/bench-ep", json={"properties": {"authMode": "Key", "traffic": {"blue": 100}}})
    while client("GET", "/onlineEndpoints/bench-ep").json()["properties"]["provisioningState"] != "Succeeded":
        time.sleep(0.01)
    ep = client("GET", "/onlineEndpoints/bench-ep").json()["properties"]
    key = client("POST", "/onlineEndpoints/bench-ep/listKeys").json()["primaryKey"]
    return seconds, ep["scoringUri"], key


def latency(server: AzureML, uri: str, key: str, body: bytes, count: int) -> dict:
    session = requests.Session()
    session.verify = str(server.ca)
    post = functools.partial(session.post, verify=str(server.ca), timeout=60)  # (REQUESTS_CA_BUNDLE would win)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    post(uri, data=body, headers=headers).raise_for_status()  # warm
    times = []
    started = time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        post(uri, data=body, headers=headers).raise_for_status()
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    times.sort()
    return {"p50": statistics.median(times) * 1000, "p99": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
            "rps": count / total}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="azureml-bench-"))
    azurite = server = None
    try:
        csv_path = work / "data.csv"
        generate(args.rows, csv_path)
        size_mb = csv_path.stat().st_size / 1e6
        azurite = Azurite.start()
        server = AzureML.start(write_config(work), work / "data", workers=1, provisioning_seconds=0,
                               env={"AZUREML_STORAGE": azurite.connection_string})
        client = Client(server)
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container("training-data")
        started = time.perf_counter()
        with csv_path.open("rb") as data:
            service.get_blob_client("training-data", "bench/data.csv").upload_blob(data, max_concurrency=2)
        upload = time.perf_counter() - started

        direct = run_direct(csv_path, work / "direct-model", server)
        job = run_job(client, "bench-job", "azureml://datastores/training/paths/bench/data.csv")
        client("PUT", "/models/bench-model/versions/1",
               json={"properties": {"modelUri": "azureml://jobs/bench-job/outputs/model"}})
        provision, uri, key = deploy(client, "bench-model")
        names, rows = sample_rows(csv_path, 1000)
        one = json.dumps({"data": [dict(zip(names, rows[0]))]}).encode()
        thousand = json.dumps({"data": [dict(zip(names, r)) for r in rows]}).encode()
        small = latency(server, uri, key, one, args.requests)
        large = latency(server, uri, key, thousand, max(10, args.requests // 10))

        print(f"emulators.azureml benchmark: {args.rows:,} rows x 20 columns ({size_mb:.0f} MB CSV), "
              f"{os.cpu_count()} cores")
        print(f"{'measure':<52} {'value':>14}")
        print(f"{'upload CSV to Azurite (not in the job time)':<52} {upload:>12.2f} s")
        print(f"{'example script run directly (local file)':<52} {direct:>12.2f} s")
        print(f"{'same script as a command job (PUT -> Completed)':<52} {job:>12.2f} s")
        print(f"{'job / direct (goal <= 1.2x)':<52} {job / direct:>13.2f}x")
        print(f"{'deployment PUT -> Succeeded (provisioning 0 s)':<52} {provision:>12.2f} s")
        for label, result in (("1 row", small), ("1,000 rows", large)):
            print(f"{'score ' + label + ': p50 / p99 (ms)':<52} {result['p50']:>6.1f} / {result['p99']:.1f}")
            print(f"{'score ' + label + ': requests per second':<52} {result['rps']:>14.1f}")
        return 0
    finally:
        if server:
            server.stop()
        if azurite:
            azurite.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
