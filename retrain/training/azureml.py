"""Azure Machine Learning (v2) training: a command job PUT by a name derived from the run, metrics read from MLflow.

Definition (`training` with `kind: "azureml"`): `workspace` (ARM id, or base URL + ARM id), `job` (the
ARM job body, `{"properties": {...}}`, as `az ml job create --file` would send it), `data_input`
(receives the run's pinned blob version), `baseline_input` (receives the champion's model; reference
it inside `$[[...]]` so the first run, with no champion, can be submitted), `model_output`, and
`metrics` (MLflow key -> the policy's metric name; the champion's score on the same hold-out is read
from `baseline_<key>`).
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..artifacts import Artifact, AzureMLModel, artifact_from_record
from ..azureml.workspace import WorkspaceId
from ..definition_fields import unknown
from ..errors import PermanentServiceError
from ..evaluation import Evaluation
from ..job_failures import JobFailure, MAX_REASON
from ..outbound import credential_problem
from ..runs import parse_iso
from . import EvaluationUnusable, JobLost, JobStatus, Phase, Submitted, TrainingKind, register

KIND = "azureml"
# All fourteen JobStatus values; only Completed, Failed and Canceled are terminal (NotResponding and Paused come back).
STATES = {"NotStarted": Phase.ACTIVE, "Queued": Phase.ACTIVE, "Preparing": Phase.ACTIVE,
          "Provisioning": Phase.ACTIVE, "Starting": Phase.ACTIVE, "Running": Phase.ACTIVE,
          "Finalizing": Phase.ACTIVE, "CancelRequested": Phase.ACTIVE, "NotResponding": Phase.ACTIVE,
          "Paused": Phase.ACTIVE, "Unknown": Phase.ACTIVE, "Completed": Phase.COMPLETED,
          "Failed": Phase.FAILED, "Canceled": Phase.CANCELLED}
DATA_INPUT_TYPES = ("uri_file", "uri_folder")
MODEL_INPUT_TYPES = ("custom_model", "mlflow_model", "triton_model", "uri_folder")
BASELINE_PREFIX = "baseline_"
INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
PLACEHOLDER = r"\$\{\{\s*%s\.%s\s*\}\}"
OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
JOB_NAME_LIMIT = 255
_SECRET_ENV = re.compile(r"(?i)(secret|password|passwd|token|api_?key|account_?key|connection_?string|sas)")
_SHORT_ASSET = re.compile(r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)(?::(?P<version>[A-Za-z0-9_.\-]+))?$")
_TEMPLATE_KEYS = {"jobType", "command", "codeId", "environmentId", "computeId", "experimentName", "displayName",
                  "description", "inputs", "outputs", "environmentVariables", "distribution", "resources",
                  "limits", "properties", "tags", "identity", "queueSettings", "services"}


@dataclass(frozen=True)
class AzureMLTraining:
    """An Azure ML command job template and how its inputs, output and MLflow metrics are named."""

    workspace: WorkspaceId
    job: dict  # {"properties": {...}}: the ARM job body without the data, the baseline and the name
    data_input: str = "data"
    baseline_input: str | None = "baseline"
    model_output: str = "model"
    metrics: dict[str, str] = field(default_factory=dict)  # MLflow key -> policy metric name; {} = as logged
    kind: str = KIND

    def to_json(self) -> dict:
        return {"workspace": self.workspace.reference, "job": copy.deepcopy(self.job), "data_input": self.data_input,
                "baseline_input": self.baseline_input, "model_output": self.model_output,
                "metrics": dict(self.metrics)}

    def destinations(self) -> list[tuple[str, str, str]]:
        """The explicit ARM base URL, when the reference names one (the app's ARM host is allowed by rule)."""
        return [("training.workspace", KIND, self.workspace.base_url + "/")] if self.workspace.base_url else []

    def key_settings(self) -> list[tuple[str, str]]:
        return []  # the app's identity, never a key

    def policy_problems(self, policy) -> list[str]:
        """Rules on a metric no mapped MLflow key yields would always find it missing: say so at PUT."""
        if not self.metrics:
            return []
        names = set(self.metrics.values())
        return [f"policy.rules[{i}].metric: {rule.metric!r} is not a name training.metrics maps an MLflow key to "
                f"(it maps to {', '.join(sorted(map(repr, names)))})"
                for i, rule in enumerate(policy.rules) if rule.metric not in names]

    def policy_name(self, key: str) -> str:
        return self.metrics.get(key, key) if self.metrics else key


def parse(raw: dict, problems: list[str]) -> AzureMLTraining | None:
    """The azureml `training` section, every problem appended."""
    unknown(raw, {"workspace", "job", "data_input", "baseline_input", "model_output", "metrics"}, "training.", problems)
    before = len(problems)
    workspace_problem = WorkspaceId.problem(raw.get("workspace"), "training.workspace")
    if workspace_problem:
        problems.append(workspace_problem)
    else:
        credential = credential_problem(raw["workspace"], "training.workspace")
        if credential:
            problems.append(credential)
    data_input = _name(raw.get("data_input", "data"), "training.data_input", problems)
    baseline_input = raw.get("baseline_input", "baseline")
    if baseline_input is not None:
        baseline_input = _name(baseline_input, "training.baseline_input", problems)
    model_output = _name(raw.get("model_output", "model"), "training.model_output", problems)
    metrics = _metrics(raw.get("metrics", {}), problems)
    job = _job(raw.get("job"), data_input, baseline_input, model_output, problems)
    if len(problems) > before:
        return None
    return AzureMLTraining(WorkspaceId.parse(raw["workspace"]), job, data_input, baseline_input, model_output, metrics)


def _name(value: Any, where: str, problems: list[str]) -> str:
    if not isinstance(value, str) or not INPUT_NAME.match(value):
        problems.append(f"{where}: an input/output name of the job (letters, digits, underscores)")
        return ""
    return value


def _metrics(raw: Any, problems: list[str]) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
                                            for k, v in raw.items()):
        problems.append('training.metrics: an object of MLflow metric key -> policy metric name, '
                        'e.g. {"auc": "AUC"} (the baseline\'s comes from "baseline_auc")')
        return {}
    for key in raw:
        if key.startswith(BASELINE_PREFIX):
            problems.append(f"training.metrics[{key!r}]: name the new model's key; {BASELINE_PREFIX}<key> is read "
                            "for the champion by convention")
    return dict(raw)


