"""The `azureml_online` kind: an Azure ML managed online endpoint, promoted by a new deployment and moving traffic.

A promotion is a state machine advanced one phase per call (the README's "Rollout state machine"):
`register` the model version from the run's job output (tagged with the run) -> `deploy` a deployment
named for the run, copying the live deployment's settings with the new model -> `provision` (read until
Succeeded, bounded) -> `smoke` (sample rows through `azureml-model-deployment`) -> `mirror` (optional)
-> `traffic` (each step PUT, read back until it matches, then a dwell watched for errors) -> `retire`
(keep `retain` earlier deployments at 0%, delete older ones) -> done. A failure after traffic moved goes
through `revert` (traffic back as it was) before the promotion fails with the reason.

Every phase reads before it writes, so a redelivered call finds the version, the deployment and the
traffic an earlier call already made, and goes on; a 409 (another operation under way) is "call
again in N seconds", never a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

from retrain.azureml.arm import KIND as AZUREML, ArmClient, Operation
from retrain.azureml.workspace import WorkspaceId
from retrain.definition_fields import http_url
from retrain.errors import PermanentServiceError, TransientServiceError
from retrain.http import RetryPolicy, redact_url, scrub, send, trim

from .base import EndpointKind, Progress, Release
from .documents import document_name
from .rollout import MAX_DEPLOYMENTS, RolloutPolicy, split

NO_CONFLICT_WAIT = RetryPolicy(attempts=1, backoff=0.0, max_backoff=0.0, budget=0.0)  # a busy 409 is a phase's wait

ENDPOINT_PATH = re.compile(r"^(?P<ws>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                           r"Microsoft\.MachineLearningServices/workspaces/[^/]+)/(?P<coll>onlineEndpoints|"
                           r"batchEndpoints)/(?P<ep>[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9])/?$", re.IGNORECASE)
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
FIELDS = frozenset({"url", "model_name", "model_type", "deployment"})
POLL = 5.0  # seconds between reads while something provisions, unless the service says otherwise
VERIFY = 2.0  # seconds between reads of traffic after a change (traffic is eventually consistent)
MAX_BUSY = 120  # 409 answers in a row (about 10 minutes) before a phase gives up
READ_ONLY = ("provisioningState",)
RUN_TAG, MODEL_TAG = "retrain.run", "retrain.model"
SERVED_HEADER = "azureml-model-deployment"


@dataclass(frozen=True)
class AzureMLEndpointSpec:
    """An online or batch endpoint by its ARM URL, and the registered model name its versions go under."""

    kind: str
    url: str  # https://<ARM host>/subscriptions/.../workspaces/{ws}/onlineEndpoints/{ep}
    model_name: str
    name: str | None = None
    model_type: str = "custom_model"
    deployment: dict | None = None  # {sku, properties} for the first deployment, when none is live to copy
    key_setting: None = None  # ARM and scoring credentials come from the app's identity and listKeys

    @property
    def label(self) -> str:
        return self.name or self.endpoint

    @property
    def endpoint(self) -> str:
        return urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def workspace(self) -> WorkspaceId:
        """The workspace, on the URL's host (the app's ARM host in Azure; the local service's host here)."""
        parts = urlsplit(self.url)
        match = ENDPOINT_PATH.match(parts.path)
        return WorkspaceId.parse(f"{parts.scheme}://{parts.netloc}{match.group('ws') if match else ''}", "url")

    @property
    def path(self) -> str:
        """The endpoint's path inside its workspace (`onlineEndpoints/<name>`)."""
        match = ENDPOINT_PATH.match(urlsplit(self.url).path)
        return f"{match.group('coll')}/{match.group('ep')}" if match else ""

    def to_json(self) -> dict:
        return {"kind": self.kind, "url": self.url, "name": self.name, "model_name": self.model_name,
                "model_type": self.model_type, "deployment": self.deployment}


