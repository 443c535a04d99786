"""External writes (endpoint PATCH, ARM PUT) sent once, and after an ambiguous failure read before any resend."""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

from retrain import http
from retrain.errors import TransientServiceError
from retrain.http import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")


def write_once(write: Callable[[RetryPolicy], T], applied: Callable[[], bool], *, retry: RetryPolicy,
               what: str) -> T | None:
    """Send `write` without in-call retries; when its answer is lost, ask `applied()` before sending again.

    A timeout, a dropped connection or a 5xx after the request went out may hide a write the service
    did apply ("applied, then 503"): resending blindly would apply it twice. Returns the write's
    response, or None when a read showed the earlier attempt took. Raises the last failure when the
    write still has not taken after `retry.attempts` tries.
    """
    single = RetryPolicy(attempts=1, backoff=retry.backoff, max_backoff=retry.max_backoff, budget=retry.budget)
    for attempt in range(retry.attempts):
        try:
            return write(single)
        except TransientServiceError as failure:
            if applied():
                log.warning("%s: the answer was lost (%s) but the write took; not sent again", what, failure)
                return None
            if attempt + 1 >= retry.attempts:
                raise
            wait = failure.retry_after if failure.retry_after is not None else retry.delay(attempt)
            if wait > retry.budget:
                raise
            log.warning("%s failed (%s) and did not take; sending again in %.2fs", what, failure, wait)
            http._sleep(wait)
    raise AssertionError("unreachable")
