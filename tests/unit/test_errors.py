"""Error types carry their HTTP status and their envelope's extra fields (retrain/errors.py, api.error_response)."""

from __future__ import annotations

import pytest

from retrain import api, errors

STATUS = {"SettingsError": 500, "InvalidModelDefinition": 400, "DestinationNotAllowed": 400, "SecretNotAllowed": 400,
          "Unauthenticated": 401, "Forbidden": 403, "UnknownModel": 404, "UnknownRun": 404, "InvalidDataRef": 400,
          "DataNotFound": 404, "NoTrainingData": 409, "Conflict": 409, "InvalidSubscription": 400,
          "UnknownSubscription": 404, "BadRequest": 400, "UnusableModel": 409, "RollbackFailed": 502,
          "ServiceError": 502, "TransientServiceError": 502, "PermanentServiceError": 502,
          "ConcurrentUpdate": 409, "StorageUnavailable": 503}


@pytest.mark.parametrize("name,status", sorted(STATUS.items()))
def test_each_error_answers_with_its_status(name, status):
    assert getattr(errors, name).http_status == status


@pytest.mark.parametrize("error,details", [
    (errors.InvalidModelDefinition(["a: bad", "b: worse"]), {"problems": ["a: bad", "b: worse"]}),
    (errors.Forbidden("approving needs Retrain.Approver", role="Retrain.Approver"), {"role": "Retrain.Approver"}),
    (errors.UnusableModel("census", ["policy: gone"]), {"problems": ["policy: gone"]}),
    (errors.RollbackFailed("eu refused", {"eu": {"ok": False}}), {"endpoints": {"eu": {"ok": False}}}),
    (errors.UnknownRun("no run r1"), {}),
])
def test_the_envelope_carries_the_error_s_details_beside_code_and_message(error, details):
    response = api.error_response(error)
    assert response.status == type(error).http_status
    assert response.body["error"] == {"code": type(error).__name__, "message": str(error), **details}


def test_details_are_attributes_too():
    error = errors.Forbidden("rolling back needs Retrain.Approver", role="Retrain.Approver")
    assert error.role == "Retrain.Approver" and str(error) == "rolling back needs Retrain.Approver"
    assert errors.UnusableModel("census", ["x"]).problems == ["x"]
