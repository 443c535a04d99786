"""The workspace config (YAML or JSON): token, storage, workspaces with datastores, code folders, environments."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emulators.studio import config as studio_config
from emulators.studio.errors import ConfigError as StudioConfigError

from .errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Storage(_Strict):
    """The storage account behind every datastore (Azurite, or a real account)."""

    connection_string: str


class Workspace(_Strict):
    """One Azure ML workspace: its ARM coordinates and what is registered in it from the start."""

    subscription: str
    resource_group: str
    name: str
    location: str = "westeurope"
    datastores: dict[str, str] = Field(default_factory=lambda: {"workspaceblobstore": "azureml"})
    default_datastore: str = "workspaceblobstore"
    code: dict[str, Path] = Field(default_factory=dict)  # code asset name -> local folder (every version)
    environments: list[str] = Field(default_factory=list)  # registered names (any version resolves)
    computes: list[str] = Field(default_factory=lambda: ["cpu-cluster"])

    @model_validator(mode="after")
    def _default_is_a_datastore(self) -> "Workspace":
        if self.default_datastore not in self.datastores:
            raise ValueError(f"workspace {self.name!r}: default_datastore {self.default_datastore!r} "
                             f"is not in datastores {sorted(self.datastores)}")
        for name in [*self.datastores, *self.code, *self.environments, *self.computes]:
            if not _NAME.match(name):
                raise ValueError(f"workspace {self.name!r}: {name!r} is not a valid asset name")
        return self

    def matches(self, sub: str, rg: str, ws: str) -> bool:
        return self.subscription == sub and self.resource_group.lower() == rg.lower() and self.name == ws

    @property
    def arm_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}")


class AzureMLConfig(_Strict):
    """The whole file."""

    token: str  # the static bearer token ARM and MLflow calls must carry
    storage: Storage
    workspaces: list[Workspace]
    provisioning_seconds: float = Field(0.5, ge=0)  # how long endpoints/deployments stay Creating/Updating
    job_python: str | None = None  # interpreter that runs `python` in job commands (default: this one)
    max_log_lines: int = Field(20, ge=1)  # last lines of a failed job's log shown in its error

    @field_validator("workspaces")
    @classmethod
    def _unique(cls, value: list[Workspace]) -> list[Workspace]:
        keys = [(w.subscription, w.resource_group.lower(), w.name) for w in value]
        if len(set(keys)) != len(keys):
            raise ValueError("two workspaces share subscription, resource group and name")
        if not value:
            raise ValueError("at least one workspace is needed")
        return value

    def workspace(self, sub: str, rg: str, ws: str) -> Workspace | None:
        return next((w for w in self.workspaces if w.matches(sub, rg, ws)), None)


def parse_config(raw: dict, *, base_dir: Path, env: dict[str, str] | None = None) -> AzureMLConfig:
    """Validate a loaded document; `${NAME:-default}` from the environment; code folders resolve against base_dir."""
    try:
        data = studio_config.substitute_env(raw, dict(os.environ) if env is None else env)
    except StudioConfigError as e:
        raise ConfigError(str(e)) from None
    try:
        config = AzureMLConfig.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid azureml emulator config: {problems}") from None
    workspaces = []
    for w in config.workspaces:
        code = {name: (folder if folder.is_absolute() else (base_dir / folder)).resolve()
                for name, folder in w.code.items()}
        for name, folder in code.items():
            if not folder.is_dir():
                raise ConfigError(f"workspace {w.name!r}: code {name!r} folder {folder} does not exist")
        workspaces.append(w.model_copy(update={"code": code}))
    return config.model_copy(update={"workspaces": workspaces})


def load_config(path: Path, env: dict[str, str] | None = None) -> AzureMLConfig:
    """Read a `.json`, `.yaml` or `.yml` config file."""
    try:
        raw = studio_config.read_document(path)
    except StudioConfigError as e:
        raise ConfigError(str(e)) from None
    return parse_config(raw, base_dir=path.resolve().parent, env=env)
