"""Studio (classic) training: a BES batch job whose outputs are blobs (`.ilearner` model, evaluation CSV)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from ..artifacts import Artifact, artifact_from_record
from ..bes import BatchJobRequest, BesClient, JobState
from ..errors import JobNotFound, RetrainError
from ..evaluation import Evaluation, parse_evaluation
from ..job_failures import read_failure
from ..locations import BlobLocation
from ..outbound import credential_problem
from ..runs import parse_iso
from . import EvaluationUnusable, JobLost, JobStatus, Phase, Submitted, TrainingKind, register
from ..definition_fields import http_url, port, setting, unknown

KIND = "studio"
_PHASES = {JobState.NOT_STARTED: Phase.ACTIVE, JobState.RUNNING: Phase.ACTIVE, JobState.FINISHED: Phase.COMPLETED,
           JobState.FAILED: Phase.FAILED, JobState.CANCELLED: Phase.CANCELLED}


@dataclass(frozen=True)
class StudioTraining:
    """The BES training web service and how its inputs and outputs are named."""

    url: str
    key_setting: str
    input_name: str = "input1"
    model_output: str = "output1"
    evaluation_output: str = "output2"
    global_parameters: dict[str, str] = field(default_factory=dict)
    baseline_parameter: str | None = "Baseline model"  # None: the service cannot score a baseline
    data_parameter: str | None = None  # the data's URL goes in this global parameter, not an input
    kind: str = KIND

    def to_json(self) -> dict:
        return {"url": self.url, "key_setting": self.key_setting, "input": self.input_name,
                "outputs": {"model": self.model_output, "evaluation": self.evaluation_output},
                "global_parameters": dict(self.global_parameters),
                "baseline_parameter": self.baseline_parameter, "data_parameter": self.data_parameter}

    def destinations(self) -> list[tuple[str, str, str]]:
        """(field, outbound kind, URL) this section sends credentials or SAS to."""
        return [("training.url", "bes", self.url)]

    def key_settings(self) -> list[tuple[str, str]]:
        return [("training.key_setting", self.key_setting)]

    def policy_problems(self, policy) -> list[str]:
        return []  # Evaluate Model names its own columns; any may be used


def parse(raw: dict, problems: list[str]) -> StudioTraining:
    """The studio `training` section, every problem appended."""
    unknown(raw, {"url", "key_setting", "input", "outputs", "global_parameters", "baseline_parameter",
                  "data_parameter"}, "training.", problems)
    outputs = raw.get("outputs") or {}
    if not isinstance(outputs, dict):
        problems.append("training.outputs: an object {\"model\": \"output1\", \"evaluation\": \"output2\"}")
        outputs = {}
    unknown(outputs, {"model", "evaluation"}, "training.outputs.", problems)
    params = raw.get("global_parameters") or {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        problems.append("training.global_parameters: an object of name -> value")
        params = {}
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    for name, value in params.items():
        problem = credential_problem(value, f"training.global_parameters[{name!r}]")
        if problem:
            problems.append(problem)
    baseline = raw.get("baseline_parameter", "Baseline model")
    data_param = raw.get("data_parameter")
    for key, value in (("baseline_parameter", baseline), ("data_parameter", data_param)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append(f"training.{key}: a global parameter name, or null")
    service = StudioTraining(
        url=http_url(raw.get("url"), "training.url", problems),
        key_setting=setting(raw.get("key_setting"), "training.key_setting", problems),
        input_name=port(raw.get("input"), "input1", "training.input", problems),
        model_output=port(outputs.get("model"), "output1", "training.outputs.model", problems),
        evaluation_output=port(outputs.get("evaluation"), "output2", "training.outputs.evaluation", problems),
        global_parameters=params, baseline_parameter=baseline, data_parameter=data_param)
    if service.model_output == service.evaluation_output:
        problems.append("training.outputs: model and evaluation must be different outputs")
    return service


class StudioTrainingService:
    """BES jobs for one model: least-privilege SAS for inputs and outputs, blobs read back for the evaluation."""

    def __init__(self, ctx, definition):
        self.ctx = ctx
        self.config: StudioTraining = definition.training
        self.bes: BesClient = ctx.bes(definition)

    def submit(self, run, model) -> Submitted:
        request, records, baseline = self.job_request(run, model)
        return Submitted(self.bes.submit(request), records, baseline)

    def job_request(self, run, model) -> tuple[BatchJobRequest, dict[str, dict], str]:
        """Least privilege: read SAS for the input and the champion, create/write SAS for this attempt's two
        output blobs only, every one expiring at the run's deadline (docs/security.md)."""
        expiry = parse_iso(run.deadline)
        service, storage, out = self.config, self.ctx.storage, self.ctx.settings.output_container
        prefix = f"{run.model}/{run.run_id}/{run.attempt}"
        model_blob, evaluation_blob = f"{prefix}/model.ilearner", f"{prefix}/evaluation.csv"
        data = storage.located(run.data.container, run.data.name, expiry=expiry, snapshot=run.data.snapshot)
        outputs = {service.model_output: storage.located(out, model_blob, expiry=expiry, write=True),
                   service.evaluation_output: storage.located(out, evaluation_blob, expiry=expiry, write=True)}
        params = dict(service.global_parameters)
        inputs = {}
        if service.data_parameter:
            params[service.data_parameter] = data.url
        else:
            inputs[service.input_name] = data
        baseline = ""
        champion = model.champion
        location = champion.location if champion else None
        if (isinstance(location, BlobLocation) and service.baseline_parameter
                and location.base_location == storage.blob_base):
            params[service.baseline_parameter] = storage.located(location.container, location.blob_name,
                                                                 expiry=expiry).url
            baseline = champion.run_id
        records = {"model": storage.location(out, model_blob).to_record(),
                   "evaluation": storage.location(out, evaluation_blob).to_record()}
        return BatchJobRequest(inputs=inputs, outputs=outputs, global_parameters=params), records, baseline

    def start(self, run) -> None:
        self.bes.start(run.job_id)

    def status(self, run) -> JobStatus:
        try:
            status = self.bes.status(run.job_id)
        except JobNotFound:
            raise JobLost(f"the service lost job {run.job_id}") from None
        failure = read_failure(status.details) if status.state is JobState.FAILED else None
        return JobStatus(_PHASES[status.state], status.state.value, failure, status.details)

    def cancel(self, job_id: str) -> None:
        self.bes.cancel(job_id)

    def outputs(self, run) -> dict[str, Artifact]:
        return {name: artifact_from_record(record) for name, record in run.outputs.items()}

    def evaluation(self, run, model) -> Evaluation:
        location = BlobLocation.from_record(run.outputs["evaluation"])
        blob = self.ctx.storage.blobs.get_blob_client(location.container, location.blob_name)
        try:
            text = blob.download_blob(max_concurrency=1).readall().decode("utf-8-sig", errors="replace")
        except ResourceNotFoundError:
            raise EvaluationUnusable(f"the job finished but wrote no evaluation output at {location.uri}") from None
        try:
            return parse_evaluation(text)
        except RetrainError as e:
            raise EvaluationUnusable(f"the evaluation output is unusable: {e}") from None


register(TrainingKind(KIND, "Azure ML Studio (classic) BES", parse, StudioTrainingService))
