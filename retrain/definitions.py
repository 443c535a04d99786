"""Model definitions: what a user registers, parsed and validated (every problem at once), secret-free."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .fields import SECRET_KEYS as _SECRET_KEYS, SETTING_NAME, http_url as _http_url, setting as _setting
from .fields import unknown as _unknown
from .serving.kinds import KINDS
from .serving.rollout import RolloutPolicy
from .errors import InvalidModelDefinition
from .outbound import credential_problem
from .policy import Policy

MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")


def check_model_name(name: str) -> str:
    if not MODEL_NAME.match(name or ""):
        raise InvalidModelDefinition([f"model name {name!r}: use 1-63 lowercase letters, digits and "
                                      "hyphens, starting with a letter or digit"])
    return name


@dataclass(frozen=True)
class TrainingService:
    """The BES training web service and how its inputs and outputs are named."""

    url: str
    key_setting: str
    input_name: str = "input1"
    model_output: str = "output1"
    evaluation_output: str = "output2"
    global_parameters: dict[str, str] = field(default_factory=dict)
    baseline_parameter: str | None = "Baseline model"  # None: the service cannot score a baseline
    data_parameter: str | None = None  # the data's URL goes in this global parameter, not an input

    def to_json(self) -> dict:
        return {"url": self.url, "key_setting": self.key_setting, "input": self.input_name,
                "outputs": {"model": self.model_output, "evaluation": self.evaluation_output},
                "global_parameters": dict(self.global_parameters),
                "baseline_parameter": self.baseline_parameter, "data_parameter": self.data_parameter}


@dataclass(frozen=True)
class ModelDefinition:
    """What a user registers with `PUT /api/models/{model}`; holds setting names, never secrets."""

    name: str
    training: TrainingService
    endpoints: tuple[EndpointSpec, ...]
    policy: Policy
    data_prefix: str
    schedule: bool = False
    description: str = ""
    rollout: RolloutPolicy = RolloutPolicy()  # how Azure ML online endpoints move traffic to a new deployment

    def to_json(self) -> dict:
        return {"name": self.name, "description": self.description, "training": self.training.to_json(),
                "endpoints": [e.to_json() for e in self.endpoints], "policy": self.policy.to_json(),
                "data_prefix": self.data_prefix, "schedule": self.schedule, "rollout": self.rollout.to_json()}

    def destinations(self) -> list[tuple[str, str, str]]:
        """(field, service kind, URL) of every place this definition sends a credential or SAS."""
        return [("training.url", "bes", self.training.url)] + [
            (f"endpoints[{i}].url", KINDS[e.kind].service_kind, e.url) for i, e in enumerate(self.endpoints)]

    def key_settings(self) -> list[tuple[str, str]]:
        """(field, app setting name) of every secret this definition reads."""
        return [("training.key_setting", self.training.key_setting)] + [
            (f"endpoints[{i}].key_setting", e.key_setting) for i, e in enumerate(self.endpoints) if e.key_setting]

    @classmethod
    def from_json(cls, name: str, body: Any) -> "ModelDefinition":
        """Validate a whole definition, reporting every problem at once."""
        check_model_name(name)
        problems: list[str] = []
        if not isinstance(body, dict):
            raise InvalidModelDefinition(["the body must be a JSON object"])
        _find_secrets(body, "", problems)
        _unknown(body, {"name", "description", "training", "endpoints", "endpoint", "policy",
                        "data_prefix", "schedule", "rollout"}, "", problems)
        if body.get("name") not in (None, name):
            problems.append(f"name: {body['name']!r} differs from the name in the URL ({name!r})")
        training = _training(body.get("training"), problems)
        raw_endpoints = body.get("endpoints")
        if raw_endpoints is None and "endpoint" in body:
            raw_endpoints = [body["endpoint"]]
        endpoints = _endpoints(raw_endpoints, problems)
        try:
            policy = Policy.from_json(body.get("policy"))
        except InvalidModelDefinition as e:
            problems.extend(p if p.startswith("policy") else f"policy: {p}" for p in e.problems)
            policy = None
        try:
            rollout = RolloutPolicy.from_json(body.get("rollout"))
        except InvalidModelDefinition as e:
            problems.extend(e.problems)
            rollout = None
        prefix = body.get("data_prefix", f"{name}/")
        if not isinstance(prefix, str) or not prefix.strip("/") or prefix.startswith("/") or ".." in prefix \
                or "\\" in prefix:
            problems.append("data_prefix: a blob name prefix inside the training container, "
                            f"such as '{name}/' (no leading '/', no '..')")
        elif not prefix.endswith("/"):
            prefix += "/"
        schedule = body.get("schedule", False)
        if not isinstance(schedule, bool):
            problems.append("schedule: true or false")
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > 1000:
            problems.append("description: a string of at most 1000 characters")
        if problems:
            raise InvalidModelDefinition(problems)
        return cls(name, training, endpoints, policy, prefix, schedule, description, rollout)


def _find_secrets(obj: Any, path: str, problems: list[str]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).lower() in _SECRET_KEYS:
                problems.append(f"{where}: secrets do not belong in a model definition; put the value in an "
                                "app setting and give that setting's name (key_setting)")
            else:
                _find_secrets(value, where, problems)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            _find_secrets(value, f"{path}[{i}]", problems)


def _port(value: Any, default: str, where: str, problems: list[str]) -> str:
    value = default if value is None else value
    if not isinstance(value, str) or not PORT_NAME.match(value):
        problems.append(f"{where}: a service port name such as {default!r}")
    return value


def _training(raw: Any, problems: list[str]) -> TrainingService | None:
    if not isinstance(raw, dict):
        problems.append("training: an object with url and key_setting")
        return None
    _unknown(raw, {"url", "key_setting", "input", "outputs", "global_parameters", "baseline_parameter",
                   "data_parameter"}, "training.", problems)
    outputs = raw.get("outputs") or {}
    if not isinstance(outputs, dict):
        problems.append("training.outputs: an object {\"model\": \"output1\", \"evaluation\": \"output2\"}")
        outputs = {}
    _unknown(outputs, {"model", "evaluation"}, "training.outputs.", problems)
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
    service = TrainingService(
        url=_http_url(raw.get("url"), "training.url", problems),
        key_setting=_setting(raw.get("key_setting"), "training.key_setting", problems),
        input_name=_port(raw.get("input"), "input1", "training.input", problems),
        model_output=_port(outputs.get("model"), "output1", "training.outputs.model", problems),
        evaluation_output=_port(outputs.get("evaluation"), "output2", "training.outputs.evaluation", problems),
        global_parameters=params, baseline_parameter=baseline, data_parameter=data_param)
    if service.model_output == service.evaluation_output:
        problems.append("training.outputs: model and evaluation must be different outputs")
    return service


def _endpoints(raw: Any, problems: list[str]) -> tuple:
    """Each endpoint parsed by its kind (`retrain.serving.kinds`); names distinct."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("endpoints: a list of {kind, url, ...}")
        return ()
    specs, names = [], set()
    for i, item in enumerate(raw):
        where = f"endpoints[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: an object")
            continue
        kind = KINDS.get(item.get("kind", "classic"))
        if kind is None:
            problems.append(f"{where}.kind: one of {', '.join(repr(k) for k in KINDS)}")
            continue
        _unknown(item, kind.fields | {"kind", "name"}, f"{where}.", problems)
        spec = kind.parse(item, where, problems)
        url = spec.url
        name = item.get("name") or (url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] if url else f"endpoint{i}")
        if name in names:
            problems.append(f"{where}.name: {name!r} is used twice; give each endpoint a distinct name")
        names.add(name)
        specs.append(replace(spec, name=name))
    return tuple(specs)
