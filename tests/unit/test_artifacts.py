"""A trained model as stored: blob records (old and new rows alike) and Azure ML job outputs / model versions."""

from __future__ import annotations

import json

from retrain.artifacts import AzureMLModel, artifact_from_record
from retrain.locations import BlobLocation
from retrain.model_rows import ChampionRecord
from retrain.promotions import Promotion, Reason

WS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
OLD_LOCATION = {"base_location": "https://acct.blob.core.windows.net/",
                "relative_location": "models/census/r1/1/model.ilearner"}


def test_an_old_champion_row_reads_as_a_blob_location():
    champion = ChampionRecord.from_json({"run_id": "r1", "location": OLD_LOCATION, "metrics": {"AUC": 0.8},
                                         "since": "2026-01-01T00:00:00Z"})
    assert champion.location == BlobLocation(OLD_LOCATION["base_location"], OLD_LOCATION["relative_location"])
    assert champion.to_json()["location"] == OLD_LOCATION  # written back in the same shape


def test_an_old_promotion_row_reads_as_a_blob_location():
    row = {"PartitionKey": "census", "RowKey": "r1", "FromRun": "", "ToRun": "r1", "Reason": "policy",
           "At": "2026-01-01T00:00:00Z", "Location": json.dumps(OLD_LOCATION)}
    assert Promotion.from_entity(row).location.uri == OLD_LOCATION["base_location"] + OLD_LOCATION["relative_location"]


def test_an_azureml_model_round_trips_through_a_champion_row():
    model = AzureMLModel(WS, "census-r1-1", "model").with_version("census", "3")
    champion = ChampionRecord("r1", model, {"auc": 0.9}, "2026-01-01T00:00:00Z")
    again = ChampionRecord.from_json(json.loads(json.dumps(champion.to_json())))
    assert again.location == model and again.location.asset == "azureml:census:3"


def test_an_azureml_promotion_keeps_the_job_output_uri():
    model = AzureMLModel(WS, "census-r1-1", "model")
    promotion = Promotion("census", "r1", None, "r1", model, Reason.POLICY, "2026-01-01T00:00:00Z")
    again = Promotion.from_entity(promotion.to_entity())
    assert again.location.uri == "azureml://jobs/census-r1-1/outputs/model" and not again.location.registered


def test_an_unregistered_output_is_referred_to_by_its_job_output_uri():
    assert artifact_from_record({"kind": "azureml", "workspace": WS, "job": "j", "output": "m"}).asset == \
        "azureml://jobs/j/outputs/m"
