"""The `classic` kind: a Studio (classic) web service endpoint on management.azureml.net (PATCH its Resources)."""

from __future__ import annotations

from typing import Any

import requests

from retrain.errors import TransientServiceError, VerificationFailed
from retrain.http import RetryPolicy, new_session, redact_url, send
from retrain.locations import BlobLocation
from retrain.write_once import write_once

from .base import EndpointKind
from .studio import FIELDS, EndpointSpec, UpdateOutcome, WholeUpdate, parse


class ClassicEndpoint(WholeUpdate):
    """A classic web service endpoint on management.azureml.net (PATCH its Resources, key auth)."""

    def __init__(self, spec: EndpointSpec, api_key: str, *, session: requests.Session | None = None,
                 retry: RetryPolicy = RetryPolicy()):
        self.spec = spec
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._session = session or new_session()
        self._retry = retry

    def __repr__(self) -> str:
        return f"ClassicEndpoint({redact_url(self.spec.url)!r})"

    def current_model(self) -> str | None:
        """The uri of the resource named `spec.resource_name` (case-insensitive), None if absent."""
        resource = self._resource(self._get())
        return _location_uri(resource.get("Location")) if resource else None

    def update(self, model: BlobLocation) -> UpdateOutcome:
        """GET; PATCH only if it serves something else; GET again to verify."""
        before = self._get()
        resource = self._resource(before)
        if resource and _location_uri(resource.get("Location")) == model.uri:
            return UpdateOutcome(self.spec.label, False, model.uri)
        # Use the endpoint's own spelling of the name when it differs only in case.
        name = resource.get("Name") if resource else self.spec.resource_name
        body = {"Resources": [{"Name": name, "Location": model.to_wire()}]}
        write_once(lambda retry: send(self._session, "PATCH", self.spec.url, headers=self._headers, json=body,
                                      retry=retry, idempotent=False),
                   lambda: self.current_model() == model.uri, retry=self._retry,
                   what=f"PATCH {redact_url(self.spec.url)}")
        served = self.current_model()
        if served != model.uri:
            raise VerificationFailed(f"endpoint {self.spec.label} accepted the update but reports "
                                     f"{served!r} instead of {model.uri!r}")
        return UpdateOutcome(self.spec.label, True, served)

    def _get(self) -> dict:
        response = send(self._session, "GET", self.spec.url, headers=self._headers, retry=self._retry,
                        idempotent=True, expect_json=True)
        body = response.json()
        if not isinstance(body, dict):
            raise TransientServiceError(f"GET {redact_url(self.spec.url)} returned a "
                                        f"{type(body).__name__}, not an endpoint object",
                                        status=response.status_code)
        return body

    def _resource(self, endpoint: dict) -> dict | None:
        wanted = self.spec.resource_name.strip().casefold()
        for resource in endpoint.get("Resources") or []:
            if isinstance(resource, dict) and str(resource.get("Name", "")).strip().casefold() == wanted:
                return resource
        return None


def _location_uri(location: Any) -> str | None:
    """A classic resource Location (object or URL string) as a uri without SAS."""
    if isinstance(location, dict):
        loc = BlobLocation.from_wire(location)
        return loc.uri if loc.relative_location else None
    if isinstance(location, str) and location:
        return redact_url(location)
    return None



def _target(spec: EndpointSpec, deps) -> ClassicEndpoint:
    return ClassicEndpoint(spec, deps.secret(spec.key_setting), session=deps.session, retry=deps.retry)


KIND = EndpointKind("classic", FIELDS, lambda item, where, problems: parse("classic", item, where, problems),
                    _target, service_kind="classic")
