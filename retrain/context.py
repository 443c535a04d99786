"""Everything a step needs (settings, stores, queues, service clients), built once per process."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Mapping

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError

from . import migrate
from .audit import AuditLog
from .azureml.arm import ArmClient
from .azureml.workspace import WorkspaceId
from .bes import BesClient
from .endpoints import EndpointSpec, EndpointUpdater, updater_for
from .serving.base import ServingDeps, ServingTarget
from .serving.documents import BlobDocuments
from .serving.kinds import kind_of
from .events.sender import QUEUE as EVENTS_QUEUE, EventQueue
from .events.sinks import EventGridSink
from .events.store import EventStore
from .identity import STATIC_TOKEN_SETTING, StaticTokenCredential, arm_credential
from .errors import SettingsError
from .http import RetryPolicy, new_session
from .models import ModelDefinition, ModelRegistry
from .outbound import OutboundRules, arm_host
from .secrets import SecretRule
from .promotions import PromotionLog
from .queues import StepQueues
from .runs import RunStore
from .settings import Settings
from .skipped import SkippedLog
from .storage import Connection, Storage

if TYPE_CHECKING:
    from .training import TrainingService


@dataclass
class Context:
    settings: Settings
    storage: Storage
    env: Mapping[str, str]
    session: requests.Session = field(default_factory=new_session)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    credential: Callable[[], TokenCredential] | None = None  # the ARM identity; from settings when None
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # the one clock every timestamp comes from

    def __post_init__(self):
        prefix = self.settings.table_prefix
        tables = self.storage.tables
        now = lambda: self.clock()  # noqa: E731  (late-bound: a test may replace the clock)
        self.models = ModelRegistry(tables.get_table_client(f"{prefix}models"), clock=now)
        self.runs = RunStore(tables.get_table_client(f"{prefix}runs"), clock=now)
        self.promotions = PromotionLog(tables.get_table_client(f"{prefix}promotions"))
        self.skipped = SkippedLog(tables.get_table_client(f"{prefix}skipped"), self.settings.training_container)
        self.audit = AuditLog(tables.get_table_client(f"{prefix}audit"))
        self.queues = StepQueues(self.storage)
        self.events = EventStore(tables.get_table_client(f"{prefix}events"), now)
        self.event_queue = EventQueue(self.storage.queue(EVENTS_QUEUE))
        self._eventgrid: EventGridSink | None = None
        if self.credential is None:
            static = (self.env.get(STATIC_TOKEN_SETTING) or "").strip()
            self.credential = (lambda: StaticTokenCredential(static)) if static else arm_credential
        self._azureml_clients: dict[tuple, ArmClient] = {}
        self._clients_lock = threading.Lock()
        self._ready = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kw) -> "Context":
        env = os.environ if env is None else env
        settings = Settings.from_env(env)
        return cls(settings, Storage(Connection.from_env(settings.connection, env)), env, **kw)

    def ensure(self) -> "Context":
        """Create tables, queues and containers the first time (idempotent; cheap after that)."""
        if self._ready:
            return self
        for table in (self.models.table, self.runs.table, self.promotions.table, self.skipped.table,
                      self.audit.table, self.events.table):
            try:
                table.create_table()
            except ResourceExistsError:
                pass
        migrate.ensure_layout(self)
        self.queues.ensure()
        self.event_queue.ensure()
        for container in (self.settings.training_container, self.settings.output_container):
            try:
                self.storage.blobs.create_container(container)
            except ResourceExistsError:
                pass
        self._ready = True
        return self

    def secret(self, setting: str, purpose: str) -> str:
        """An API key by the name of the app setting holding it; the value never leaves this call's caller."""
        SecretRule.from_env(self.env).require(setting, purpose)
        value = (self.env.get(setting) or "").strip()
        if not value:
            raise SettingsError(f"app setting {setting!r} ({purpose}) is not set")
        if value.startswith("@Microsoft.KeyVault("):
            raise SettingsError(f"app setting {setting!r} ({purpose}) is an unresolved Key Vault reference: "
                                "check the secret exists and the app's identity may read it")
        return value

    def eventgrid_sink(self) -> EventGridSink:
        """The Event Grid publisher, made on first use (key from a secret setting, else the app's identity)."""
        if self._eventgrid is None:
            self._eventgrid = EventGridSink(self.env)
        return self._eventgrid

    def outbound(self) -> OutboundRules:
        """The host allow-list as the settings say now (re-read on every call: settings may change)."""
        return OutboundRules.from_env(self.env)

    def bes(self, definition: ModelDefinition) -> BesClient:
        self.outbound().require(definition.training.url, "bes", f"model {definition.name!r} training.url")
        key = self.secret(definition.training.key_setting, f"API key of model {definition.name!r}'s training service")
        return BesClient(definition.training.url, key, session=self.session, retry=self.retry)

    def training(self, definition: ModelDefinition) -> "TrainingService":
        """The training service of the definition's kind (Studio classic BES, Azure ML jobs)."""
        from .training import service_for
        return service_for(self, definition)

    def azureml(self, workspace: WorkspaceId | str, *, timeout: float = 300.0, **options) -> ArmClient:
        """The ARM/MLflow client of one Azure ML workspace, kept per process (its token and workspace read are reused)."""
        ws = workspace if isinstance(workspace, WorkspaceId) else WorkspaceId.parse(workspace)
        key = (ws.reference, timeout, tuple(sorted(options.items())))
        with self._clients_lock:
            client = self._azureml_clients.get(key)
            if client is None:
                base = ws.base_url or f"https://{arm_host(self.env)}"
                client = ArmClient(ws, self.credential(), base_url=base, rules=self.outbound, session=self.session,
                                   retry=self.retry, timeout=timeout, **options)
                self._azureml_clients[key] = client
        return client

    def updater(self, spec: EndpointSpec, *, arm_timeout: float = 300.0) -> EndpointUpdater:
        self.outbound().require(spec.url, spec.kind, f"endpoint {spec.name!r} url")
        return updater_for(spec, secret=lambda name: self.secret(name, f"key of endpoint {spec.name!r}"),
                           credential=self.credential, session=self.session, retry=self.retry,
                           arm_timeout=arm_timeout)

    def serving(self, spec, *, arm_timeout: float = 300.0, rollout=None) -> ServingTarget:
        """The serving target for an endpoint of any kind, its URL checked against the outbound rule first."""
        kind = kind_of(spec.kind)
        self.outbound().require(spec.url, kind.service_kind, f"endpoint {spec.name!r} url")
        deps = ServingDeps(secret=lambda name: self.secret(name, f"key of endpoint {spec.name!r}"),
                           credential=self.credential, session=self.session, retry=self.retry, clock=self.clock,
                           arm_timeout=arm_timeout, rollout=rollout,
                           allowed=lambda url, service, where: self.outbound().require(url, service, where),
                           azureml=lambda ws, **options: self.azureml(ws, timeout=arm_timeout, **options),
                           documents=BlobDocuments(self.storage.blobs, self.settings.output_container))
        return kind.target(spec, deps)


_context: Context | None = None
_lock = threading.Lock()


def get_context() -> Context:
    """The process-wide context, created on first use (SDK clients are meant to be reused)."""
    global _context
    with _lock:
        if _context is None:
            _context = Context.from_env().ensure()
        return _context


def set_context(context: Context | None) -> None:
    """Replace the process-wide context (tests, or a host that builds its own); None forgets it."""
    global _context
    with _lock:
        _context = context
