"""The read SAS handed to endpoints for a new model: MODEL_SAS_MINUTES, bounded by the run's deadline."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from retrain.runs import iso
from retrain.settings import Settings
from retrain.steps import model_sas_expiry

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CTX = SimpleNamespace(clock=lambda: NOW, settings=Settings(model_sas_lifetime=timedelta(minutes=60)))


def run_ending(at: datetime):
    return SimpleNamespace(deadline=iso(at))


def test_the_model_sas_lives_model_sas_minutes_when_the_deadline_is_later():
    assert model_sas_expiry(CTX, run_ending(NOW + timedelta(hours=2))) == NOW + timedelta(minutes=60)


def test_the_model_sas_ends_with_the_run():
    assert model_sas_expiry(CTX, run_ending(NOW + timedelta(minutes=20))) == NOW + timedelta(minutes=20)


def test_a_run_past_its_deadline_still_gives_the_endpoint_five_minutes():
    assert model_sas_expiry(CTX, run_ending(NOW - timedelta(minutes=1))) == NOW + timedelta(minutes=5)
