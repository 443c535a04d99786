"""The demo: data lands, a model is retrained, evaluated, promoted or rejected, and predictions change.

`./dev demo` starts Azurite, both local ML services (emulators.studio for Studio classic, emulators.azureml
for Azure ML v2) and the Functions app (devhost). On each backend it registers a model through the app's
HTTP API, uploads three datasets into the watched container and follows each run, printing the gate's
decision and predictions after each step; the Azure ML model is promoted to an online endpoint by a
canary rollout (traffic and answers printed at each step); each backend is rolled back once. Then it
stops everything it started.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from urllib.parse import urlsplit
from contextlib import ExitStack
from pathlib import Path

import requests
from azure.storage.blob import BlobServiceClient

from .host import DevHost
from .world import AZUREML_EXAMPLE_CONFIG, REPO, AzureML, Azurite, Emulator

WS, TRAIN, PREDICT, ENDPOINT = "demo-workspace", "census-retrain", "census-predict", "census-eu"
WS_TOKEN, TRAIN_KEY = "demo-workspace-token", "demo-training-key"
RESOURCE = "Census Income Model [trained model]"
MODEL, AML_MODEL = "census", "census-aml"
AML_TOKEN, AML_ENDPOINT = "demo-azureml-token", "census-online"
AML_SUB, AML_RG, AML_WS = "00000000-0000-0000-0000-000000000000", "retrain-rg", "retrain-ws"
EDUCATION = ["HS-grad", "Some-college", "Bachelors", "Masters", "Doctorate"]
OCCUPATION = ["Sales", "Tech-support", "Craft-repair", "Exec-managerial", "Prof-specialty", "Other-service"]
PEOPLE = [  # the three people whose predictions the demo follows
    {"age": 67, "education": "HS-grad", "occupation": "Prof-specialty", "hours_per_week": 30, "capital_gain": 0},
    {"age": 45, "education": "Some-college", "occupation": "Exec-managerial", "hours_per_week": 45,
     "capital_gain": 0},
    {"age": 29, "education": "Bachelors", "occupation": "Sales", "hours_per_week": 40, "capital_gain": 0},
]
AML_ROLLOUT = {"strategy": "canary", "steps": [10, 50, 100], "dwell_seconds": 2, "retain": 1,
               "smoke_test": {"rows": PEOPLE[:1]}}
POLICY = {"rules": [{"metric": "AUC", "min": 0.75, "min_improvement": 0.0},
                    {"metric": "Accuracy", "min": 0.7, "min_improvement": None}],
          "first_run": "bounds"}


# --- data ----------------------------------------------------------------------------------

def census_csv(rows: int, seed: int, *, flip: float = 0.0, young_only: bool = False) -> bytes:
    """Census-like rows with a known income rule; `flip` corrupts labels, `young_only` biases the sample."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["age", "education", "occupation", "hours_per_week", "capital_gain", "income"])
    for _ in range(rows):
        age = rng.randint(18, 34) if young_only else rng.randint(18, 75)
        education = rng.choice(EDUCATION)
        occupation = rng.choice(OCCUPATION[:3] if young_only else OCCUPATION)
        hours = max(10, min(80, int(rng.gauss(42, 10))))
        gain = rng.choice([0] * 9 + [rng.randint(1000, 20000)])
        score = (0.06 * (age - 40) + 0.7 * EDUCATION.index(education) + 0.05 * (hours - 40)
                 + (1.2 if occupation in ("Exec-managerial", "Prof-specialty") else 0) + gain / 4000 - 1.6)
        rich = rng.random() < 1 / (1 + pow(2.718281828, -2.5 * score))
        if rng.random() < flip:
            rich = not rich
        writer.writerow([age, education, occupation, hours, gain, ">50K" if rich else "<=50K"])
    return out.getvalue().encode()


