"""The events table: subscriptions (one partition) and deliveries (a partition per subscription, newest first).

Deliveries: `PartitionKey = d~<subscription>`, `RowKey = <inverted event time>~<event id>`, so one
delivery exists per event and subscription (insert-only) and a subscription's deliveries page in O(page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from ..errors import ConcurrentUpdate, UnknownSubscription
from ..tables import Page, inverted, key_range_page
from .model import MAX_EVENT, Event
from .subscriptions import Subscription

SUBSCRIPTIONS = "~subs"
MAX_ANSWER = 1000  # characters of a receiver's answer kept


class DeliveryStatus(str, Enum):
    PENDING = "pending"  # an attempt is due (or under way)
    DELIVERED = "delivered"  # a 2xx answer
    GONE = "gone"  # the receiver answered 410: the subscription was disabled
    DEAD_LETTERED = "dead_lettered"  # every attempt failed, or it cannot be sent; `reason` says why


def delivery_partition(subscription: str) -> str:
    return f"d~{subscription}"


def delivery_key(event: Event) -> str:
    return f"{inverted(event.time)}~{event.id}"


@dataclass(frozen=True)
class Delivery:
    """One event to one subscription (or the Event Grid sink): its status, attempts and the last answer."""

    subscription: str
    event: Event
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_status: int | None = None  # the HTTP status of the last answer (None: no answer, e.g. a timeout)
    last_answer: str = ""
    last_attempt_at: str = ""
    next_attempt_at: str = ""
    delivered_at: str = ""
    reason: str = ""
    created_at: str = ""
    etag: str | None = None

    @property
    def key(self) -> str:
        return delivery_key(self.event)

    def to_entity(self) -> dict:
        return {"PartitionKey": delivery_partition(self.subscription), "RowKey": self.key,
                "Event": self.event.body()[:MAX_EVENT], "EventId": self.event.id, "EventType": self.event.type.value,
                "Status": self.status.value, "Attempts": self.attempts,
                "LastStatus": -1 if self.last_status is None else self.last_status,
                "LastAnswer": self.last_answer[:MAX_ANSWER], "LastAttemptAt": self.last_attempt_at,
                "NextAttemptAt": self.next_attempt_at, "DeliveredAt": self.delivered_at,
                "Reason": self.reason[:MAX_ANSWER], "CreatedAt": self.created_at}

    @classmethod
    def from_entity(cls, e: dict) -> "Delivery":
        last = int(e.get("LastStatus", -1))
        return cls(e["PartitionKey"].removeprefix("d~"), Event.from_json(json.loads(e["Event"])),
                   DeliveryStatus(e.get("Status", "pending")), int(e.get("Attempts", 0)), None if last < 0 else last,
                   e.get("LastAnswer", ""), e.get("LastAttemptAt", ""), e.get("NextAttemptAt", ""),
                   e.get("DeliveredAt", ""), e.get("Reason", ""), e.get("CreatedAt", ""), e.metadata.get("etag"))

    def to_public(self) -> dict[str, Any]:
        return {"subscription": self.subscription, "id": self.key, "event_id": self.event.id,
                "event_type": self.event.type.value, "subject": self.event.subject, "event_time": self.event.time,
                "status": self.status.value, "attempts": self.attempts,
                "last_answer": {"status": self.last_status, "body": self.last_answer or None,
                                "at": self.last_attempt_at or None} if self.attempts else None,
                "next_attempt_at": self.next_attempt_at or None, "delivered_at": self.delivered_at or None,
                "reason": self.reason or None, "created_at": self.created_at, "event": self.event.to_json(),
                "links": {"redeliver": f"/api/subscriptions/{self.subscription}/deliveries/{self.key}/redeliver"}}


class EventStore:
    """Subscriptions and deliveries; every change an insert-only create or an If-Match write."""

    def __init__(self, table: TableClient, clock: Callable):
        self.table = table
        self.clock = clock

    # --- subscriptions -----------------------------------------------------------------------

    def put_subscription(self, sub: Subscription) -> tuple[Subscription, bool]:
        """Create or redefine (keeping its creation time); (stored, created)."""
        from ..runs import iso
        now = iso(self.clock())
        current = self.find_subscription(sub.name)
        stored = replace(sub, created_at=current.created_at if current else now, updated_at=now)
        self.table.upsert_entity(stored.to_entity(SUBSCRIPTIONS), mode=UpdateMode.REPLACE)
        return stored, current is None

    def find_subscription(self, name: str) -> Subscription | None:
        try:
            return Subscription.from_entity(self.table.get_entity(SUBSCRIPTIONS, name))
        except ResourceNotFoundError:
            return None

    def subscription(self, name: str) -> Subscription:
        sub = self.find_subscription(name)
        if sub is None:
            raise UnknownSubscription(f"no subscription named {name!r}")
        return sub

    def subscriptions(self) -> list[Subscription]:
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": SUBSCRIPTIONS})
        return [Subscription.from_entity(e) for e in rows]

    def delete_subscription(self, name: str) -> None:
        self.subscription(name)
        self.table.delete_entity(SUBSCRIPTIONS, name)

    def save_subscription(self, sub: Subscription) -> Subscription:
        from ..runs import iso
        sub = replace(sub, updated_at=iso(self.clock()))
        try:
            self.table.update_entity(sub.to_entity(SUBSCRIPTIONS), mode=UpdateMode.REPLACE, etag=sub.etag,
                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentUpdate(f"subscription {sub.name!r} changed since it was read") from None
        return sub

    # --- deliveries --------------------------------------------------------------------------

    def create_delivery(self, delivery: Delivery) -> tuple[Delivery, bool]:
        """Insert-only: one delivery per event and subscription; (stored, created)."""
        try:
            meta = self.table.create_entity(delivery.to_entity())
            return replace(delivery, etag=meta.get("etag")), True
        except ResourceExistsError:
            return self.delivery(delivery.subscription, delivery.key), False

    def delivery(self, subscription: str, key: str) -> Delivery:
        try:
            return Delivery.from_entity(self.table.get_entity(delivery_partition(subscription), key))
        except ResourceNotFoundError:
            raise UnknownSubscription(f"subscription {subscription!r} has no delivery {key!r}") from None

    def save_delivery(self, delivery: Delivery) -> Delivery:
        try:
            meta = self.table.update_entity(delivery.to_entity(), mode=UpdateMode.REPLACE, etag=delivery.etag,
                                            match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentUpdate(f"delivery {delivery.key} changed since it was read") from None
        return replace(delivery, etag=meta.get("etag"))

    def deliveries(self, subscription: str, *, limit: int = 50, continuation: str | None = None) -> Page:
        """Newest event first, one request per page."""
        return key_range_page(self.table, delivery_partition(subscription), "0", "~", limit, continuation,
                              Delivery.from_entity)
