"""Studio (classic) endpoint updaters, now in `retrain.serving`; the names earlier modules and tests import."""

from __future__ import annotations

from typing import Callable

import requests
from azure.core.credentials import TokenCredential

from retrain.errors import InvalidModelDefinition
from retrain.http import RetryPolicy
from retrain.identity import ARM_SCOPE, StaticTokenCredential, arm_credential  # noqa: F401  (re-exported)
from retrain.serving.arm_webservice import ARM_API_VERSION, ArmWebService  # noqa: F401
from retrain.serving.base import ServingDeps
from retrain.serving.classic import ClassicEndpoint  # noqa: F401
from retrain.serving.kinds import kind_of
from retrain.serving.studio import KINDS, EndpointSpec, EndpointUpdater, UpdateOutcome  # noqa: F401


def updater_for(spec: EndpointSpec, *, secret: Callable[[str], str], credential: Callable[[], TokenCredential],
                session: requests.Session | None = None, retry: RetryPolicy | None = None,
                arm_timeout: float = 300.0) -> EndpointUpdater:
    """The updater for `spec.kind`; `secret(name)` reads an app setting, `credential()` gives the ARM identity.

    `arm_timeout` bounds the wait for provisioning (an HTTP-triggered rollback must answer within 230 s).
    """
    problems = spec.problems()
    if problems:
        raise InvalidModelDefinition(problems)
    deps = ServingDeps(secret=secret, credential=credential, session=session, retry=retry or RetryPolicy(),
                       clock=lambda: None, arm_timeout=arm_timeout)
    return kind_of(spec.kind).target(spec, deps)