def datasets(prefix: str, seed: int) -> list[tuple[str, str, object]]:
    """The story each backend is told: a pilot (promoted), corrupted labels (rejected), the full survey."""
    return [
        (f"{prefix}/2026-01-pilot.csv", "a small pilot sample (young people, three occupations)",
         lambda: census_csv(800, seed=seed, young_only=True)),
        (f"{prefix}/2026-02-export.csv", "an export whose labels were partly corrupted (45% flipped)",
         lambda: census_csv(2000, seed=seed + 1, flip=0.45)),
        (f"{prefix}/2026-03-full.csv", "the full survey: more data, every age and occupation",
         lambda: census_csv(6000, seed=seed + 2)),
    ]


DATASETS = datasets("census", 11)
AML_DATASETS = datasets("census-aml", 21)


# --- the world -----------------------------------------------------------------------------

def emulator_config(storage: str) -> dict:
    return {
        "storage": {"connection_string": storage},
        "workspaces": [{
            "id": WS, "token": WS_TOKEN,
            "training_services": [{
                "id": TRAIN, "api_key": TRAIN_KEY, "name": "Census Income Model",
                "recipe": {"task": "binary", "label": "income", "learner": "logistic_regression",
                           "holdout": 0.25, "seed": 42}}],
            "predictive_services": [{"id": PREDICT, "api_key": "demo-predict-key", "trained_model": RESOURCE}],
        }],
    }


def app_settings(storage: str, emulator_url: str, azureml: AzureML) -> dict[str, str]:
    """The app's settings for the demo: keys by the secret rule, the local ML services on the allow-list.

    Azure AD cannot exist here: the app's ARM identity is the static token the local Azure ML service
    accepts (ARM_ACCESS_TOKEN, local only), and its CA is trusted through REQUESTS_CA_BUNDLE.
    """
    hosts = f"{urlsplit(emulator_url).netloc},{urlsplit(azureml.url).netloc}"
    return {"ALLOWED_SERVICE_HOSTS": hosts, "ARM_ACCESS_TOKEN": AML_TOKEN, "REQUESTS_CA_BUNDLE": str(azureml.ca),
            "AzureWebJobsStorage": storage, "RETRAIN_STORAGE": storage, "FUNCTIONS_WORKER_RUNTIME": "python",
            "TRAINING_CONTAINER": "training-data", "OUTPUT_CONTAINER": "retrain-outputs",
            "RETRAIN_SCHEDULE": "0 0 2 * * *", "SWEEP_SCHEDULE": "*/30 * * * * *",
            "CHECK_INITIAL_DELAY_SECONDS": "1", "CHECK_MAX_DELAY_SECONDS": "2",
            "RETRAIN_SECRET_CENSUS_BES_KEY": TRAIN_KEY, "RETRAIN_SECRET_CENSUS_ENDPOINT_KEY": WS_TOKEN}


