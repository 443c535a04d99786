"""Azure Monitor metrics of online endpoints: `RequestsPerMinute` by deployment and status code, as Azure offers them.

Azure records every scoring request of a managed online endpoint in Azure Monitor; a rollout reads
them with `GET {endpoint id}/providers/Microsoft.Insights/metrics?metricnames=RequestsPerMinute&
aggregation=Total&interval=PT1M&timespan=<start>/<end>&$filter=deployment eq 'green' and
statusCodeClass eq '*'`. This module keeps the requests this server scored (time, deployment,
status; mirrored copies too, as Azure counts them on the shadow deployment) and answers that query
in Azure Monitor's shape: one time series per value of each dimension asked with `'*'`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends, Request

from .assets import ws_of
from .context import Context, context
from .errors import BadRequest, NotFound
from .web import WS, require_token

router = APIRouter(dependencies=[Depends(require_token)])
METRICS = ("RequestsPerMinute",)
DIMENSIONS = {"deployment": "deployment", "statuscode": "statusCode", "statuscodeclass": "statusCodeClass"}
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_INTERVAL = re.compile(r"^PT(\d+)([MH])$", re.IGNORECASE)


def _timespan(text: str | None) -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    if not text:
        return now - timedelta(hours=1), now
    try:
        start, end = (datetime.fromisoformat(p.strip().replace("Z", "+00:00")) for p in text.split("/", 1))
    except ValueError:
        raise BadRequest(f"timespan '{text}' is not <start>/<end> in ISO 8601.", code="BadRequest") from None
    start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    end = end if end.tzinfo else end.replace(tzinfo=timezone.utc)
    if end < start:
        raise BadRequest("timespan ends before it starts.", code="BadRequest")
    return start, end


def _filters(text: str | None) -> dict[str, str]:
    """`deployment eq 'x' and statusCodeClass eq '*'` -> {"deployment": "x", "statusCodeClass": "*"}."""
    found: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", text or "", flags=re.IGNORECASE) if text else []:
        match = _CLAUSE.match(clause)
        if not match or match.group(1).lower() not in DIMENSIONS:
            raise BadRequest(f"$filter clause '{clause}' is not <dimension> eq '<value>' with a dimension of "
                             f"{', '.join(DIMENSIONS.values())}.", code="BadRequest")
        found[DIMENSIONS[match.group(1).lower()]] = match.group(2)
    return found


def _dimensions(deployment: str, status: int) -> dict[str, str]:
    return {"deployment": deployment, "statusCode": str(status), "statusCodeClass": f"{status // 100}xx"}


@router.get(WS + "/onlineEndpoints/{name}/providers/Microsoft.Insights/metrics", name="online.metrics")
def metrics(sub: str, rg: str, ws: str, name: str, request: Request, ctx: Context = Depends(context)) -> dict:
    w = ws_of(ctx, sub, rg, ws)
    endpoint_id = f"{w.arm_id}/onlineEndpoints/{name}"
    if ctx.store.get("online", f"{w.arm_id}/{name}") is None:
        raise NotFound(f"The endpoint '{name}' does not exist.", code="ResourceNotFound")
    q = request.query_params
    names = [n.strip() for n in (q.get("metricnames") or "RequestsPerMinute").split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise BadRequest(f"Failed to find metric configuration for {', '.join(unknown)}; this service offers "
                         f"{', '.join(METRICS)}.", code="BadRequest")
    aggregation = (q.get("aggregation") or "Total").strip()
    if aggregation.lower() not in ("total", "count"):
        raise BadRequest(f"aggregation '{aggregation}' is not offered; use Total.", code="BadRequest")
    match = _INTERVAL.match(q.get("interval") or "PT1M")
    if not match:
        raise BadRequest("interval must be PT<n>M or PT<n>H.", code="BadRequest")
    step = timedelta(minutes=int(match.group(1)) * (60 if match.group(2).upper() == "H" else 1))
    start, end = _timespan(q.get("timespan"))
    wanted = _filters(q.get("$filter"))
    split = [d for d, v in wanted.items() if v == "*"]
    fixed = {d: v for d, v in wanted.items() if v != "*"}
    series: dict[tuple, dict[int, int]] = {}
    for at, _, deployment, status in ctx.serving.requests.between(name, start.timestamp(), end.timestamp()):
        dims = _dimensions(deployment, status)
        if any(dims[d].lower() != v.lower() for d, v in fixed.items()):
            continue
        bucket = int((at - start.timestamp()) // step.total_seconds())
        counts = series.setdefault(tuple(dims[d] for d in split), {})
        counts[bucket] = counts.get(bucket, 0) + 1
    buckets = max(1, int(-(-(end - start).total_seconds() // step.total_seconds())))
    timeseries = [{"metadatavalues": [{"name": {"value": d.lower(), "localizedValue": d}, "value": v}
                                      for d, v in zip(split, key)],
                   "data": [{"timeStamp": (start + i * step).isoformat(), "total": float(counts.get(i, 0))}
                            for i in range(buckets)]}
                  for key, counts in sorted(series.items())]
    return {"cost": 0, "timespan": f"{start.isoformat()}/{end.isoformat()}", "interval": f"PT{int(step.total_seconds() // 60)}M",
            "namespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints", "resourceregion": w.location,
            "value": [{"id": f"{endpoint_id}/providers/Microsoft.Insights/metrics/{n}", "type": "Microsoft.Insights/metrics",
                       "name": {"value": n, "localizedValue": "Requests Per Minute"}, "unit": "Count",
                       "displayDescription": "The number of requests sent to the online endpoint within a minute",
                       "errorCode": "Success", "timeseries": timeseries} for n in names]}