def _job(raw: Any, data_input: str, baseline_input: str | None, model_output: str, problems: list[str]) -> dict:
    """The job template: a Command job body whose command uses the data input and the model output."""
    if not isinstance(raw, dict) or not isinstance(raw.get("properties"), dict):
        problems.append('training.job: the ARM job body {"properties": {"jobType": "Command", "command": ..., '
                        '"environmentId": ..., "computeId": ..., "inputs": ..., "outputs": ...}} '
                        "(what `az ml job create` sends)")
        return {}
    unknown(raw, {"properties", "tags"}, "training.job.", problems)
    props = raw["properties"]
    unknown(props, _TEMPLATE_KEYS, "training.job.properties.", problems)
    if props.get("jobType", "Command") != "Command":
        problems.append("training.job.properties.jobType: 'Command' (the job that trains and logs metrics)")
    command = props.get("command")
    if not isinstance(command, str) or not command.strip():
        problems.append("training.job.properties.command: the command line, e.g. "
                        "'python train.py --data ${{inputs.data}} --model ${{outputs.model}}'")
        command = ""
    for what in ("environmentId", "computeId"):
        if not isinstance(props.get(what), str) or not props[what].strip():
            problems.append(f"training.job.properties.{what}: an ARM id or azureml:name[:version]")
    inputs, outputs = props.get("inputs") or {}, props.get("outputs") or {}
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        problems.append("training.job.properties.inputs/outputs: objects of name -> {jobInputType|jobOutputType, ...}")
        inputs, outputs = {}, {}
    if data_input and command and not re.search(PLACEHOLDER % ("inputs", re.escape(data_input)), command):
        problems.append(f"training.job.properties.command: must use ${{{{inputs.{data_input}}}}} (training.data_input)")
    if model_output and command and not re.search(PLACEHOLDER % ("outputs", re.escape(model_output)), command):
        problems.append(f"training.job.properties.command: must use ${{{{outputs.{model_output}}}}} "
                        "(training.model_output)")
    if baseline_input and command:
        uses = re.search(PLACEHOLDER % ("inputs", re.escape(baseline_input)), command)
        optional = any(re.search(PLACEHOLDER % ("inputs", re.escape(baseline_input)), part)
                       for part in OPTIONAL.findall(command))
        if uses and not optional:
            problems.append(f"training.job.properties.command: put ${{{{inputs.{baseline_input}}}}} inside "
                            f"$[[...]] (e.g. '$[[--baseline ${{{{inputs.{baseline_input}}}}}]]'): the first run has "
                            "no champion to pass")
        elif not uses:
            problems.append(f"training.job.properties.command: must use ${{{{inputs.{baseline_input}}}}} inside "
                            "$[[...]], or set training.baseline_input to null")
    for name, spec in ((data_input, inputs.get(data_input)), (baseline_input, inputs.get(baseline_input))):
        if name and spec is not None:
            if not isinstance(spec, dict):
                problems.append(f"training.job.properties.inputs.{name}: an object")
            elif spec.get("uri"):
                problems.append(f"training.job.properties.inputs.{name}.uri: filled in by each run; leave it out")
    data_spec = inputs.get(data_input) if isinstance(inputs.get(data_input), dict) else {}
    if data_spec.get("jobInputType", "uri_file") not in DATA_INPUT_TYPES:
        problems.append(f"training.job.properties.inputs.{data_input}.jobInputType: one of {', '.join(DATA_INPUT_TYPES)}")
    base_spec = inputs.get(baseline_input) if baseline_input and isinstance(inputs.get(baseline_input), dict) else {}
    if base_spec.get("jobInputType", "custom_model") not in MODEL_INPUT_TYPES:
        problems.append(f"training.job.properties.inputs.{baseline_input}.jobInputType: one of "
                        f"{', '.join(MODEL_INPUT_TYPES)}")
    out_spec = outputs.get(model_output)
    if out_spec is not None and (not isinstance(out_spec, dict)
                                 or out_spec.get("jobOutputType", "custom_model") not in MODEL_INPUT_TYPES[:3]):
        problems.append(f"training.job.properties.outputs.{model_output}: "
                        "{\"jobOutputType\": \"custom_model\" | \"mlflow_model\" | \"triton_model\"}")
    env = props.get("environmentVariables") or {}
    if not isinstance(env, dict):
        problems.append("training.job.properties.environmentVariables: an object of name -> value")
        env = {}
    for name in env:
        if _SECRET_ENV.search(str(name)):
            problems.append(f"training.job.properties.environmentVariables.{name}: secrets do not belong in a model "
                            "definition; give the job a managed identity or a Key Vault reference instead")
    problems.extend(found for where, text in _strings(raw, "training.job") if (found := credential_problem(text, where)))
    return copy.deepcopy(raw)