class Demo:
    def __init__(self, emulator: Emulator, host: DevHost, storage: str):
        self.emulator, self.host = emulator, host
        self.blobs = BlobServiceClient.from_connection_string(storage)
        self.api = host.url.rstrip("/") + "/api"
        self.endpoint_url = f"{emulator.url}/workspaces/{WS}/webservices/{PREDICT}/endpoints/{ENDPOINT}"
        self.started = time.monotonic()
        self.scoring: tuple[str, str] | None = None
        self.predictions: dict[str, list[str]] = {}

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def section(self, title: str) -> None:
        self.say(f"\n== {title} " + "=" * max(0, 74 - len(title)))

    # --- steps ---------------------------------------------------------------------------
    def create_endpoint(self) -> None:
        r = requests.put(self.endpoint_url, json={"Description": "EU customers", "ThrottleLevel": "Low",
                                                  "MaxConcurrentCalls": 4},
                         headers={"Authorization": f"Bearer {WS_TOKEN}"}, timeout=10)
        r.raise_for_status()
        body = requests.get(self.endpoint_url, headers={"Authorization": f"Bearer {WS_TOKEN}"}, timeout=10).json()
        self.scoring = (body["ApiLocation"] + "/execute?api-version=2.0&details=true", body["PrimaryKey"])
        self.say(f"  endpoint {ENDPOINT!r} created on predictive service {PREDICT!r}")

    def register(self) -> None:
        definition = {
            "description": "Census income classifier, retrained whenever new survey data lands",
            "training": {"url": f"{self.emulator.url}/workspaces/{WS}/services/{TRAIN}",
                         "key_setting": "RETRAIN_SECRET_CENSUS_BES_KEY", "input": "input1",
                         "outputs": {"model": "output1", "evaluation": "output2"}},
            "endpoints": [{"kind": "classic", "url": self.endpoint_url, "key_setting": "RETRAIN_SECRET_CENSUS_ENDPOINT_KEY",
                           "resource_name": RESOURCE}],
            "policy": POLICY, "data_prefix": "census/", "schedule": True}
        r = requests.put(f"{self.api}/models/{MODEL}", json=definition, timeout=30)
        self.say(f"  PUT /api/models/{MODEL} -> {r.status_code}")
        r.raise_for_status()
        self.say("  policy: " + "; ".join(_rule_text(rule) for rule in POLICY["rules"]))

    def land(self, name: str, data: bytes, model: str = MODEL, watch=None) -> dict:
        """Upload into the watched container and follow the run the blob trigger starts."""
        self.blobs.get_blob_client("training-data", name).upload_blob(data, overwrite=True)
        rows = data.count(b"\n") - 1
        self.say(f"  uploaded training-data/{name} ({rows:,} rows, {len(data) / 1024:,.0f} KiB)")
        run = self.wait_for_run(lambda r: r["data"]["name"] == name, model=model)
        return self.follow(run["run_id"], model=model, watch=watch)

    def wait_for_run(self, match, timeout: float = 60, model: str = MODEL) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = requests.get(f"{self.api}/models/{model}/runs", timeout=10).json()["runs"]
            for run in runs:
                if match(run):
                    return run
            time.sleep(0.2)
        raise RuntimeError("the blob trigger did not start a run in time")

    def follow(self, run_id: str, timeout: float = 120, model: str = MODEL, watch=None) -> dict:
        """Print each status the run enters (and, while promoting, whatever `watch()` reports) until it ends."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = requests.get(f"{self.api}/models/{model}/runs/{run_id}", timeout=10).json()
            if not seen or seen[-1] != run["status"]:
                seen.append(run["status"])
                self.say(f"  [{time.monotonic() - self.started:6.1f}s] run {run_id[:8]} {run['status']:<17} "
                         f"{run['reason'][:90]}")
            if watch and run["status"] == "promoting":
                watch()
            if run["terminal"] or run["status"] == "awaiting_approval":
                return run
            time.sleep(0.25)
        raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f}s")

    def show_decision(self, run: dict) -> None:
        decision = run.get("decision") or {}
        basis = {"no_champion": "first model: bounds only",
                 "same_holdout": "champion re-scored on this run's hold-out (fair comparison)",
                 "champion_recorded": "champion's recorded metrics"}.get(decision.get("basis"), decision.get("basis"))
        self.say(f"  decision: {'PASS' if decision.get('passed') else 'FAIL'} ({basis})")
        for rule in decision.get("rules", []):
            champion = f"{rule['champion']:.3f}" if rule.get("champion") is not None else "-"
            challenger = f"{rule['challenger']:.3f}" if rule.get("challenger") is not None else "-"
            mark = "ok " if rule.get("passed") else "no "
            self.say(f"    {mark} {rule['metric']:<9} new {challenger}  champion {champion}")

    def predict(self, label: str) -> None:
        url, key = self.scoring
        body = {"Inputs": {"input1": {"ColumnNames": list(PEOPLE[0]), "Values": [list(p.values()) for p in PEOPLE]}},
                "GlobalParameters": {}}
        r = requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        if r.status_code != 200:
            message = r.json().get("error", {}).get("message", r.text)[:100] if r.content else r.reason
            self.say(f"  predictions {label}: none ({message})")
            return
        table = r.json()["Results"]["output1"]["value"]
        cols = table["ColumnNames"]
        scored = [(row[cols.index("Scored Labels")], float(row[cols.index("Scored Probabilities")]))
                  for row in table["Values"]]
        self.predictions[label] = [f"{lab} ({p:.2f})" for lab, p in scored]
        self.say(f"  predictions {label}: " + ", ".join(
            f"{p['age']}y {p['occupation']}: {lab} ({prob:.2f})" for p, (lab, prob) in zip(PEOPLE, scored)))

    def runs_table(self, model: str = MODEL) -> None:
        runs = requests.get(f"{self.api}/models/{model}/runs", timeout=10).json()["runs"]
        self.say(f"{'run':<10}{'data':<28}{'status':<11}{'AUC new':>8}{'AUC champ':>10}  reason")
        for run in reversed(runs):
            rules = {r["metric"]: r for r in (run.get("decision") or {}).get("rules", [])}
            auc = rules.get("AUC", {})
            fmt = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
            self.say(f"{run['run_id'][:8]:<10}{run['data']['name'][:27]:<28}{run['status']:<11}"
                     f"{fmt(auc.get('challenger')):>8}{fmt(auc.get('champion')):>10}  {run['reason'][:90]}")

    def promotions_table(self, model: str = MODEL) -> None:
        history = requests.get(f"{self.api}/models/{model}/promotions", timeout=10).json()["promotions"]
        for p in reversed(history):
            traffic = "; ".join(f"{name}: {_traffic_text(o['traffic'])}" for name, o in p["endpoints"].items()
                                if o.get("traffic"))
            self.say(f"  {p['at'][11:19]}  {p['reason']:<9} {(p['from_run'] or '(none)')[:8]:>8} -> {p['to_run'][:8]}  "
                     f"by {p['by']}" + (f"  [{traffic}]" if traffic else ""))


class AzureMLDemo:
    """The Azure ML half: a model trained by the shipped train.py, served by a managed online endpoint."""

    def __init__(self, demo: Demo, azureml: AzureML):
        self.demo, self.azureml = demo, azureml
        self.ws = f"/subscriptions/{AML_SUB}/resourceGroups/{AML_RG}/providers/Microsoft.MachineLearningServices/" \
                  f"workspaces/{AML_WS}"
        self.endpoint = f"{azureml.url}{self.ws}/onlineEndpoints/{AML_ENDPOINT}"
        self.last_traffic: dict | None = None

    def arm(self, method: str, url: str, **kw) -> requests.Response:
        return requests.request(method, url, params={"api-version": "2024-10-01"}, timeout=30,
                                headers={"Authorization": f"Bearer {AML_TOKEN}"}, **kw)

    def create_endpoint(self) -> None:
        r = self.arm("PUT", self.endpoint, json={"location": "westeurope", "properties": {"authMode": "Key"}})
        r.raise_for_status()
        deadline = time.monotonic() + 30
        while self.arm("GET", self.endpoint).json()["properties"]["provisioningState"] != "Succeeded":
            if time.monotonic() > deadline:
                raise RuntimeError("the online endpoint did not provision")
            time.sleep(0.2)
        self.demo.say(f"  online endpoint {AML_ENDPOINT!r} created (no deployment yet); answers are for: "
                      + ", ".join(f"{p['age']}y {p['occupation']}" for p in PEOPLE))

    def register(self) -> None:
        code = f"{self.ws}/codes/retrain-src/versions/1"
        definition = {
            "description": "Census income classifier on Azure ML: jobs, MLflow metrics, canary rollouts",
            "training": {"kind": "azureml", "workspace": self.azureml.url + self.ws,
                         "job": {"properties": {
                             "jobType": "Command", "experimentName": "census", "codeId": code,
                             "environmentId": f"{self.ws}/environments/sklearn-env/versions/1",
                             "computeId": f"{self.ws}/computes/cpu-cluster",
                             "command": "python train.py --data ${{inputs.data}} --label income --model "
                                        "${{outputs.model}} $[[--baseline ${{inputs.baseline}}]]",
                             "outputs": {"model": {"jobOutputType": "custom_model"}}}},
                         "data_input": "data", "baseline_input": "baseline", "model_output": "model",
                         "metrics": {"auc": "AUC", "accuracy": "Accuracy"}},
            "endpoints": [{"kind": "azureml_online", "name": "online", "url": self.endpoint, "model_name": "census",
                           "deployment": {"sku": {"name": "Default", "capacity": 1},
                                          "properties": {"instanceType": "Standard_DS3_v2",
                                                         "codeConfiguration": {"codeId": code,
                                                                               "scoringScript": "score.py"}}}}],
            "policy": POLICY, "data_prefix": "census-aml/",
            "rollout": AML_ROLLOUT}
        r = requests.put(f"{self.demo.api}/models/{AML_MODEL}", json=definition, timeout=30)
        self.demo.say(f"  PUT /api/models/{AML_MODEL} -> {r.status_code}")
        r.raise_for_status()
        self.demo.say(f"  rollout: canary {AML_ROLLOUT['steps']} with {AML_ROLLOUT['dwell_seconds']}s between steps, "
                      "a smoke test through the deployment header first, the previous deployment kept at 0%")

    def watch(self) -> None:
        """While a run promotes: print the endpoint's traffic each time it changes, and who answers."""
        props = self.arm("GET", self.endpoint).json()["properties"]
        traffic = props.get("traffic") or {}
        if traffic == self.last_traffic or not traffic:
            return
        self.last_traffic = traffic
        self.demo.say(f"    traffic {_traffic_text(traffic)}: " + self.answers(20))

    def answers(self, requests_count: int) -> str:
        """`requests_count` calls to the scoring URI (no deployment named): how many each deployment answered, and what."""
        props = self.arm("GET", self.endpoint).json()["properties"]
        key = self.arm("POST", f"{self.endpoint}/listKeys").json()["primaryKey"]
        tally: dict[str, list[str]] = {}
        for _ in range(requests_count):
            r = requests.post(props["scoringUri"], json={"data": PEOPLE}, timeout=30,
                              headers={"Authorization": f"Bearer {key}"})
            if r.status_code == 200:
                tally.setdefault(r.headers.get("azureml-model-deployment", "?"), []).append(
                    ", ".join(r.json()["predictions"]))
        return "; ".join(f"{dep} answered {len(got)} ({got[0]})" for dep, got in sorted(tally.items())) or "no answers"


