"""What every route needs (config, store, job pool, model files, faults) and the 404 lookups of the URL's names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from .config import EmulatorConfig, PredictiveService, TrainingService, Workspace
from .errors import NotFound
from .faults import Faults
from .jobs import JobRunner
from .models import ModelFiles
from .store import Store


@dataclass
class Context:
    """The emulator's live state, one per app."""

    config: EmulatorConfig
    data_dir: Path
    store: Store
    runner: JobRunner
    models: ModelFiles
    faults: Faults

    def workspace(self, ws: str) -> Workspace:
        found = self.config.workspace(ws)
        if found is None:
            raise NotFound("WorkspaceNotFound", f"The workspace '{ws}' does not exist.")
        return found

    def training(self, ws: str, svc: str) -> TrainingService:
        found = next((s for s in self.workspace(ws).training_services if s.id == svc), None)
        if found is None:
            raise NotFound("WebServiceNotFound", f"The training web service '{svc}' does not exist in workspace '{ws}'.")
        return found

    def predictive(self, ws: str, svc: str) -> PredictiveService:
        found = next((s for s in self.workspace(ws).predictive_services if s.id == svc), None)
        if found is None:
            raise NotFound("WebServiceNotFound", f"The web service '{svc}' does not exist in workspace '{ws}'.")
        return found

    def web_service(self, ws: str, svc: str) -> TrainingService | PredictiveService:
        workspace = self.workspace(ws)
        for s in [*workspace.predictive_services, *workspace.training_services]:
            if s.id == svc:
                return s
        raise NotFound("WebServiceNotFound", f"The web service '{svc}' does not exist in workspace '{ws}'.")


def context(request: Request) -> Context:
    return request.app.state.context
