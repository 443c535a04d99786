"""App settings, read once from the environment and validated so a misconfiguration fails at start-up, by name."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

from .errors import SettingsError

_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,40}$")


@dataclass(frozen=True)
class Settings:
    """Everything the chain needs to know that is not per model."""

    connection: str = "RETRAIN_STORAGE"  # the storage connection setting; function_app.py binds to this name too
    training_container: str = "training-data"  # watched by the blob trigger
    output_container: str = "retrain-outputs"  # BES writes here; never inside the watched container
    table_prefix: str = "retrain"  # tables {prefix}models, {prefix}runs, {prefix}promotions
    run_timeout: timedelta = timedelta(hours=2)  # a run not terminal by then is cancelled and failed
    check_initial_delay: float = 5.0  # seconds before the first status check
    check_max_delay: float = 300.0  # back-off cap between status checks
    transient_retry_limit: int = 8  # step redeliveries after transient service errors before the run fails
    sweep_grace: timedelta = timedelta(minutes=5)  # how late a step may be before the sweeper re-drives it
    model_sas_lifetime: timedelta = timedelta(hours=1)  # read SAS handed to endpoints for the new model

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        problems: list[str] = []

        def text(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        def number(name: str, default: float, minimum: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not a number")
                return default
            if value < minimum:
                problems.append(f"{name}={raw!r} must be at least {minimum:g}")
                return default
            return value

        settings = cls(
            training_container=text("TRAINING_CONTAINER", cls.training_container),
            output_container=text("OUTPUT_CONTAINER", cls.output_container),
            table_prefix=text("RETRAIN_TABLE_PREFIX", cls.table_prefix),
            run_timeout=timedelta(minutes=number("RUN_TIMEOUT_MINUTES", 120, 1)),
            check_initial_delay=number("CHECK_INITIAL_DELAY_SECONDS", cls.check_initial_delay, 0),
            check_max_delay=number("CHECK_MAX_DELAY_SECONDS", cls.check_max_delay, 1),
            transient_retry_limit=int(number("TRANSIENT_RETRY_LIMIT", cls.transient_retry_limit, 0)),
            sweep_grace=timedelta(seconds=number("SWEEP_GRACE_SECONDS", 300, 10)),
            model_sas_lifetime=timedelta(minutes=number("MODEL_SAS_MINUTES", 60, 5)),
        )
        for name, value in (("TRAINING_CONTAINER", settings.training_container),
                            ("OUTPUT_CONTAINER", settings.output_container)):
            if not _CONTAINER.match(value):
                problems.append(f"{name}={value!r} is not a valid container name "
                                "(3-63 lowercase letters, digits and single hyphens)")
        if settings.training_container == settings.output_container:
            problems.append("OUTPUT_CONTAINER must differ from TRAINING_CONTAINER: outputs written into "
                            "the watched container would trigger new runs")
        if not _TABLE_PREFIX.match(settings.table_prefix):
            problems.append(f"RETRAIN_TABLE_PREFIX={settings.table_prefix!r} must be letters and digits, "
                            "starting with a letter")
        if problems:
            raise SettingsError("Invalid app settings: " + "; ".join(problems))
        return settings