def parse(kind: str, collection: str, item: dict, where: str, problems: list[str]) -> AzureMLEndpointSpec:
    url = http_url(item.get("url"), f"{where}.url", problems)
    match = ENDPOINT_PATH.match(urlsplit(url).path) if url else None
    if url and (not match or match.group("coll").lower() != collection.lower() or urlsplit(url).query):
        problems.append(f"{where}.url: the endpoint's ARM URL, https://management.azure.com/subscriptions/<sub>/"
                        f"resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws>/"
                        f"{collection}/<endpoint> (no query)")
    model_name = item.get("model_name")
    if not isinstance(model_name, str) or not MODEL_NAME.match(model_name):
        problems.append(f"{where}.model_name: the registered model's name in the workspace (letters, digits, "
                        "'-' and '_'); each promotion registers a version of it")
        model_name = ""
    model_type = item.get("model_type", "custom_model")
    if model_type not in ("custom_model", "mlflow_model", "triton_model"):
        problems.append(f"{where}.model_type: custom_model, mlflow_model or triton_model")
    deployment = item.get("deployment")
    if deployment is not None and (not isinstance(deployment, dict) or not isinstance(deployment.get("properties"), dict)):
        problems.append(f"{where}.deployment: an ARM deployment body {{\"sku\": ..., \"properties\": {{...}}}} used for "
                        "the first deployment when the endpoint has none to copy")
    if item.get("key_setting") is not None:
        problems.append(f"{where}.key_setting: Azure ML endpoints use the app's Azure AD identity, not a key")
    return AzureMLEndpointSpec(kind, url, model_name, item.get("name"), model_type if isinstance(model_type, str)
                               else "custom_model", deployment)


class Busy(Exception):
    """The endpoint or deployment is being changed by another operation; call again after `retry_after` s."""

    def __init__(self, message: str, retry_after: float | None):
        self.retry_after = retry_after
        super().__init__(message)


class Workspace:
    """The workspace's ARM client (retrain.azureml.arm) as the phases use it: a 404 is None, a busy 409 is `Busy`."""

    def __init__(self, client: ArmClient):
        self.client = client

    def get(self, path: str) -> dict | None:
        return self._busy(lambda: self.client.get(path, missing_ok=True))

    def put(self, path: str, body: dict) -> dict | None:
        """Sent without waiting; the operation to look at later (a record with its Retry-After), if any."""
        written = self._busy(lambda: self.client.put(path, body))
        if not written.operation:
            return None
        return {**written.operation.to_record(), "retry_after": written.operation.retry_after}

    def post(self, path: str) -> dict:
        return self._busy(lambda: self.client.post(path, {})).body

    def delete(self, path: str) -> None:
        self._busy(lambda: self.client.delete(path))

    def list(self, path: str) -> list[dict]:
        return self._busy(lambda: self.client.list(path))

    def operation_error(self, record: dict | None) -> str | None:
        if not record:
            return None
        status, body, _ = self.client.poll(Operation.from_record(record))
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        return error.get("message") if status in ("Failed", "Canceled") else None

    @staticmethod
    def _busy(call):
        try:
            return call()
        except (PermanentServiceError, TransientServiceError) as e:
            if e.status != 409:
                raise
            raise Busy(str(e), getattr(e, "retry_after", None)) from None


def deployment_name(run_id: str) -> str:
    """A deployment named for the run: letters and digits, starting with a letter, at most 32 characters."""
    return f"r{run_id[:12]}"


def model_version(run_id: str) -> str:
    return run_id[:16]