def _traffic_text(traffic: dict) -> str:
    return " / ".join(f"{dep} {pct}%" for dep, pct in sorted(traffic.items(), key=lambda kv: -kv[1]))


def _rule_text(rule: dict) -> str:
    parts = [f"{rule['metric']} >= {rule['min']}"]
    if rule.get("min_improvement") is not None:
        parts.append("and no worse than the champion")
    return " ".join(parts)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the world running until Ctrl+C")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a kill stops the world it started, like Ctrl+C
    work = Path(tempfile.mkdtemp(prefix="retrain-demo-"))
    started = time.monotonic()
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        print("Starting the local world (Azurite, emulators.studio, emulators.azureml, devhost)...", flush=True)
        azurite = Azurite.start()
        stack.callback(azurite.stop)
        config = work / "workspace.json"
        config.write_text(json.dumps(emulator_config(azurite.connection_string), indent=2))
        emulator = Emulator.start(config, work / "emulator", workers=1)
        stack.callback(emulator.stop)
        azureml = AzureML.start(AZUREML_EXAMPLE_CONFIG, work / "azureml", workers=2, provisioning_seconds=0.5,
                                env={"AZUREML_STORAGE": azurite.connection_string, "AZUREML_TOKEN": AML_TOKEN})
        stack.callback(azureml.stop)
        os.environ["REQUESTS_CA_BUNDLE"] = str(azureml.ca)  # the demo's own calls trust the local CA too
        host = DevHost("function_app", REPO, settings=app_settings(azurite.connection_string, emulator.url, azureml),
                       port=0, poll_interval=0.2, max_polling_interval=0.5)
        host.start()
        stack.callback(host.stop)
        demo = Demo(emulator, host, azurite.connection_string)
        demo.say(f"  Azurite          blob {azurite.blob_port}, queue {azurite.queue_port}, table {azurite.table_port}")
        demo.say(f"  emulators.studio  {emulator.url}  (workspace {WS!r}: BES, RRS, endpoint management)")
        demo.say(f"  emulators.azureml {azureml.url}  (workspace {AML_WS!r}: jobs, MLflow, online endpoints)")
        demo.say(f"  Functions app    {host.url}/api  ({len(host.functions)} functions via devhost)")
        demo.say(f"  Dashboard        {host.url}/api/dashboard   (OpenAPI: {host.url}/api/openapi.json)")

        demo.section("Studio (classic) 1. Register the model and its endpoint")
        demo.create_endpoint()
        demo.register()
        demo.predict("before any promotion")

        verdicts = []
        for step, (name, what, make) in enumerate(DATASETS, start=2):
            demo.section(f"Studio (classic) {step}. New data lands: {what}")
            run = demo.land(name, make())
            demo.show_decision(run)
            demo.predict(f"after run {run['run_id'][:8]} ({run['status']})")
            verdicts.append(run["status"])

        demo.section(f"Studio (classic) {len(DATASETS) + 2}. Roll back to the pilot model (one call)")
        r = requests.post(f"{demo.api}/models/{MODEL}/rollback",
                          json={"by": "demo", "note": "compare with the pilot"}, timeout=60)
        demo.say(f"  POST /api/models/{MODEL}/rollback -> {r.status_code}: "
                 f"champion is now run {r.json()['promotion']['to_run'][:8]}")
        demo.predict("after rollback")

        aml = AzureMLDemo(demo, azureml)
        demo.section("Azure ML 1. Register the model and its online endpoint")
        aml.create_endpoint()
        aml.register()
        for step, (name, what, make) in enumerate(AML_DATASETS, start=2):
            demo.section(f"Azure ML {step}. New data lands: {what}")
            run = demo.land(name, make(), model=AML_MODEL, watch=aml.watch)
            demo.show_decision(run)
            verdicts.append(run["status"])
            if run["status"] == "promoted":
                live = run["endpoints"]["online"]
                demo.say(f"  deployment {live['deployment']} serves 100%; kept at 0%: {live.get('previous') or '(none)'}")

        demo.section(f"Azure ML {len(AML_DATASETS) + 2}. Roll back by traffic (no redeploy)")
        started_rollback = time.monotonic()
        r = requests.post(f"{demo.api}/models/{AML_MODEL}/rollback", json={"by": "demo", "note": "back to the pilot"},
                          timeout=60)
        promotion = r.json()["promotion"]
        demo.say(f"  POST /api/models/{AML_MODEL}/rollback -> {r.status_code} in "
                 f"{time.monotonic() - started_rollback:.1f}s: champion is now run {promotion['to_run'][:8]}")
        aml.last_traffic = None
        aml.watch()

        demo.section("Runs (Studio classic)")
        demo.runs_table()
        demo.section("Runs (Azure ML)")
        demo.runs_table(AML_MODEL)
        demo.section("Promotion history (Studio classic)")
        demo.promotions_table()
        demo.section("Promotion history (Azure ML: deployments and traffic)")
        demo.promotions_table(AML_MODEL)
        expected = ["promoted", "rejected", "promoted"] * 2
        ok = verdicts == expected
        demo.say(f"\nDone in {time.monotonic() - started:.0f}s: {', '.join(verdicts)}"
                 + ("" if ok else f" (expected {', '.join(expected)})"))
        if args.keep:
            demo.say(f"World left running. Dashboard: {host.url}/api/dashboard\n"
                     f"CLI: RETRAIN_API_URL={host.url} ./dev retrain runs list {MODEL}\nCtrl+C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        else:
            demo.say(f"(./dev demo --keep leaves the world and the dashboard at {host.url}/api/dashboard up)")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
