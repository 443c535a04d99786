"""A trained model as runs, champions and promotions record it: a blob (Studio classic `.ilearner`) or an Azure ML job output.

Stored records carry `kind`; a record without one is a blob location (rows written before Azure ML),
so old rows read unchanged. Records never hold a SAS or a token.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Union

from .locations import BlobLocation

AZUREML = "azureml"


@dataclass(frozen=True)
class AzureMLModel:
    """A model a job wrote (`azureml://jobs/<job>/outputs/<output>`), and once registered its name and version."""

    workspace: str  # the workspace reference (ARM id, or base URL + ARM id) the job ran in
    job: str
    output: str
    model_name: str = ""
    model_version: str = ""

    @property
    def uri(self) -> str:
        """The job output's datastore-independent address (what a model version's `modelUri` is)."""
        return f"azureml://jobs/{self.job}/outputs/{self.output}"

    @property
    def registered(self) -> bool:
        return bool(self.model_name and self.model_version)

    @property
    def asset(self) -> str:
        """`azureml:name:version` once registered (the form deployments and job inputs take), else the job output's URI."""
        return f"azureml:{self.model_name}:{self.model_version}" if self.registered else self.uri

    def with_version(self, name: str, version: str) -> "AzureMLModel":
        """The same output, registered as model `name` version `version`."""
        return replace(self, model_name=name, model_version=str(version))

    def to_record(self) -> dict[str, str]:
        record = {"kind": AZUREML, "workspace": self.workspace, "job": self.job, "output": self.output}
        if self.registered:
            record.update(model_name=self.model_name, model_version=self.model_version)
        return record

    @classmethod
    def from_record(cls, obj: Mapping[str, Any]) -> "AzureMLModel":
        return cls(str(obj["workspace"]), str(obj["job"]), str(obj["output"]), str(obj.get("model_name") or ""),
                   str(obj.get("model_version") or ""))


Artifact = Union[BlobLocation, AzureMLModel]


def artifact_from_record(obj: Mapping[str, Any]) -> Artifact:
    """The artifact a stored record names; no `kind` (older rows) or `kind: blob` is a blob location."""
    if obj.get("kind") == AZUREML:
        return AzureMLModel.from_record(obj)
    return BlobLocation.from_record(dict(obj))


def artifact_to_record(artifact: Artifact) -> dict[str, str]:
    """What table storage keeps (blob records keep their old shape, so older readers still read them)."""
    return artifact.to_record()
