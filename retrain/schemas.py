"""JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the public views in `views.py`; tests hold real answers to them."""

from __future__ import annotations

from typing import Any

from .runs import Status, Trigger

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, *, extra: bool = False) -> Schema:
    """An object whose `required` keys are always present; `extra` allows keys later versions may add."""
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required),
            "additionalProperties": extra}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STR, INT, BOOL, NUM = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}
TIME = {"type": "string", "description": "ISO 8601, UTC"}
METRICS = {"type": "object", "additionalProperties": NUM, "description": "metric name -> value"}
LINKS = {"type": "object", "additionalProperties": STR}

CHECK = obj({"kind": STR, "threshold": nullable(NUM), "actual": nullable(NUM), "passed": BOOL, "text": STR},
            extra=True)
RULE_VERDICT = obj({"metric": STR, "direction": STR, "required": BOOL, "challenger": nullable(NUM),
                    "champion": nullable(NUM), "passed": BOOL, "checks": {"type": "array", "items": CHECK}},
                   extra=True)

SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": obj({"code": STR, "message": STR},
                               {"problems": {"type": "array", "items": STR}, "endpoints": {"type": "object"},
                                "role": STR}, extra=True)}),
    "EndpointOutcome": obj({"ok": BOOL, "kind": nullable(STR), "changed": nullable(BOOL), "served": nullable(STR),
                            "error": nullable(STR), "at": nullable(STR)},
                           {"phase": nullable(STR), "note": nullable(STR), "deployment": nullable(STR),
                            "previous": nullable(STR), "model_id": nullable(STR),
                            "traffic": nullable({"type": "object", "additionalProperties": INT,
                                                 "description": "deployment -> percent, as read back"}),
                            "previous_traffic": nullable({"type": "object", "additionalProperties": INT}),
                            "waiting": BOOL}),
    "Decision": obj({"passed": BOOL, "summary": STR, "basis": nullable(STR)},
                    {"champion_run_id": nullable(STR), "challenger_metrics": METRICS,
                     "champion_metrics": nullable(METRICS), "unreadable_metrics": {"type": "array", "items": STR},
                     "rules": {"type": "array", "items": RULE_VERDICT}}),
    "Run": obj({
        "run_id": STR, "model": STR, "status": {"enum": [s.value for s in Status]}, "terminal": BOOL,
        "reason": STR, "error": nullable(STR), "trigger": {"enum": [t.value for t in Trigger]},
        "data": obj({"container": STR, "name": STR, "etag": STR, "size": nullable(INT),
                     "last_modified": nullable(STR)}),
        "created_at": TIME, "updated_at": nullable(TIME), "deadline": STR, "ended_at": nullable(TIME),
        "step_times": {"type": "object", "additionalProperties": STR, "description": "status -> when entered"},
        "attempt": INT, "job_id": nullable(STR), "baseline_run": nullable(STR), "metrics": METRICS,
        "decision": nullable(ref("Decision")),
        "endpoints": {"type": "object", "additionalProperties": ref("EndpointOutcome")},
        "approval_expires_at": nullable(STR), "decided_by": nullable(STR), "decision_comment": nullable(STR),
        "trace_id": nullable(STR),
        "links": LINKS}, extra=True),
    "ModelDefinition": {"type": "object", "description": "README 'Model definitions': training, endpoints, "
                        "policy (docs/policy.md), data_prefix, schedule, description",
                        "required": ["training"], "properties": {
                            "training": {"type": "object"}, "endpoints": {"type": "array"},
                            "policy": {"type": "object"}, "data_prefix": STR, "schedule": BOOL,
                            "description": STR}},
    "Model": {"type": "object", "required": ["name", "valid", "problems", "champion", "active_run", "pending_run",
                                             "links"],
              "properties": {"name": STR, "valid": BOOL, "problems": {"type": "array", "items": STR},
                             "description": STR, "training": {"type": "object"}, "endpoints": {"type": "array"},
                             "policy": {"type": "object"}, "data_prefix": STR, "schedule": BOOL,
                             "champion": nullable(obj({"run_id": STR, "model_uri": STR, "metrics": METRICS,
                                                       "since": STR})),
                             "active_run": nullable(STR), "pending_run": nullable(STR),
                             "created_at": nullable(STR), "updated_at": nullable(STR), "links": LINKS,
                             "warnings": {"type": "array", "items": STR}}},
    "Promotion": obj({"id": STR, "model": STR, "from_run": nullable(STR), "to_run": STR, "model_uri": STR,
                      "reason": {"enum": ["policy", "approval", "rollback"]}, "at": TIME, "by": STR, "note": STR,
                      "endpoints": {"type": "object", "additionalProperties": ref("EndpointOutcome")},
                      "actor": nullable(ref("Actor"))}, extra=True),
    "Skipped": {"type": "object", "description": "a blob no model claimed"},
    "Actor": obj({"kind": {"enum": ["user", "application", "function_key"]}, "id": STR, "name": STR,
                  "provider": STR, "roles": {"type": "array", "items": STR}, "note": STR}),
    "AuditEntry": obj({"action": STR, "at": TIME, "target": nullable(STR), "by": ref("Actor")}),
    "AuditPage": obj({"model": STR, "audit": {"type": "array", "items": ref("AuditEntry")},
                      "continuation": nullable(STR), "next": nullable(STR)}),
    "ModelList": obj({"models": {"type": "array", "items": ref("Model")}}),
    "RunPage": obj({"model": STR, "runs": {"type": "array", "items": ref("Run")},
                    "continuation": nullable(STR), "next": nullable(STR)}),
    "PromotionPage": obj({"model": STR, "promotions": {"type": "array", "items": ref("Promotion")},
                          "continuation": nullable(STR), "next": nullable(STR)}),
    "SkippedPage": obj({"skipped": {"type": "array", "items": ref("Skipped")},
                        "continuation": nullable(STR), "next": nullable(STR)}),
    "RetrainRequest": obj({}, {"blob": {**STR, "description": "a blob inside the training container; "
                                        "default: the newest under the model's data prefix"}}),
    "RetrainAccepted": obj({"run": ref("Run"), "duplicate": BOOL, "message": STR}),
    "RunActionRequest": obj({}, {"by": {**STR, "maxLength": 100, "description": "free-text note on who asks"},
                                 "comment": {**STR, "maxLength": 1000,
                                             "description": "why (recorded in the run's reason)"}}),
    "RollbackRequest": obj({}, {"to_run": {**STR, "description": "a run that once served; default: the "
                                           "model that served before the champion"},
                                "by": {**STR, "maxLength": 100}, "note": {**STR, "maxLength": 1000}}),
    "RollbackResult": obj({"model": STR, "promotion": ref("Promotion")}),
    "SubscriptionDefinition": obj({"url": STR, "secret_setting": {**STR, "description": "the app setting "
                                                                      "holding the signing secret (secret rule)"}},
                                  {"event_types": nullable({"type": "array", "items": STR}), "model": nullable(STR),
                                   "description": STR}),
    "Subscription": obj({"name": STR, "url": STR, "secret_setting": STR,
                         "event_types": nullable({"type": "array", "items": STR}), "model": nullable(STR),
                         "enabled": BOOL, "links": LINKS},
                        {"description": STR, "disabled_reason": nullable(STR), "created_at": nullable(TIME),
                         "updated_at": nullable(TIME), "warnings": {"type": "array", "items": STR}}),
    "SubscriptionList": obj({"subscriptions": {"type": "array", "items": ref("Subscription")},
                             "eventgrid": nullable({"type": "object"})}),
    "Delivery": obj({"subscription": STR, "id": STR, "event_id": STR, "event_type": STR, "status": STR,
                     "attempts": INT, "links": LINKS}, extra=True),
    "DeliveryPage": obj({"subscription": STR, "deliveries": {"type": "array", "items": ref("Delivery")},
                         "continuation": nullable(STR), "next": nullable(STR)}),
    "Deleted": obj({"name": STR, "deleted": BOOL}),
    "OpenApiDocument": {"type": "object", "description": "this document"},
}
