"""A model's stored row: its definition plus live state (champion, active and pending run), read tolerantly.

A row written under older validation rules may no longer validate; it is read as a `BrokenModel` that
carries its problems, so one bad row never stops a trigger, the sweeper or a listing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .definitions import ModelDefinition
from .errors import InvalidModelDefinition
from .artifacts import Artifact, artifact_from_record
from .policy import Champion

PARTITION = "model"


@dataclass(frozen=True)
class ChampionRecord:
    """The model in production: which run made it, where it lives, and its own metrics."""

    run_id: str
    location: Artifact  # a blob (Studio classic) or an Azure ML job output / model version
    metrics: dict[str, float]
    since: str

    def as_policy_champion(self) -> Champion:
        return Champion(run_id=self.run_id, metrics=dict(self.metrics))

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "location": self.location.to_record(), "metrics": self.metrics,
                "since": self.since}

    @classmethod
    def from_json(cls, obj: dict) -> "ChampionRecord":
        return cls(obj["run_id"], artifact_from_record(obj["location"]), obj.get("metrics") or {},
                   obj.get("since", ""))


@dataclass(frozen=True)
class ModelState:
    """A model row: definition plus live state, with the ETag it was read at."""

    definition: ModelDefinition
    champion: ChampionRecord | None = None
    active_run: str | None = None
    pending_run: str | None = None
    created_at: str = ""
    updated_at: str = ""
    etag: str | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    def to_entity(self) -> dict:
        return {"PartitionKey": PARTITION, "RowKey": self.name,
                "Definition": json.dumps(self.definition.to_json(), separators=(",", ":")),
                "Champion": json.dumps(self.champion.to_json()) if self.champion else "",
                "ActiveRun": self.active_run or "", "PendingRun": self.pending_run or "",
                "CreatedAt": self.created_at, "UpdatedAt": self.updated_at}

    @classmethod
    def from_entity(cls, entity: dict) -> "ModelState":
        """Strict: raises InvalidModelDefinition (or ValueError) if the row no longer validates."""
        body = json.loads(entity["Definition"])
        definition = ModelDefinition.from_json(entity["RowKey"], body)
        champion = ChampionRecord.from_json(json.loads(entity["Champion"])) if entity.get("Champion") else None
        return cls(definition, champion, entity.get("ActiveRun") or None, entity.get("PendingRun") or None,
                   entity.get("CreatedAt", ""), entity.get("UpdatedAt", ""), entity.metadata.get("etag"))

    def to_public(self) -> dict:
        from .views import model_view  # the API's shape lives with the other public views
        return model_view(self)


@dataclass(frozen=True)
class BrokenModel:
    """A stored model row that no longer validates: shown with its problems, skipped by triggers and sweeper."""

    name: str
    problems: tuple[str, ...]
    active_run: str | None = None
    pending_run: str | None = None
    created_at: str = ""
    updated_at: str = ""
    etag: str | None = None


def read_row(entity: Any) -> ModelState | BrokenModel:
    """A model row as stored, never raising for content that fails today's rules."""
    try:
        return ModelState.from_entity(entity)
    except InvalidModelDefinition as e:
        problems = tuple(e.problems)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        problems = (f"the stored row cannot be read ({type(e).__name__}: {str(e)[:200]})",)
    return BrokenModel(entity["RowKey"], problems, entity.get("ActiveRun") or None, entity.get("PendingRun") or None,
                       entity.get("CreatedAt", ""), entity.get("UpdatedAt", ""), entity.metadata.get("etag"))
