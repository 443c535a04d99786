"""Every kind of serving endpoint by its `kind` name: the one table definitions, the loop and the API read."""

from __future__ import annotations

from . import arm_webservice, azureml_batch, azureml_online, classic
from .base import EndpointKind

KINDS: dict[str, EndpointKind] = {k.name: k for k in (classic.KIND, arm_webservice.KIND, azureml_online.KIND,
                                                      azureml_batch.KIND)}


def kind_of(name: str) -> EndpointKind:
    return KINDS[name]