class AzureMLOnlineEndpoint:
    """One managed online endpoint; `promote` and `restore` advance a phase per call (see the module doc)."""

    def __init__(self, spec: AzureMLEndpointSpec, arm: Workspace, deps):
        self.spec = spec
        self.arm = arm
        self.deps = deps
        self.rollout: RolloutPolicy = deps.rollout or RolloutPolicy()
        self._recorded: dict[str, dict] = {}  # settings this call wrote to their blobs (not read back in the call)

    def __repr__(self) -> str:
        return f"AzureMLOnlineEndpoint({redact_url(self.spec.url)!r})"

    # --- what serves --------------------------------------------------------------------

    def served(self) -> str | None:
        endpoint = self._endpoint()
        traffic = (endpoint.get("properties") or {}).get("traffic") or {}
        if not traffic:
            return None
        live = max(traffic, key=lambda d: (traffic[d], d))
        dep = self.arm.get(self._dep_url(live)) or {}
        return (dep.get("properties") or {}).get("model")

    # --- promotion ----------------------------------------------------------------------

    def promote(self, release: Release, state: dict) -> Progress:
        state = dict(state)
        state.setdefault("phase", "register")
        state.setdefault("deployment", deployment_name(release.run_id))
        state.setdefault("run", release.run_id)
        try:
            return getattr(self, f"_{state['phase']}")(release, state)
        except Busy as e:
            return self._busy(state, e)

    def _busy(self, state: dict, e: Busy) -> Progress:
        state["busy"] = state.get("busy", 0) + 1
        if state["busy"] > MAX_BUSY:
            if state.get("phase") == "revert":  # traffic could not be moved back: say where it is
                return Progress(state, failed=f"{state.get('abort')}; moving traffic back failed, the endpoint "
                                              f"stayed busy ({e}): check its traffic")
            return self._abort(state, f"endpoint {self.spec.label} stayed busy with other operations: {e}")
        state["note"] = f"{self.spec.endpoint} is busy with another operation; trying again"
        return Progress(state, wait=e.retry_after if e.retry_after is not None else POLL)

    def _register(self, release: Release, state: dict) -> Progress:
        if not release.job_output and not release.model_id:
            return Progress(state, failed=f"run {release.run_id} has no Azure ML job output to deploy")
        if release.model_id:
            state["model_id"] = release.model_id
            return self._next(state, "deploy")
        version_url = f"models/{self.spec.model_name}/versions/{model_version(release.run_id)}"
        found = self.arm.get(version_url)
        if found is None:
            self.arm.put(version_url, {"properties": {
                "modelType": self.spec.model_type, "modelUri": release.job_output, "isAnonymous": False,
                "description": f"trained by retrain run {release.run_id}",
                "tags": {RUN_TAG: release.run_id, MODEL_TAG: self.spec.model_name}, "properties": {}}})
            found = self.arm.get(version_url) or {}
        tag = ((found.get("properties") or {}).get("tags") or {}).get(RUN_TAG)
        if tag not in (None, release.run_id):
            return Progress(state, failed=f"model {self.spec.model_name} version {model_version(release.run_id)} "
                                          f"already exists for another run ({tag})")
        state["model_id"] = f"{self.spec.workspace.path}/{version_url}"
        return self._next(state, "deploy")

    def _deploy(self, release: Release, state: dict) -> Progress:
        dep = state["deployment"]
        if "previous_traffic" not in state:
            self._remember_previous(state)
        existing = self.arm.get(self._dep_url(dep))
        failed = (existing or {}).get("properties", {}).get("provisioningState") in ("Failed", "Canceled")
        if existing is not None and _same_model(existing, state["model_id"]) and not failed:
            self._keep(state, "settings", _settings(existing, state["model_id"]))
            return self._next(state, "provision", started=self._now_iso())
        body = self._body(state)
        if isinstance(body, str):
            return Progress(state, failed=body)
        if existing is None:
            deployments = self._deployments()
            if len(deployments) >= MAX_DEPLOYMENTS:
                freed = self._retire_some(deployments, keep={dep, *state["previous_traffic"]}, needed=1)
                if not freed:
                    return Progress(state, failed=f"endpoint {self.spec.endpoint} has {len(deployments)} deployments, "
                                                  f"Azure's limit, and none this app made is free to delete")
                state["note"] = f"deleting {', '.join(freed)} to stay under {MAX_DEPLOYMENTS} deployments"
                return Progress(state, wait=POLL)
        self._keep(state, "settings", body)
        state["operation"] = self.arm.put(self._dep_url(dep), body)
        return self._next(state, "provision", started=self._now_iso(), wait=_poll_wait(state),
                          note=f"deployment {dep} created with model {state['model_id'].rsplit('/models/', 1)[-1]}")

    def _remember_previous(self, state: dict) -> None:
        """What serves before this promotion: the traffic, and the live deployment's settings (to copy, to restore)."""
        props = self._endpoint().get("properties") or {}
        previous = {d: v for d, v in (props.get("traffic") or {}).items() if v and d != state["deployment"]}
        state["previous_traffic"] = previous
        if previous:
            live = max(previous, key=lambda d: (previous[d], d))
            found = self.arm.get(self._dep_url(live))
            if found is not None:
                state["previous"] = live
                self._keep(state, "previous_settings", _settings(found, (found.get("properties") or {}).get("model")))

    def _body(self, state: dict) -> dict | str:
        """The new deployment: the live one's settings (SKU, capacity, environment, code, probes...) with the new model."""
        template = self._kept(state, "previous_settings") or self.spec.deployment
        if template is None:
            return (f"endpoint {self.spec.endpoint} has no live deployment to copy settings from; give the "
                    "endpoint a `deployment` ({\"sku\": ..., \"properties\": ...}) in the model definition")
        body = _settings(template, state["model_id"])
        body["tags"] = {**(body.get("tags") or {}), RUN_TAG: state["run"], MODEL_TAG: self.spec.model_name}
        return body

    def _provision(self, release: Release, state: dict) -> Progress:
        dep = state["deployment"]
        found = self.arm.get(self._dep_url(dep))
        if found is None:  # the PUT's answer was lost before it took: send it again
            return self._next(state, "deploy")
        status = (found.get("properties") or {}).get("provisioningState")
        if status == "Succeeded":
            if self.rollout.smoke_rows:
                return self._next(state, "smoke")
            return self._next(state, "mirror" if self.rollout.mirror else "traffic", step=0)
        if status in ("Failed", "Canceled"):
            reason = self._operation_error(state)
            state["phase"] = "deploy"  # a retry of the promotion sends the deployment again
            return Progress(state, failed=f"deployment {dep} of endpoint {self.spec.endpoint} failed to provision "
                                          f"({status}){reason}; traffic was not moved")
        waited = (self._now() - _parse(state["started"])).total_seconds()
        if waited > self.rollout.provisioning_timeout_seconds:
            return Progress(state, failed=f"deployment {dep} still {status} after {waited:.0f}s (the bound is "
                                          f"{self.rollout.provisioning_timeout_seconds}s); traffic was not moved")
        state["note"] = f"deployment {dep} is {status}"
        return Progress(state, wait=_poll_wait(state))

    def _smoke(self, release: Release, state: dict) -> Progress:
        dep = state["deployment"]
        problem = self._score(dep, self.rollout.smoke_body)
        if problem:
            return Progress(state, failed=f"smoke test of deployment {dep} failed: {problem}; traffic was not moved")
        state["smoke"] = f"{len(self.rollout.smoke_rows)} row(s) answered"
        return self._next(state, "mirror" if self.rollout.mirror else "traffic", step=0)

    def _mirror(self, release: Release, state: dict) -> Progress:
        dep, mirror = state["deployment"], self.rollout.mirror
        wanted = ({d: v for d, v in state["previous_traffic"].items()}, {dep: mirror.percent})
        if not state["previous_traffic"]:  # nothing live to copy from: skip to traffic
            return self._next(state, "traffic", step=0)
        if "since" not in state:
            if not self._set_traffic(state, *wanted):
                return Progress(state, wait=VERIFY)
            state["since"] = self._now_iso()
            state["note"] = f"mirroring {mirror.percent}% of live traffic to {dep} for {mirror.seconds}s"
        remaining = (_parse(state["since"]) + timedelta(seconds=mirror.seconds) - self._now()).total_seconds()
        if remaining > 0:
            return Progress(state, wait=remaining)
        problem = self._error_rate(dep, state["since"])
        if problem:
            return self._abort(state, f"while mirrored: {problem}")
        state.pop("since", None)
        return self._next(state, "traffic", step=0)

    def _traffic(self, release: Release, state: dict) -> Progress:
        dep, steps = state["deployment"], self.rollout.steps
        step = state.get("step", 0)
        percent = steps[step]
        wanted = split(dep, percent, state["previous_traffic"])
        if "since" not in state:
            if not self._set_traffic(state, wanted, {}):
                return Progress(state, wait=VERIFY)
            state["since"] = self._now_iso()
            state["traffic"] = wanted
            state["note"] = f"{dep} takes {percent}% (step {step + 1} of {len(steps)}): {_fmt(wanted)}"
        remaining = (_parse(state["since"]) + timedelta(seconds=self.rollout.dwell_seconds) - self._now()).total_seconds()
        if remaining > 0:
            return Progress(state, wait=remaining)
        if self.rollout.dwell_seconds:
            problem = self._error_rate(dep, state["since"])
            if problem:
                return self._abort(state, f"at {percent}%: {problem}")
        state.pop("since", None)
        if step + 1 < len(steps):
            state["step"] = step + 1
            return self._traffic(release, state)
        return self._next(state, "retire")

    def _retire(self, release: Release, state: dict) -> Progress:
        dep = state["deployment"]
        deployments = self._deployments()
        self._retire_some(deployments, keep={dep}, needed=None)
        state.update(changed=True, served=state["model_id"], note=f"{dep} serves 100%", busy=0)
        state["phase"] = "done"
        return Progress(state, done=True)

    def _done(self, release: Release, state: dict) -> Progress:
        return Progress(state, done=True)

    def _revert(self, release: Release, state: dict) -> Progress:
        if not self._set_traffic(state, dict(state["previous_traffic"]), {}):
            return Progress(state, wait=VERIFY)
        state["traffic"] = dict(state["previous_traffic"])
        state.update(phase="traffic", step=0)  # a retry of the promotion walks the steps again
        return Progress(state, failed=f"{state['abort']}; traffic moved back to {_fmt(state['previous_traffic'])}")

    def _abort(self, state: dict, reason: str) -> Progress:
        """Stop the rollout: traffic back to what it was (a phase of its own: it may need to wait), then fail."""
        state.update(phase="revert", abort=reason)
        state.pop("since", None)
        state.setdefault("previous_traffic", {})
        try:
            return self._revert(Release(""), state)
        except Busy as e:
            return self._busy(state, e)

    # --- rollback -----------------------------------------------------------------------

    def restore(self, release: Release, state: dict) -> Progress:
        """Traffic back to the deployment that served `release` (seconds); re-created from its settings if deleted."""
        record = dict(release.record or {})
        dep = record.get("deployment")
        if not dep:
            return Progress(state, failed=f"the promotion of run {release.run_id} left no deployment on "
                                          f"{self.spec.endpoint} to move traffic back to")
        state = dict(state, deployment=dep, model_id=record.get("model_id"))
        try:
            found = self.arm.get(self._dep_url(dep))
            if found is None:
                settings = self._kept(record, "settings")
                if not settings:
                    return Progress(state, failed=f"deployment {dep} was deleted and its settings were not recorded")
                state["operation"] = self.arm.put(self._dep_url(dep), settings)
                state["recreated"] = True
                return Progress(state, wait=1.0)
            status = (found.get("properties") or {}).get("provisioningState")
            if status in ("Failed", "Canceled"):
                return Progress(state, failed=f"deployment {dep} is {status}{self._operation_error(state)}")
            if status != "Succeeded":
                return Progress(state, wait=POLL)
            if not self._set_traffic(state, {dep: 100}, {}):
                return Progress(state, wait=VERIFY / 4)
        except Busy as e:
            return Progress(state, wait=e.retry_after if e.retry_after is not None else POLL)
        model = (found.get("properties") or {}).get("model")
        return Progress(dict(state, traffic={dep: 100}, served=model, changed=True), done=True)

    # --- plumbing -----------------------------------------------------------------------

    def _keep(self, state: dict, field: str, settings: dict) -> None:
        """Record deployment settings in a blob named for the run and endpoint (the run's row keeps the name)."""
        if self.deps.documents is None:
            state[field] = settings
            return
        name = document_name(state["run"], self.spec.label, field)
        self.deps.documents.put(name, settings)
        self._recorded[name] = settings
        state[f"{field}_blob"] = name
        state.pop(field, None)

    def _kept(self, record, field: str) -> dict | None:
        """Settings `_keep` recorded: inline (records written before they moved to blobs) or from their blob."""
        if record.get(field) is not None:
            return record[field]
        name = record.get(f"{field}_blob")
        if not name or self.deps.documents is None:
            return None
        return self._recorded[name] if name in self._recorded else self.deps.documents.get(name)

    def _set_traffic(self, state: dict, traffic: dict, mirror: dict) -> bool:
        """True once the endpoint reads back `traffic` and `mirror`; PUT them when it shows something else."""
        endpoint = self._endpoint()
        props = endpoint.get("properties") or {}
        now_traffic = {d: v for d, v in (props.get("traffic") or {}).items() if v}
        now_mirror = {d: v for d, v in (props.get("mirrorTraffic") or {}).items() if v}
        wanted_traffic = {d: v for d, v in traffic.items() if v}
        wanted_mirror = {d: v for d, v in mirror.items() if v}
        if now_traffic == wanted_traffic and now_mirror == wanted_mirror:
            if props.get("provisioningState") in (None, "Succeeded"):
                return True
            return False  # taken, still applying
        if props.get("provisioningState") in ("Creating", "Updating", "Deleting"):
            raise Busy(f"endpoint {self.spec.endpoint} is {props['provisioningState']}", POLL / 2)
        body = {"location": endpoint.get("location"), "identity": endpoint.get("identity"),
                "tags": endpoint.get("tags") or {}, "kind": endpoint.get("kind"),
                "properties": {"authMode": props.get("authMode"), "description": props.get("description"),
                               "properties": props.get("properties") or {}, "traffic": wanted_traffic,
                               "mirrorTraffic": wanted_mirror,
                               **({"publicNetworkAccess": props["publicNetworkAccess"]}
                                  if props.get("publicNetworkAccess") else {})}}
        self.arm.put(self.spec.path, {k: v for k, v in body.items() if v is not None})
        state["traffic_puts"] = state.get("traffic_puts", 0) + 1
        return False

    def _retire_some(self, deployments: list[dict], *, keep: set[str], needed: int | None) -> list[str]:
        """Delete deployments this app made that take no traffic, beyond the `retain` newest; the names deleted."""
        props = self._endpoint().get("properties") or {}
        busy = {d for d, v in {**(props.get("traffic") or {}), **(props.get("mirrorTraffic") or {})}.items() if v}
        idle = sorted((d for d in deployments if d["name"] not in keep | busy),
                      key=lambda d: (d.get("systemData") or {}).get("createdAt") or "", reverse=True)
        retain = self.rollout.retain if needed is None else 0
        ours = [d for d in idle[retain:] if ((d.get("tags") or {}).get(MODEL_TAG) == self.spec.model_name)
                and (d.get("properties") or {}).get("provisioningState") != "Deleting"]
        if needed is not None:
            ours = ours[-needed:]
        for d in ours:
            self.arm.delete(self._dep_url(d["name"]))
        return [d["name"] for d in ours]

    def _score(self, dep: str, body: dict) -> str | None:
        """None if `dep` answers `body` with 2xx JSON, else what went wrong (the key never leaves this call)."""
        uri = (self._endpoint().get("properties") or {}).get("scoringUri")
        if not uri:
            return "the endpoint reports no scoringUri"
        self.deps.allowed(uri, AZUREML, f"endpoint {self.spec.label} scoringUri")
        key = self.arm.post(f"{self.spec.path}/listKeys").get("primaryKey")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", SERVED_HEADER: dep}
        try:
            response = send(self.deps.session, "POST", uri, headers=headers, json=body, retry=self.deps.retry,
                            idempotent=True, expect_json=True)
        except (PermanentServiceError, TransientServiceError) as e:
            return trim(scrub(str(e), (key,) if key else ()), 500)
        answered = response.headers.get(SERVED_HEADER)
        if answered and answered != dep:
            return f"the answer came from deployment {answered}, not {dep}"
        return None

    def _error_rate(self, dep: str, since: str) -> str | None:
        """Why the new deployment's error rate since `since` is too high (Azure Monitor's RequestsPerMinute), or None."""
        limit = self.rollout.max_error_rate
        if limit is None:
            return None
        end = self._now()
        query = urlencode({"metricnames": "RequestsPerMinute", "aggregation": "Total", "interval": "PT1M",
                           "timespan": f"{since}/{end.isoformat()}",
                           "$filter": f"deployment eq '{dep}' and statusCodeClass eq '*'",
                           "api-version": "2023-10-01"})
        answer = self.arm.get(f"{self.spec.path}/providers/Microsoft.Insights/metrics?{query}") or {}
        total = errors = 0.0
        for metric in answer.get("value") or []:
            for series in metric.get("timeseries") or []:
                meta = {str((m.get("name") or {}).get("value", "")).lower(): str(m.get("value"))
                        for m in series.get("metadatavalues") or []}
                count = sum(float(p.get("total") or 0) for p in series.get("data") or [])
                total += count
                if meta.get("statuscodeclass", "").startswith("5"):
                    errors += count
        if total < self.rollout.min_requests:
            return None
        rate = errors / total
        if rate > limit:
            return (f"deployment {dep} failed {errors:.0f} of {total:.0f} requests ({rate:.1%}), above the "
                    f"allowed {limit:.1%}")
        return None

    def _operation_error(self, state: dict) -> str:
        """The provisioning operation's error message (Azure-AsyncOperation of the PUT), if the service kept one."""
        message = self.arm.operation_error(state.get("operation"))
        return f": {trim(scrub(str(message)), 500)}" if message else ""

    def _endpoint(self) -> dict:
        found = self.arm.get(self.spec.path)
        if found is None:
            raise PermanentServiceError(f"online endpoint {self.spec.endpoint} does not exist", status=404,
                                        code="EndpointNotFound")
        return found

    def _deployments(self) -> list[dict]:
        return self.arm.list(f"{self.spec.path}/deployments")

    def _dep_url(self, dep: str) -> str:
        return f"{self.spec.path}/deployments/{dep}"

    def _next(self, state: dict, phase: str, *, wait: float = 0.0, **changes) -> Progress:
        state.update(phase=phase, busy=0, **changes)
        return Progress(state, wait=wait)

    def _now(self) -> datetime:
        now = self.deps.clock()
        return now if now is not None else datetime.now(timezone.utc)

    def _now_iso(self) -> str:
        return self._now().isoformat()


