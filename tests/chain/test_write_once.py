"""Endpoint and ARM writes are never resent blindly: a lost answer is followed by a read, not a second write."""

from retrain.rollback import rollback
from retrain.runs import Status

from .conftest import ARM_NAME, RESOURCE
from .test_promotion import arm_served, arm_url, promote_first

LENIENT = {"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]}


class BlobUri:
    @staticmethod
    def of(run) -> str:
        """The uri (no SAS) of the model a run trained."""
        location = run.outputs["model"]
        return location["base_location"] + location["relative_location"]


def _endpoint(world) -> tuple[str, str]:
    spec = world.ctx.models.get(world.model).definition.endpoints[0]
    return spec.url, spec.url.rsplit("/", 1)[1] + "$"


def test_a_patch_applied_then_answered_503_is_sent_once_and_the_run_promotes(world, pump):
    world.register()
    url, path = _endpoint(world)
    world.inject(method="PATCH", path=path, status=503, after=True)
    run = promote_first(world, pump)
    assert len(world.requests_to("PATCH", path)) == 1
    assert world.served_model(url) == BlobUri.of(run)


def test_a_patch_refused_before_it_applied_is_sent_again(world, pump):
    world.register()
    url, path = _endpoint(world)
    world.inject(method="PATCH", path=path, status=503)
    run = promote_first(world, pump)
    assert len(world.requests_to("PATCH", path)) == 2
    assert world.served_model(url) == world.ctx.models.get(world.model).champion.location.uri == \
        BlobUri.of(run)


def test_a_rollback_whose_patch_answer_is_lost_patches_once_and_writes_history(world, pump):
    world.register(policy=LENIENT)
    url, path = _endpoint(world)
    first = promote_first(world, pump, "census/1.csv", seed=1)
    promote_first(world, pump, "census/2.csv", seed=2)
    before = len(world.requests_to("PATCH", path))
    world.inject(method="PATCH", path=path, status=503, after=True)
    result = rollback(world.ctx, world.model, by="erin")
    assert len(world.requests_to("PATCH", path)) == before + 1
    assert result.promotion.to_run == first.run_id and world.served_model(url) == BlobUri.of(first)


def test_an_arm_put_applied_then_answered_503_is_sent_once(world, pump):
    world.register(endpoints=[{"kind": "arm", "url": arm_url(world), "resource_name": RESOURCE}])
    path = f"/webServices/{ARM_NAME}$"
    before = len(world.requests_to("PUT", path))
    world.inject(method="PUT", path=path, status=503, after=True)
    run = promote_first(world, pump)
    assert len(world.requests_to("PUT", path)) == before + 1
    assert run.status is Status.PROMOTED and arm_served(world) == BlobUri.of(run)
