"""The registry of models: one row per model, a data-prefix index beside it, every change an ETag compare-and-swap.

Layout of the models table, all in one partition (so a definition and its index row change in one
entity-group transaction):

* `RowKey = <model name>`: the model row (`retrain.model_rows`);
* `RowKey = ~prefix~<sha256(data_prefix)>~<model name>`: which model claims a data prefix. A blob
  event looks up only the prefixes of its own name (one query per 7 path levels, whatever the
  number of models), then reads the candidate's row and checks it still claims that prefix. The
  index row is written in the same transaction as the definition, so a model registered a moment
  ago is found; a row left behind by a redefinition is ignored by that check and removed.
* `RowKey = ~layout`: the storage layout version (`retrain.migrate`).

Model names are `[a-z0-9-]`, so every model row sorts before `~`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

# Stable names for the modules that imported them from here before the split.
from .definitions import ModelDefinition, check_model_name  # noqa: F401
from .errors import ConcurrentUpdate, UnknownModel, UnusableModel
from .model_rows import PARTITION, BrokenModel, ChampionRecord, ModelState, read_row  # noqa: F401

log = logging.getLogger("retrain")

INDEX = "~prefix~"
MODEL_ROWS_END = "~"  # every model row's RowKey sorts before this
RANGES_PER_QUERY = 7  # a Table filter allows 15 comparisons: PartitionKey + 7 RowKey ranges


def prefix_key(prefix: str, model: str = "") -> str:
    return f"{INDEX}{hashlib.sha256(prefix.encode()).hexdigest()[:40]}~{model}"


def prefix_row(prefix: str, model: str) -> dict:
    return {"PartitionKey": PARTITION, "RowKey": prefix_key(prefix, model), "Prefix": prefix, "Model": model}


def candidate_prefixes(blob_name: str) -> list[str]:
    """Every data prefix that could own a blob: its directory paths (a data_prefix always ends with '/')."""
    parts = blob_name.split("/")[:-1]
    return ["/".join(parts[:i]) + "/" for i in range(len(parts), 0, -1)]


class ModelRegistry:
    """The models table; every change is an ETag compare-and-swap."""

    def __init__(self, table: TableClient, *, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.table = table
        self.clock = clock

    def _now(self) -> str:
        return self.clock().isoformat()

    def read(self, name: str) -> ModelState | BrokenModel:
        """The row as stored, valid or not."""
        try:
            return read_row(self.table.get_entity(PARTITION, name))
        except ResourceNotFoundError:
            raise UnknownModel(f"no model named {name!r} is registered") from None

    def get(self, name: str) -> ModelState:
        row = self.read(name)
        if isinstance(row, BrokenModel):
            raise UnusableModel(name, list(row.problems))
        return row

    def list_all(self) -> list[ModelState | BrokenModel]:
        """Every model row, valid or not, by name (one query per 1,000 models)."""
        rows = self.table.query_entities("PartitionKey eq @pk and RowKey lt @end",
                                         parameters={"pk": PARTITION, "end": MODEL_ROWS_END})
        return sorted((read_row(e) for e in rows), key=lambda m: m.name)

    def list(self) -> list[ModelState]:
        """The models that validate; a broken row is logged and left out."""
        models = []
        for row in self.list_all():
            if isinstance(row, BrokenModel):
                log.warning("model %r skipped: its stored definition no longer validates: %s", row.name,
                            "; ".join(row.problems))
            else:
                models.append(row)
        return models

    def put(self, definition: ModelDefinition) -> tuple[ModelState, bool]:
        """Create, or replace the definition while keeping live state; returns (state, created)."""
        now = self._now()
        state = ModelState(definition, created_at=now, updated_at=now)
        try:
            self.table.submit_transaction([("create", state.to_entity()),
                                           ("upsert", prefix_row(definition.data_prefix, definition.name))])
            return self.get(definition.name), True
        except TableTransactionError as e:
            if e.index != 0 or "exist" not in str(e.error_code or e).lower():
                raise
        row = self.read(definition.name)
        if isinstance(row, BrokenModel):
            return self._repair(row, definition), False
        return self.update(definition.name, lambda m: replace(m, definition=definition), current=row), False

    def _repair(self, broken: BrokenModel, definition: ModelDefinition) -> ModelState:
        """A stored row that no longer validates gets the new definition; its live state is kept as stored."""
        entity = {"PartitionKey": PARTITION, "RowKey": broken.name, "UpdatedAt": self._now(),
                  "Definition": ModelState(definition).to_entity()["Definition"]}
        try:
            self.table.submit_transaction([
                ("update", entity, {"mode": UpdateMode.MERGE, "etag": broken.etag,
                                    "match_condition": MatchConditions.IfNotModified}),
                ("upsert", prefix_row(definition.data_prefix, definition.name))])
        except TableTransactionError:
            raise ConcurrentUpdate(f"model {broken.name!r} changed while its definition was replaced") from None
        return self.get(broken.name)

    def update(self, name: str, change: Callable[[ModelState], ModelState | None], *,
               current: ModelState | None = None, attempts: int = 10) -> ModelState:
        """Apply `change` and write it with If-Match, re-reading only after a lost race.

        `current` is a state the caller just read (saves a read); `change` returns None to leave the row.
        """
        for _ in range(attempts):
            current = current if current is not None and current.etag else self.get(name)
            new = change(current)
            if new is None:
                return current
            new = replace(new, updated_at=self._now())
            try:
                etag = self._write(current, new)
                return replace(new, etag=etag)
            except ResourceModifiedError:
                current = None
        raise ConcurrentUpdate(f"model {name!r} kept changing under {attempts} attempts to update it")

    def _write(self, current: ModelState, new: ModelState) -> str | None:
        """One request; with the prefix index row in the same transaction when the data prefix changes."""
        conditions = {"etag": current.etag, "match_condition": MatchConditions.IfNotModified}
        old, prefix = current.definition.data_prefix, new.definition.data_prefix
        if old == prefix:
            return self.table.update_entity(new.to_entity(), mode=UpdateMode.REPLACE, **conditions).get("etag")
        try:
            results = self.table.submit_transaction([
                ("update", new.to_entity(), {"mode": UpdateMode.REPLACE, **conditions}),
                ("upsert", prefix_row(prefix, new.name))])
        except TableTransactionError as e:
            raise ResourceModifiedError(str(e)) from None
        self._drop_index_row(old, new.name)
        return results[0].get("etag") if results else None

    def _drop_index_row(self, prefix: str, model: str) -> None:
        try:
            self.table.delete_entity(PARTITION, prefix_key(prefix, model))
        except ResourceNotFoundError:
            pass

    def claimants(self, blob_name: str) -> Iterator[tuple[str, str]]:
        """(prefix, model) index rows for the blob's directory prefixes, longest prefix first, then by name."""
        found: list[tuple[str, str]] = []
        prefixes = candidate_prefixes(blob_name)
        for start in range(0, len(prefixes), RANGES_PER_QUERY):
            chunk = prefixes[start:start + RANGES_PER_QUERY]
            params = {"pk": PARTITION}
            ranges = []
            for i, prefix in enumerate(chunk):
                params[f"a{i}"], params[f"b{i}"] = prefix_key(prefix), prefix_key(prefix) + "\U0010ffff"
                ranges.append(f"( RowKey gt @a{i} and RowKey lt @b{i} )")
            query = f"PartitionKey eq @pk and ( {' or '.join(ranges)} )"
            found += [(e["Prefix"], e["Model"]) for e in self.table.query_entities(query, parameters=params)]
        return iter(sorted(found, key=lambda pm: (-len(pm[0]), pm[1])))

    def owner_of(self, blob_name: str) -> ModelState | BrokenModel | None:
        """The model whose data prefix is the longest match for a blob; O(1) requests in the number of models."""
        for prefix, name in self.claimants(blob_name):
            if not blob_name.startswith(prefix):
                continue  # a hash collision is not a claim
            try:
                row = self.read(name)
            except UnknownModel:
                continue
            if isinstance(row, BrokenModel):
                return row
            if row.definition.data_prefix == prefix:
                return row
            self._drop_index_row(prefix, name)  # left by a redefinition whose clean-up did not happen
        return None
