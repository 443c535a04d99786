"""Blob locations as the ML service's wire format spells them, with the SAS kept apart so it is never persisted."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class BlobLocation:
    """`BaseLocation + RelativeLocation + SasBlobToken`, e.g. a trained model's `.ilearner`."""

    base_location: str  # "https://acct.blob.core.windows.net/" (always ends with "/")
    relative_location: str  # "container/path/model.ilearner" (no leading "/"), URL-encoded: part of a URL
    sas_token: str = ""  # "?sv=..."; a credential: never stored, never logged

    def __post_init__(self):
        base = self.base_location if self.base_location.endswith("/") else self.base_location + "/"
        object.__setattr__(self, "base_location", base)
        object.__setattr__(self, "relative_location", self.relative_location.lstrip("/"))
        if self.sas_token and not self.sas_token.startswith("?"):
            object.__setattr__(self, "sas_token", "?" + self.sas_token)

    @property
    def uri(self) -> str:
        """The blob's address without credentials: safe to store and show."""
        return self.base_location + self.relative_location

    @property
    def url(self) -> str:
        """The address a service can read from (carries the SAS)."""
        return self.uri + self.sas_token

    @classmethod
    def of_blob(cls, base_location: str, container: str, blob: str) -> "BlobLocation":
        """A blob by its own name (spaces, `#`, `?`, `%`, unicode), encoded so the wire URL names exactly it."""
        return cls(base_location, f"{container}/{quote(blob, safe='/')}")

    @property
    def container(self) -> str:
        return unquote(self.relative_location.split("/", 1)[0])

    @property
    def blob_name(self) -> str:
        """The blob's own (decoded) name."""
        return unquote(self.relative_location.split("/", 1)[1]) if "/" in self.relative_location else ""

    def with_sas(self, sas_token: str) -> "BlobLocation":
        return replace(self, sas_token=sas_token)

    def to_wire(self) -> dict[str, str]:
        """The `{BaseLocation, RelativeLocation, SasBlobToken}` object BES and the endpoint PATCH take."""
        return {"BaseLocation": self.base_location, "RelativeLocation": self.relative_location,
                "SasBlobToken": self.sas_token}

    @classmethod
    def from_wire(cls, obj: dict) -> "BlobLocation":
        return cls(obj.get("BaseLocation") or "", obj.get("RelativeLocation") or "",
                   obj.get("SasBlobToken") or "")

    def to_record(self) -> dict[str, str]:
        """What table storage keeps: the location, never the SAS."""
        return {"base_location": self.base_location, "relative_location": self.relative_location}

    @classmethod
    def from_record(cls, obj: dict) -> "BlobLocation":
        return cls(obj["base_location"], obj["relative_location"])

    def __repr__(self) -> str:  # keep SAS tokens out of logs and tracebacks
        return f"BlobLocation({self.uri!r}, sas={'yes' if self.sas_token else 'no'})"

    __str__ = __repr__