def _strings(obj: Any, path: str):
    """(where, text) of every string in a JSON value."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _strings(value, f"{path}[{i}]")


def job_name(model: str, run_id: str, attempt: int) -> str:
    """Same model, run and attempt give the same name (Azure ML rules: letters, digits, '-', '_'; <= 255)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{model}-{run_id}-{attempt}")
    if len(name) > JOB_NAME_LIMIT:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{name[:JOB_NAME_LIMIT - 17]}-{digest}"
    return name


def resolve_optional(command: str, present: set[str]) -> str:
    """`$[[...]]` blocks kept (brackets dropped) when every input they use is given, removed otherwise."""
    def block(match: re.Match) -> str:
        used = re.findall(r"\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", match.group(1))
        return match.group(1) if all(name in present for name in used) else ""
    return OPTIONAL.sub(block, command)


def read_job_error(error: Any) -> JobFailure:
    """A failed job's `properties.error`: a UserError (bad data, the script's own failure) is not resubmitted."""
    error = error if isinstance(error, dict) else {}
    category = str(error.get("category") or error.get("code") or "")
    message = str(error.get("message") or "").strip() or "the service gave no reason"
    head, _, log = message.partition("\n")
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.startswith("Last lines of")]
    text = " ".join(head.split())
    if lines:
        text += f" The log ends: {lines[-1]}"
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON].rsplit(" ", 1)[0] + " ..."
    return JobFailure(text, data_error=category == "UserError")


