"""No data left behind: each model's newest blob gets a run even when its trigger never fired.

Event Grid can drop an event, a storage outage can eat a trigger, a crash can lose an acknowledged run
row. The sweeper therefore lists each model's prefix and starts a run (trigger `reconcile`) for the newest
usable blob version when none exists; the run id makes this a no-op when the trigger did fire.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from azure.core.exceptions import AzureError

from . import chain, triggers
from .context import Context
from .errors import NoTrainingData, RetrainError
from .runs import Trigger, run_id_for

log = logging.getLogger("retrain")


@dataclass(frozen=True)
class Reconciled:
    model: str
    blob: str
    run_id: str
    status: str

    def __str__(self) -> str:
        return f"{self.model}: {self.blob} had no run; started {self.run_id} ({self.status})"


def reconcile(ctx: Context) -> list[Reconciled]:
    """Start a run for every model whose newest blob version has none; what was started."""
    started = []
    for model in ctx.models.list():
        try:
            data = triggers.newest_data(ctx, model)
            if ctx.runs.find(model.name, run_id_for(model.name, data)) is not None:
                continue
            result = chain.start(ctx, model.name, data, Trigger.RECONCILE, state=model)
        except NoTrainingData:
            continue
        except (RetrainError, AzureError) as e:
            log.warning("reconcile: model=%s: %s", model.name, e)
            continue
        if result.created:
            found = Reconciled(model.name, data.path, result.run.run_id, result.run.status.value)
            log.warning("reconcile: %s", found)
            started.append(found)
    return started
