"""Studio (classic) web services: the spec the `classic` and `arm` kinds share, and its definition fields.

Both kinds swap a trained-model resource in one verified write (write-once PATCH/PUT, read back), so
a promotion and a rollback are that one call: `WholeUpdate` turns it into the serving protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from retrain.definition_fields import http_url, setting
from retrain.http import redact_url
from retrain.locations import BlobLocation

from .base import Progress, Release

KINDS = ("classic", "arm")
FIELDS = frozenset({"url", "resource_name", "key_setting"})


@dataclass(frozen=True)
class EndpointSpec:
    """Where a model is served and which trained-model resource of it gets replaced."""

    kind: str  # "classic" | "arm"
    url: str  # classic: .../workspaces/{ws}/webservices/{svc}/endpoints/{ep}; arm: .../Microsoft.MachineLearning/webServices/{name}
    resource_name: str  # e.g. "Census Model [trained model]"
    key_setting: str | None = None  # classic: app setting holding the workspace token or endpoint key
    name: str | None = None  # label for records; default derived from the URL

    def to_json(self) -> dict:
        return {"kind": self.kind, "url": self.url, "resource_name": self.resource_name,
                "key_setting": self.key_setting, "name": self.name}

    def problems(self) -> list[str]:
        """What is wrong with this spec (empty when usable); the model registry reports these with the rest."""
        problems = []
        if self.kind not in KINDS:
            problems.append(f"endpoint kind {self.kind!r} is not one of {', '.join(KINDS)}")
        parts = urlsplit(self.url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"endpoint URL {redact_url(self.url or '')!r} is not an http(s) URL")
        if not (self.resource_name or "").strip():
            problems.append("endpoint resource_name (the trained model's resource name) is empty")
        if self.kind == "classic" and not self.key_setting:
            problems.append("a classic endpoint needs key_setting: the app setting holding its workspace token "
                            "or endpoint key")
        return problems

    @property
    def label(self) -> str:
        """`name`, else the endpoint's (classic) or web service's (arm) own name from the URL."""
        if self.name:
            return self.name
        segments = [s for s in urlsplit(self.url or "").path.split("/") if s]
        return segments[-1] if segments else (self.url or "endpoint")


@dataclass(frozen=True)
class UpdateOutcome:
    """What an update did: `served` is the model uri (no SAS) the endpoint reports afterwards."""

    endpoint: str
    changed: bool  # False: it already served that model and nothing was written
    served: str


class EndpointUpdater(Protocol):
    """One kind of serving endpoint that can swap its trained model."""

    def current_model(self) -> str | None:
        """The model uri (no SAS) it serves now, None if it reports none."""
        ...

    def update(self, model: BlobLocation) -> UpdateOutcome:
        """Serve `model`; no write when it already does; verified by reading back."""
        ...


class WholeUpdate:
    """A kind whose update is one verified call: promote and restore both make it, done at once."""

    def promote(self, release: Release, state: dict) -> Progress:
        if release.blob is None:
            raise ValueError(f"{self!r} serves Studio (classic) models; run {release.run_id} made none")
        outcome = self.update(release.blob)
        return Progress({"changed": outcome.changed, "served": outcome.served}, done=True)

    restore = promote

    def served(self) -> str | None:
        return self.current_model()


def parse(kind: str, item: dict, where: str, problems: list[str]) -> EndpointSpec:
    """A classic endpoint or ARM web service from its definition fields (problems appended)."""
    url = http_url(item.get("url"), f"{where}.url", problems)
    resource = item.get("resource_name")
    if not isinstance(resource, str) or not resource.strip():
        problems.append(f"{where}.resource_name: the trained model's resource name, "
                        "e.g. 'Census Model [trained model]'")
    key_setting = item.get("key_setting")
    if kind == "classic":
        key_setting = setting(key_setting, f"{where}.key_setting", problems)
    elif key_setting is not None:
        problems.append(f"{where}.key_setting: ARM endpoints use the app's Azure AD identity, not a key")
    return EndpointSpec(kind=kind, url=url, resource_name=resource or "", key_setting=key_setting,
                        name=item.get("name"))
