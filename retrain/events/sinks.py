"""Where an event is sent: a Standard Webhooks receiver, or an Event Grid custom topic; one answer type for both."""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping
from urllib.parse import urlsplit

import requests
from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from standardwebhooks.webhooks import Webhook

from ..errors import SettingsError
from . import destination
from .model import Event
from .subscriptions import ALLOWED_HOSTS_SETTING, Subscription, _listed, secret_problem, url_problem

TIMEOUT = (5.0, 15.0)  # connect, read: Standard Webhooks suggests 15-30 s
EVENTGRID_ENDPOINT_SETTING = "EVENTGRID_TOPIC_ENDPOINT"
EVENTGRID_KEY_SETTING = "EVENTGRID_KEY_SETTING"  # names the secret setting holding the topic key (local only)
EVENTGRID_HOSTS = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+\.eventgrid\.azure\.net$")


@dataclass(frozen=True)
class Answer:
    """What a receiver said: `ok` for any 2xx; `gone` for 410; `retry_after` seconds when it asked for a pause."""

    ok: bool
    status: int | None  # None: no answer (timeout, connection refused)
    text: str = ""
    retry_after: float | None = None

    @property
    def gone(self) -> bool:
        return self.status == 410


def retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def signing_key(secret: str) -> Webhook:
    """A `whsec_<base64>` secret (Standard Webhooks' format); any other value is used as raw bytes."""
    try:
        return Webhook(secret)
    except (ValueError, TypeError, RuntimeError):
        return Webhook(secret.encode())


class WebhookSink:
    """POSTs the CloudEvent (structured JSON) signed per Standard Webhooks to the address checked at send time
    (`destination`); never follows redirects."""

    def __init__(self, subscription: Subscription, env: Mapping[str, str], session: requests.Session,
                 resolver: destination.Resolver | None = None):
        self.subscription, self.env, self.session, self.resolver = subscription, env, session, resolver

    def send(self, event: Event, now: datetime) -> Answer:
        problem = url_problem(self.subscription.url, self.env)  # the rules may have changed since registration
        if problem:
            raise SettingsError(f"subscription {self.subscription.name!r}: {problem}")
        body = event.body()
        signature = signing_key(self.subscription.secret(self.env)).sign(event.id, now, body)
        try:
            target = destination.resolve(self.subscription.url, self.env, self.resolver)
        except destination.Refused as e:
            raise SettingsError(f"refused at send time: {e}") from None
        except destination.Unresolved as e:
            return Answer(False, None, f"no answer: {e}")
        headers = {"content-type": "application/json", "webhook-id": event.id,
                   "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
        try:
            response = destination.post(self.session, target, body.encode(), headers, TIMEOUT)
        except requests.RequestException as e:
            return Answer(False, None, f"no answer: {type(e).__name__}")
        return Answer(200 <= response.status_code < 300, response.status_code, response.text[:1000],
                      retry_after(response.headers.get("Retry-After"), now))


def eventgrid_endpoint(env: Mapping[str, str]) -> str | None:
    """The custom topic's endpoint when the Event Grid sink is configured, checked under the host rules."""
    endpoint = (env.get(EVENTGRID_ENDPOINT_SETTING) or "").strip()
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    listed = _listed(env, ALLOWED_HOSTS_SETTING)
    if not (EVENTGRID_HOSTS.match(host) and parts.scheme == "https") and host not in listed \
            and f"{host}:{parts.port}" not in listed:
        raise SettingsError(f"{EVENTGRID_ENDPOINT_SETTING}: host {host!r} is not an Event Grid topic "
                            f"(*.<region>.eventgrid.azure.net over https); to allow it, add it to {ALLOWED_HOSTS_SETTING}")
    if (problem := url_problem(endpoint, env, EVENTGRID_ENDPOINT_SETTING)):
        raise SettingsError(problem)
    return endpoint


class EventGridSink:
    """Publishes the same CloudEvent to a custom topic: a key from a secret setting locally, the app's identity in Azure."""

    def __init__(self, env: Mapping[str, str], credential: TokenCredential | None = None):
        from azure.eventgrid import EventGridPublisherClient
        endpoint = eventgrid_endpoint(env)
        if endpoint is None:
            raise SettingsError(f"{EVENTGRID_ENDPOINT_SETTING} is not set: no Event Grid sink is configured")
        key_setting = (env.get(EVENTGRID_KEY_SETTING) or "").strip()
        if key_setting:
            if (problem := secret_problem(key_setting, env, EVENTGRID_KEY_SETTING)):
                raise SettingsError(problem)
            key = (env.get(key_setting) or "").strip()
            if not key:
                raise SettingsError(f"app setting {key_setting!r} (named by {EVENTGRID_KEY_SETTING}) is not set")
            auth = AzureKeyCredential(key)
        else:
            from azure.identity import DefaultAzureCredential
            auth = credential or DefaultAzureCredential()
        self.client = EventGridPublisherClient(endpoint, auth, connection_timeout=TIMEOUT[0], read_timeout=TIMEOUT[1])

    def send(self, event: Event, now: datetime) -> Answer:
        from azure.core.messaging import CloudEvent
        cloud = CloudEvent(source=event.source, type=event.type.value, data=event.data, subject=event.subject,
                           id=event.id, time=datetime.fromisoformat(event.time), datacontenttype="application/json")
        try:
            self.client.send([cloud])
        except HttpResponseError as e:
            response = getattr(e, "response", None)
            header = response.headers.get("Retry-After") if response is not None else None
            if e.status_code and 200 <= e.status_code < 300:  # accepted; only the answer's body was odd
                return Answer(True, e.status_code, "")
            return Answer(False, e.status_code, str(e.message or e)[:1000], retry_after(header, now))
        except AzureError as e:
            return Answer(False, None, f"no answer: {type(e).__name__}")
        return Answer(True, 200, "")
