"""An Azure ML workspace named by its ARM id, optionally on an explicit ARM base URL (a sovereign cloud, the local service)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from retrain.errors import InvalidModelDefinition

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.()\-]{0,89}"
ARM_ID = re.compile(r"^/subscriptions/(?P<sub>[0-9A-Za-z\-]{1,64})/resourceGroups/(?P<rg>" + _SEGMENT + r")"
                    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[A-Za-z0-9][A-Za-z0-9_\-]{1,32})$",
                    re.IGNORECASE)
EXAMPLE = ("/subscriptions/<subscription id>/resourceGroups/<group>/providers/"
           "Microsoft.MachineLearningServices/workspaces/<workspace>")


@dataclass(frozen=True)
class WorkspaceId:
    """`/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}`."""

    subscription: str
    resource_group: str
    name: str
    base_url: str = ""  # "https://host[:port]" when the reference named one; "" means the app's ARM host

    @property
    def path(self) -> str:
        """The ARM id (what ARM paths and MLflow's tracking path are built from)."""
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}")

    @property
    def reference(self) -> str:
        """The form it was given in: the ARM id, or the base URL followed by it."""
        return self.base_url + self.path

    def __str__(self) -> str:
        return self.reference

    @classmethod
    def parse(cls, value: Any, where: str = "workspace") -> "WorkspaceId":
        """The workspace of an ARM id or `https://host[:port]<ARM id>`; InvalidModelDefinition saying the shape."""
        found = cls.problem(value, where)
        if found:
            raise InvalidModelDefinition([found])
        return cls._parse(value)

    @classmethod
    def problem(cls, value: Any, where: str = "workspace") -> str | None:
        """Why `value` is not a workspace reference (None when it is)."""
        wanted = f"{where}: the workspace's ARM id, {EXAMPLE}"
        if not isinstance(value, str) or not value.strip():
            return wanted
        try:
            cls._parse(value)
        except ValueError as e:
            return f"{wanted} ({e})"
        return None

    @classmethod
    def _parse(cls, value: str) -> "WorkspaceId":
        value = value.strip().rstrip("/")
        base = ""
        if not value.startswith("/"):
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError("a URL must be https://host[:port] followed by the ARM id, without a query")
            base, value = f"{parts.scheme}://{parts.netloc}", parts.path
        found = ARM_ID.match(value)
        if not found:
            raise ValueError("not in that shape")
        return cls(found["sub"], found["rg"], found["ws"], base)
