"""Model definitions: what a user registers, parsed and validated (every problem at once), secret-free."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from .definition_fields import SECRET_KEYS as _SECRET_KEYS
from .definition_fields import unknown as _unknown
from .serving.kinds import KINDS
from .serving.rollout import RolloutPolicy
from .errors import InvalidModelDefinition
from .policy import Policy
from .training import parse_training, training_json

MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A run's endpoint records share one table property (64 KiB, 32K UTF-16 characters); one record stays under
# 2 KB (an error is cut at 1000 characters, deployment settings live in blobs: retrain/serving/documents.py).
MAX_ENDPOINTS = 16


def check_model_name(name: str) -> str:
    if not MODEL_NAME.match(name or ""):
        raise InvalidModelDefinition([f"model name {name!r}: use 1-63 lowercase letters, digits and "
                                      "hyphens, starting with a letter or digit"])
    return name


@dataclass(frozen=True)
class ModelDefinition:
    """What a user registers with `PUT /api/models/{model}`; holds setting names, never secrets."""

    name: str
    training: Any  # its kind's config: training.studio.StudioTraining or training.azureml.AzureMLTraining
    endpoints: tuple[Any, ...]  # each kind's spec (retrain.serving.kinds)
    policy: Policy
    data_prefix: str
    schedule: bool = False
    description: str = ""
    rollout: RolloutPolicy = RolloutPolicy()  # how Azure ML online endpoints move traffic to a new deployment

    def to_json(self) -> dict:
        return {"name": self.name, "description": self.description, "training": training_json(self.training),
                "endpoints": [e.to_json() for e in self.endpoints], "policy": self.policy.to_json(),
                "data_prefix": self.data_prefix, "schedule": self.schedule, "rollout": self.rollout.to_json()}

    def destinations(self) -> list[tuple[str, str, str]]:
        """(field, service kind, URL) of every place this definition sends a credential or SAS."""
        return self.training.destinations() + [
            (f"endpoints[{i}].url", KINDS[e.kind].service_kind, e.url) for i, e in enumerate(self.endpoints)]

    def key_settings(self) -> list[tuple[str, str]]:
        """(field, app setting name) of every secret this definition reads."""
        return self.training.key_settings() + [
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
        training = parse_training(body.get("training"), problems)
        raw_endpoints = body.get("endpoints")
        if raw_endpoints is None and "endpoint" in body:
            raw_endpoints = [body["endpoint"]]
        endpoints = _endpoints(raw_endpoints, problems)
        try:
            policy = Policy.from_json(body.get("policy"))
        except InvalidModelDefinition as e:
            problems.extend(p if p.startswith("policy") else f"policy: {p}" for p in e.problems)
            policy = None
        if training is not None and policy is not None:
            problems.extend(training.policy_problems(policy))
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


def _endpoints(raw: Any, problems: list[str]) -> tuple:
    """Each endpoint parsed by its kind (`retrain.serving.kinds`); names distinct."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("endpoints: a list of {kind, url, ...}")
        return ()
    if len(raw) > MAX_ENDPOINTS:
        problems.append(f"endpoints: at most {MAX_ENDPOINTS} per model ({len(raw)} given): a run records every "
                        "endpoint's outcome in one table property, which holds 64 KiB; define another model "
                        "for the rest")
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
