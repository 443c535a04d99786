"""What every route needs (config, store, TLS files, job runner, deployments, faults) and the workspace lookup."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request

from emulators.studio.faults import Faults
from emulators.studio.store import Store

from .config import AzureMLConfig, Workspace
from .errors import NotFound
from .tls import TlsFiles

if TYPE_CHECKING:
    from .runner import JobRunner
    from .serving import Serving


@dataclass
class Context:
    """The service's live state, one per app."""

    config: AzureMLConfig
    data_dir: Path
    store: Store
    tls: TlsFiles | None
    faults: Faults
    runner: "JobRunner" = field(default=None)  # type: ignore[assignment]
    serving: "Serving" = field(default=None)  # type: ignore[assignment]
    base_url: str = ""  # https://127.0.0.1:PORT, known once serving
    pending_operations: set[str] | None = None  # provisioning operations in progress (see endpoints.settle)

    def workspace(self, sub: str, rg: str, ws: str) -> Workspace:
        found = self.config.workspace(sub, rg, ws)
        if found is None:
            raise NotFound(f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' under resource "
                           f"group '{rg}' was not found.", code="ResourceNotFound")
        return found

    def tracking_uri(self, ws: Workspace) -> str:
        """The workspace's MLflow tracking URI: this server, Azure's path shape."""
        return f"{self.base_url}/mlflow/v1.0{ws.arm_id}"


def context(request: Request) -> Context:
    return request.app.state.context
