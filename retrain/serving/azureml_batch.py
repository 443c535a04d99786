"""The `azureml_batch` kind: an Azure ML batch endpoint, promoted by a new batch deployment made its default.

Phases as for online endpoints (register -> deploy -> provision), then `switch`: the endpoint's
`defaults.deploymentName` is PUT and read back; then `retire`. Batch endpoints split no traffic, so
there is no canary: the default deployment takes every new batch job. A rollback makes the earlier
deployment the default again (re-created from its recorded settings if it was deleted).
"""

from __future__ import annotations

from retrain.azureml.arm import KIND as AZUREML

from .azureml_online import FIELDS, AzureMLOnlineEndpoint, Busy, _settings, parse, workspace_of
from .base import EndpointKind, Progress, Release


class AzureMLBatchEndpoint(AzureMLOnlineEndpoint):
    """One batch endpoint; shares the online endpoint's register/deploy/provision/retire phases."""

    def served(self) -> str | None:
        dep = self._default()
        found = self.arm.get(self._dep_url(dep)) if dep else None
        return (((found or {}).get("properties") or {}).get("model") or {}).get("assetId") if found else None

    def _remember_previous(self, state: dict) -> None:
        dep = self._default()
        state["previous_traffic"] = {dep: 100} if dep and dep != state["deployment"] else {}
        found = self.arm.get(self._dep_url(dep)) if state["previous_traffic"] else None
        if found is not None:
            state["previous"] = dep
            self._keep(state, "previous_settings", _settings(found, None))

    def _body(self, state: dict) -> dict | str:
        body = super()._body(state)
        if isinstance(body, dict):
            body["properties"]["model"] = {"referenceType": "Id", "assetId": state["model_id"]}
        return body

    def _provision(self, release: Release, state: dict) -> Progress:
        progress = super()._provision(release, state)
        if progress.state.get("phase") in ("smoke", "mirror", "traffic"):
            progress.state["phase"] = "switch"  # batch deployments take no sample rows and no traffic split
        return progress

    def _switch(self, release: Release, state: dict) -> Progress:
        if not self._set_default(state["deployment"]):
            return Progress(state, wait=1.0)
        state["default"] = state["deployment"]
        return self._next(state, "retire")

    def _set_default(self, dep: str) -> bool:
        """True once the endpoint reads back `dep` as its default; PUT it when it shows another."""
        endpoint = self._endpoint()
        props = endpoint.get("properties") or {}
        if (props.get("defaults") or {}).get("deploymentName") == dep:
            return props.get("provisioningState") in (None, "Succeeded")
        if props.get("provisioningState") in ("Creating", "Updating", "Deleting"):
            raise Busy(f"endpoint {self.spec.endpoint} is {props['provisioningState']}", 1.0)
        body = {"location": endpoint.get("location"), "tags": endpoint.get("tags") or {},
                "properties": {"authMode": props.get("authMode"), "description": props.get("description"),
                               "properties": props.get("properties") or {}, "defaults": {"deploymentName": dep}}}
        if endpoint.get("identity"):
            body["identity"] = endpoint["identity"]
        self.arm.put(self.spec.path, body)
        return False

    def _set_traffic(self, state: dict, traffic: dict, mirror: dict) -> bool:
        """A revert or restore: the deployment with the traffic becomes the default again."""
        dep = max(traffic, key=lambda d: traffic[d]) if traffic else None
        return True if dep is None else self._set_default(dep)

    def _default(self) -> str | None:
        return ((self._endpoint().get("properties") or {}).get("defaults") or {}).get("deploymentName")

    def _deployments(self) -> list[dict]:
        default = self._default()
        return [d for d in super()._deployments() if d.get("name") != default]


def _target(spec, deps) -> AzureMLBatchEndpoint:
    return AzureMLBatchEndpoint(spec, workspace_of(spec, deps), deps)


KIND = EndpointKind("azureml_batch", FIELDS,
                    lambda item, where, problems: parse("azureml_batch", "batchEndpoints", item, where, problems),
                    _target, service_kind=AZUREML, serialised=True)
