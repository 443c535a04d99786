"""What each trigger (blob, HTTP, timer) turns into: a data reference and a started run, or a recorded skip."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from . import chain, etags
from .chain import StartResult
from .context import Context
from .errors import DataNotFound, InvalidDataRef, NoTrainingData
from .models import BrokenModel, ModelState
from .runs import DataRef, Run, Status, Trigger, iso, run_id_for
from .skipped import Skipped

log = logging.getLogger("retrain")

DATA_EXTENSIONS = (".csv", ".tsv")  # dataset formats a BES input reads
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class BlobEvent:
    """A blob as a trigger sees it: a reference, never the content."""

    container: str
    name: str
    etag: str
    size: int
    last_modified: str = ""

    def __post_init__(self):
        object.__setattr__(self, "etag", etags.canonical(self.etag))

    def data_ref(self) -> DataRef:
        return DataRef(self.container, self.name, self.etag, self.size, self.last_modified)

    @classmethod
    def from_client(cls, client) -> "BlobEvent":
        """From the blob trigger's SDK-type binding: one properties request, no download."""
        props = client.get_blob_properties()
        return cls(client.container_name, client.blob_name, props.etag, props.size, iso(props.last_modified))


def check_blob_name(name: str) -> str:
    """A blob name inside the training container, refusing paths that climb out of it or hide characters."""
    if not name or len(name) > 1024:
        raise InvalidDataRef("a blob name of 1 to 1024 characters is required")
    if name.startswith("/") or "\\" in name or _CONTROL.search(name):
        raise InvalidDataRef(f"blob name {name!r} must be relative to the training container, without "
                             "backslashes or control characters")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidDataRef(f"blob name {name!r} has an empty, '.' or '..' path segment")
    return name


def on_blob(ctx: Context, event: BlobEvent) -> StartResult | None:
    """New data landed: start its model's run, or record why it was skipped; never raise for bad input."""
    if event.container != ctx.settings.training_container:
        log.warning("blob %s/%s is not in the training container %r; skipped", event.container, event.name,
                    ctx.settings.training_container)
        return None
    try:
        check_blob_name(event.name)
    except InvalidDataRef as e:
        return _skip(ctx, event, str(e))
    owner = ctx.models.owner_of(event.name)
    if owner is None:
        return _skip(ctx, event, "matches no registered model's data_prefix")
    if isinstance(owner, BrokenModel):
        return _skip(ctx, event, f"its model {owner.name!r} is stored with a definition that no longer validates "
                                 f"({'; '.join(owner.problems)[:500]}); PUT the model's definition again")
    problem = unusable(event.name, event.size)
    if problem:
        return record_skip(ctx, owner.name, event.data_ref(), Trigger.BLOB, problem)
    return chain.start(ctx, owner.name, event.data_ref(), Trigger.BLOB, state=owner)


def _skip(ctx: Context, event: BlobEvent, reason: str) -> None:
    """Not any model's data: logged and recorded (GET /api/skipped), never retried."""
    name = event.name.encode("unicode_escape").decode("ascii")[:1024]
    log.warning("blob %s/%s skipped: %s", event.container, name, reason)
    ctx.skipped.record(Skipped(event.container, name, event.etag, reason, iso(ctx.clock())))
    return None


def unusable(name: str, size: int) -> str | None:
    """Why a blob cannot be training data, or None."""
    if not name.lower().endswith(DATA_EXTENSIONS):
        return f"skipped: {name!r} is not a CSV/TSV dataset (expected one of {', '.join(DATA_EXTENSIONS)})"
    if size == 0:
        return f"skipped: {name!r} is empty"
    return None


def record_skip(ctx: Context, model: str, data: DataRef, trigger: Trigger, reason: str) -> StartResult:
    """A skipped blob still gets a (failed) run, so the user sees it in the model's history; once per ETag."""
    now = ctx.clock()
    run = Run(model=model, run_id=run_id_for(model, data), trigger=trigger, data=data, status=Status.PENDING,
              reason="", created_at=iso(now), deadline=iso(now))
    run, created = chain.finish_new(ctx, run, Status.FAILED, reason)
    log.warning("model=%s blob=%s %s", model, data.path, reason)
    return StartResult(run, created)


def data_ref(ctx: Context, name: str) -> DataRef:
    """A training blob by name, as it is now (ETag, size)."""
    container = ctx.settings.training_container
    try:
        props = ctx.storage.blobs.get_blob_client(container, check_blob_name(name)).get_blob_properties()
    except ResourceNotFoundError:
        raise DataNotFound(f"there is no blob {name!r} in container {container!r}") from None
    return DataRef(container, name, props.etag, props.size, iso(props.last_modified))


def newest_data(ctx: Context, model: ModelState) -> DataRef:
    """The most recently modified usable blob under the model's data prefix."""
    container = ctx.storage.blobs.get_container_client(ctx.settings.training_container)
    newest = None
    for blob in container.list_blobs(name_starts_with=model.definition.data_prefix):
        if unusable(blob.name, blob.size) is None and (
                newest is None or (blob.last_modified, blob.name) > (newest.last_modified, newest.name)):
            newest = blob
    if newest is None:
        raise NoTrainingData(f"no CSV/TSV blob under {container.container_name}/{model.definition.data_prefix}")
    return DataRef(container.container_name, newest.name, newest.etag, newest.size, iso(newest.last_modified))


def retrain_now(ctx: Context, model: str, blob: str | None = None,
                trigger: Trigger = Trigger.HTTP) -> StartResult:
    """Retrain on a named blob or, by default, the newest one under the model's prefix."""
    state = ctx.models.get(model)
    data = data_ref(ctx, blob) if blob else newest_data(ctx, state)
    problem = unusable(data.name, data.size)
    if problem:
        raise InvalidDataRef(problem.removeprefix("skipped: "))
    return chain.start(ctx, model, data, trigger, state=state)


@dataclass(frozen=True)
class ScheduledOutcome:
    model: str
    started: StartResult | None
    message: str


def on_schedule(ctx: Context) -> list[ScheduledOutcome]:
    """Retrain every scheduled model on its newest data; data already trained on starts nothing."""
    outcomes = []
    for model in ctx.models.list():
        if not model.definition.schedule:
            continue
        try:
            data = newest_data(ctx, model)
        except NoTrainingData as e:
            outcomes.append(ScheduledOutcome(model.name, None, str(e)))
            continue
        existing = ctx.runs.find(model.name, run_id_for(model.name, data))
        if existing:
            outcomes.append(ScheduledOutcome(model.name, None, f"no new data since run {existing.run_id} "
                                                               f"({existing.status.value}) on {data.path}"))
            continue
        result = chain.start(ctx, model.name, data, Trigger.TIMER, state=model)
        outcomes.append(ScheduledOutcome(model.name, result, result.message))
    for outcome in outcomes:
        log.info("schedule: model=%s %s", outcome.model, outcome.message)
    return outcomes