class AzureMLTrainingService:
    """Jobs in one workspace, through the shared ARM client; metrics through the workspace's MLflow server."""

    def __init__(self, ctx, definition):
        self.ctx = ctx
        self.config: AzureMLTraining = definition.training
        self.arm = ctx.azureml(self.config.workspace)

    def submit(self, run, model) -> Submitted:
        """GET first: a job of this name (a redelivered submit, a crash after the PUT) is reused, never doubled."""
        name = job_name(run.model, run.run_id, run.attempt)
        body, baseline_run = self.job_body(run, model, name)
        if self.arm.get(f"jobs/{name}", missing_ok=True) is None:
            self.arm.put(f"jobs/{name}", body)
        output = AzureMLModel(self.config.workspace.reference, name, self.config.model_output)
        return Submitted(name, {"model": output.to_record()}, baseline_run, by_name=True)

    def job_body(self, run, model, name: str) -> tuple[dict, str]:
        """The template with this run's data (a read SAS to its pinned snapshot), the champion as baseline, its tags."""
        cfg, storage = self.config, self.ctx.storage
        body = copy.deepcopy(cfg.job)
        props = body["properties"]
        data = storage.located(run.data.container, run.data.name, expiry=parse_iso(run.deadline),
                               snapshot=run.data.snapshot)
        inputs = dict(props.get("inputs") or {})
        inputs[cfg.data_input] = {"jobInputType": "uri_file", **(inputs.get(cfg.data_input) or {}), "uri": data.url}
        baseline_run = ""
        champion = model.champion
        if cfg.baseline_input and champion and isinstance(champion.location, AzureMLModel) \
                and WorkspaceId.parse(champion.location.workspace).path == cfg.workspace.path:
            inputs[cfg.baseline_input] = {"jobInputType": "custom_model", **(inputs.get(cfg.baseline_input) or {}),
                                          "uri": champion.location.asset}
            baseline_run = champion.run_id
        elif cfg.baseline_input:
            inputs.pop(cfg.baseline_input, None)
        props["inputs"] = inputs
        props["command"] = resolve_optional(props["command"], set(inputs))
        outputs = dict(props.get("outputs") or {})
        outputs[cfg.model_output] = {"jobOutputType": "custom_model", **(outputs.get(cfg.model_output) or {})}
        props["outputs"] = outputs
        for what, kind in (("codeId", "codes"), ("environmentId", "environments"), ("computeId", "computes")):
            if isinstance(props.get(what), str):
                props[what] = self._arm_id(props[what], kind)
        props.setdefault("experimentName", run.model)
        props["displayName"] = props.get("displayName") or name
        props["tags"] = {**(props.get("tags") or {}), "retrain.model": run.model, "retrain.run": run.run_id,
                         "retrain.attempt": str(run.attempt)}
        return body, baseline_run

    def _arm_id(self, ref: str, kind: str) -> str:
        """`azureml:name[:version]` as this workspace's ARM id (what the SDK sends); anything else as given."""
        found = _SHORT_ASSET.match(ref.strip())
        if not found:
            return ref
        path = f"{self.config.workspace.path}/{kind}/{found['name']}"
        return path if kind == "computes" else f"{path}/versions/{found['version'] or '1'}"

    def start(self, run) -> None:
        """Nothing to do: a PUT job is queued at once."""

    def status(self, run) -> JobStatus:
        job = self.arm.get(f"jobs/{run.job_id}", missing_ok=True)
        if job is None:
            raise JobLost(f"the workspace has no job {run.job_id} any more")
        props = job.get("properties") if isinstance(job.get("properties"), dict) else {}
        state = str(props.get("status") or "Unknown")
        phase = STATES.get(state, Phase.ACTIVE)  # a state added later: keep polling, the deadline bounds it
        if phase is not Phase.FAILED:
            return JobStatus(phase, state)
        error = props.get("error")
        return JobStatus(phase, state, read_job_error(error), str((error or {}).get("message") or "")[:4000] or None)

    def cancel(self, job_id: str) -> None:
        """Ask for the cancel (the job ends Canceled shortly); a job gone already is left alone."""
        try:
            self.arm.post(f"jobs/{job_id}/cancel")
        except PermanentServiceError as e:
            if e.status not in (404, 409):
                raise

    def outputs(self, run) -> dict[str, Artifact]:
        return {name: artifact_from_record(record) for name, record in run.outputs.items()}

    def evaluation(self, run, model) -> Evaluation:
        """The job's MLflow run (run id = job name): mapped metrics, and `baseline_<key>` when a baseline was given."""
        try:
            body = self.arm.mlflow("runs/get", {"run_id": run.job_id})
        except PermanentServiceError as e:
            if e.status == 404:
                raise EvaluationUnusable(f"the job {run.job_id} has no MLflow run in the workspace") from None
            raise
        logged = {}
        for item in ((body.get("run") or {}).get("data") or {}).get("metrics") or []:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                value = _finite(item.get("value"))
                if value is not None:
                    logged[item["key"]] = value
        keys = list(self.config.metrics) or [k for k in logged if not k.startswith(BASELINE_PREFIX)]
        challenger = {self.config.policy_name(k): logged[k] for k in keys if k in logged}
        missing = tuple(self.config.policy_name(k) for k in keys if k not in logged)
        if not challenger:
            wanted = ", ".join(keys) or "any metric"
            raise EvaluationUnusable(f"the job {run.job_id} logged none of {wanted} to MLflow "
                                     f"(it logged: {', '.join(sorted(logged)) or 'nothing'})")
        baseline, baseline_missing = None, ()
        if run.baseline_run and any(BASELINE_PREFIX + k in logged for k in keys):
            baseline = {self.config.policy_name(k): logged[BASELINE_PREFIX + k] for k in keys
                        if BASELINE_PREFIX + k in logged}
            baseline_missing = tuple(self.config.policy_name(k) for k in keys if BASELINE_PREFIX + k not in logged)
        return Evaluation(challenger, baseline, missing, baseline_missing)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


register(TrainingKind(KIND, "Azure Machine Learning jobs", parse, AzureMLTrainingService))
