"""The workspace config file (JSON or YAML): what services exist, their keys, and what each training job does."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# What a global parameter may set: the data location, a recipe field, or one hyperparameter.
_SETS = re.compile(r"^(data|seed|holdout|label|learner|hyperparameters\.[A-Za-z_][A-Za-z0-9_]*)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Strict):
    """The emulator's own storage account: default job outputs and `container/path` data locations."""

    connection_string: str
    output_container: str = "experimentoutput"


class RecipeConfig(_Strict):
    """What a training job does (maps 1:1 onto `training.Recipe`)."""

    task: Literal["binary", "multiclass", "regression"]
    label: str
    learner: Literal["logistic_regression", "boosted_trees", "random_forest",
                     "linear_regression", "ridge_regression"]
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    holdout: float = 0.25
    seed: int = 42

    @field_validator("holdout")
    @classmethod
    def _holdout_range(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError("holdout must be a fraction between 0 and 1 (exclusive)")
        return v


class GlobalParameter(_Strict):
    """One accepted global parameter: which recipe field it sets, and its value when the submit omits it."""

    sets: str
    default: str | None = None

    @field_validator("sets")
    @classmethod
    def _known_target(cls, v: str) -> str:
        if not _SETS.match(v):
            raise ValueError("sets must be one of data, seed, holdout, label, learner, hyperparameters.<name>")
        return v


class Outputs(_Strict):
    """The names of the two outputs a retraining service writes."""

    model: str = "output1"
    evaluation: str = "output2"


class TrainingService(_Strict):
    """A training web service reached through BES."""

    id: str
    api_key: str
    name: str | None = None
    input: str | None = "input1"
    outputs: Outputs = Field(default_factory=Outputs)
    recipe: RecipeConfig
    global_parameters: dict[str, GlobalParameter] = Field(default_factory=dict)
    baseline_parameter: str = "Baseline model"
    status_codes: Literal["names", "numbers"] = "names"

    @model_validator(mode="after")
    def _has_data_source(self) -> "TrainingService":
        data_params = [n for n, p in self.global_parameters.items() if p.sets == "data"]
        if self.input is None and not data_params:
            raise ValueError(f"training service {self.id!r} has no input and no global parameter that sets data")
        if self.input is not None and data_params:
            raise ValueError(f"training service {self.id!r} takes data from input {self.input!r} and from "
                             f"global parameter {data_params[0]!r}: choose one (set input: null)")
        if len(data_params) > 1:
            raise ValueError(f"training service {self.id!r}: more than one global parameter sets data")
        if self.outputs.model == self.outputs.evaluation:
            raise ValueError(f"training service {self.id!r}: model and evaluation outputs need distinct names")
        if self.baseline_parameter in self.global_parameters:
            raise ValueError(f"training service {self.id!r}: {self.baseline_parameter!r} is the baseline parameter")
        return self

    @property
    def data_parameter(self) -> str | None:
        """The global parameter that carries the data location, if the service takes it that way."""
        return next((n for n, p in self.global_parameters.items() if p.sets == "data"), None)


class PredictiveService(_Strict):
    """A predictive web service: RRS scoring plus classic endpoint management."""

    id: str
    api_key: str
    secondary_key: str | None = None
    name: str | None = None
    trained_model: str
    input: str = "input1"
    output: str = "output1"
    initial_model: Path | None = None


class Workspace(_Strict):
    """A Studio (classic) workspace: its id and the management token that opens its endpoints."""

    id: str
    token: str
    training_services: list[TrainingService] = Field(default_factory=list)
    predictive_services: list[PredictiveService] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Workspace":
        ids = [s.id for s in self.training_services] + [s.id for s in self.predictive_services]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"workspace {self.id!r}: duplicate service ids {sorted(dupes)}")
        return self


class ArmWebService(_Strict):
    """A new (ARM) web service: a resource whose `Resource` asset is the trained model."""

    subscription: str
    resource_group: str
    name: str
    trained_model: str
    api_key: str
    title: str | None = None
    initial_model: Path | None = None
    input: str = "input1"
    output: str = "output1"


class ArmConfig(_Strict):
    """The ARM subset: one static bearer token and the web services it manages."""

    token: str
    location: str = "southcentralus"
    provisioning_seconds: float = 0.2
    web_services: list[ArmWebService] = Field(default_factory=list)


class EmulatorConfig(_Strict):
    """The whole file."""

    storage: StorageConfig
    workspaces: list[Workspace] = Field(default_factory=list)
    arm: ArmConfig | None = None
    results_sas_minutes: int = 60

    def workspace(self, ws_id: str) -> Workspace | None:
        return next((w for w in self.workspaces if w.id == ws_id), None)

    def arm_service(self, sub: str, rg: str, name: str) -> ArmWebService | None:
        if self.arm is None:
            return None
        return next((s for s in self.arm.web_services
                     if s.subscription == sub and s.resource_group.lower() == rg.lower()
                     and s.name == name), None)


def substitute_env(value: Any, env: dict[str, str]) -> Any:
    """`${NAME}` / `${NAME:-default}` in every string, so a config can point at Azurite on a random port."""
    if isinstance(value, str):
        def repl(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set (used as ${{{name}}} in the config)")
        return _ENV.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env) for v in value]
    return value


def parse_config(raw: dict, *, base_dir: Path, env: dict[str, str] | None = None) -> EmulatorConfig:
    """Validate a loaded document; relative model paths resolve against the config file's folder."""
    data = substitute_env(raw, dict(os.environ) if env is None else env)
    try:
        config = EmulatorConfig.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid emulator config: {problems}") from None
    return _resolve_paths(config, base_dir)


def load_config(path: Path, env: dict[str, str] | None = None) -> EmulatorConfig:
    """Read a `.json`, `.yaml` or `.yml` config file."""
    return parse_config(read_document(path), base_dir=path.resolve().parent, env=env)


def read_document(path: Path) -> dict:
    """A config file's top-level mapping (JSON by extension, else YAML); ConfigError says what is wrong."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"config {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must hold a mapping at top level")
    return raw


def _resolve_paths(config: EmulatorConfig, base_dir: Path) -> EmulatorConfig:
    def fix(svc):
        if svc.initial_model is None or svc.initial_model.is_absolute():
            return svc
        return svc.model_copy(update={"initial_model": (base_dir / svc.initial_model).resolve()})

    workspaces = [w.model_copy(update={"predictive_services": [fix(s) for s in w.predictive_services]})
                  for w in config.workspaces]
    arm = config.arm
    if arm is not None:
        arm = arm.model_copy(update={"web_services": [fix(s) for s in arm.web_services]})
    return config.model_copy(update={"workspaces": workspaces, "arm": arm})