def _settings(doc: dict, model: str | None) -> dict:
    """A deployment's writable settings (what a PUT takes), with `model` in place of its own."""
    props = {k: v for k, v in (doc.get("properties") or {}).items() if k not in READ_ONLY and v is not None}
    if model:
        props["model"] = model
    body = {"location": doc.get("location"), "sku": doc.get("sku"), "kind": doc.get("kind"),
            "tags": dict(doc.get("tags") or {}), "properties": props}
    if doc.get("identity"):
        body["identity"] = doc["identity"]
    return {k: v for k, v in body.items() if v is not None}


def _poll_wait(state: dict) -> float:
    """The provisioning operation's Retry-After when it gave one (within 1 s .. POLL), else POLL."""
    after = (state.get("operation") or {}).get("retry_after")
    return POLL if after is None else min(POLL, max(1.0, float(after)))


def _same_model(doc: dict, model_id: str) -> bool:
    model = (doc.get("properties") or {}).get("model") or ""
    model = str(model.get("assetId", "") if isinstance(model, dict) else model)  # batch: {"assetId": ...}
    return model.lower().endswith(model_id.lower().split("/workspaces/", 1)[-1])


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _fmt(traffic: dict) -> str:
    return ", ".join(f"{d} {v}%" for d, v in sorted(traffic.items(), key=lambda kv: -kv[1])) or "no traffic"


def workspace_of(spec: AzureMLEndpointSpec, deps) -> Workspace:
    return Workspace(deps.azureml(spec.workspace, conflict_retry=NO_CONFLICT_WAIT))


def _target(spec: AzureMLEndpointSpec, deps) -> AzureMLOnlineEndpoint:
    return AzureMLOnlineEndpoint(spec, workspace_of(spec, deps), deps)


KIND = EndpointKind("azureml_online", FIELDS,
                    lambda item, where, problems: parse("azureml_online", "onlineEndpoints", item, where, problems),
                    _target, service_kind=AZUREML, serialised=True)
