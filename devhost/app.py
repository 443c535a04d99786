"""The app's function index: import the module, find its one FunctionApp, read get_functions() once."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import threading
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from azure.functions.decorators.function_app import FunctionRegister

from .errors import AppLoadError, BindingError

TRIGGERS = ("httpTrigger", "queueTrigger", "blobTrigger", "timerTrigger")
OUTPUTS = ("queue",)          # output bindings devhost writes for the function
CONTEXT_PARAM = "context"     # the worker passes func.Context to a parameter of this name


@dataclass(frozen=True)
class Parameter:
    """One parameter of the user function, with its annotation resolved where possible (else the raw string)."""

    name: str
    annotation: Any = None


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the host indexes it: its bindings (function.json) and the Python callable."""

    name: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    func: Callable[..., Any]
    parameters: tuple[Parameter, ...] = field(default_factory=tuple)

    @property
    def trigger_type(self) -> str:
        return self.trigger["type"]

    @property
    def trigger_param(self) -> Parameter:
        """The parameter the trigger's `name` (arg_name) binds to."""
        return self.parameter(self.trigger["name"])

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise BindingError(f"function {self.name!r}: binding {name!r} has no parameter of that name")

    @property
    def outputs(self) -> tuple[dict[str, Any], ...]:
        """Output bindings other than the HTTP response."""
        return tuple(b for b in self.bindings if b.get("direction", "").upper() == "OUT" and b["type"] != "http")

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


_index_lock = threading.Lock()
_index: dict[int, tuple[object, tuple[FunctionSpec, ...]]] = {}


def import_app_module(name: str, script_root: Path) -> ModuleType:
    """Import `name` with the script root first on sys.path, as the worker does."""
    root = str(script_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            raise AppLoadError(f"cannot import app module {name!r} from {root}: no such module") from None
        raise AppLoadError(f"importing app module {name!r} failed: {e}") from e
    except Exception as e:
        raise AppLoadError(f"importing app module {name!r} failed: {type(e).__name__}: {e}") from e


def find_app(module: ModuleType) -> FunctionRegister:
    """The one FunctionApp (any FunctionRegister) at module level, as the worker requires."""
    apps = {id(v): v for v in vars(module).values() if isinstance(v, FunctionRegister)}
    if not apps:
        raise AppLoadError(f"module {module.__name__!r} defines no FunctionApp (e.g. `app = func.FunctionApp()`)")
    if len(apps) > 1:
        raise AppLoadError(f"module {module.__name__!r} defines {len(apps)} FunctionApp objects; the worker needs exactly one")
    return next(iter(apps.values()))


def read_functions(app: FunctionRegister) -> tuple[FunctionSpec, ...]:
    """get_functions() raises when called twice on one app object, so read it once and remember the result."""
    with _index_lock:
        cached = _index.get(id(app))
        if cached is not None and cached[0] is app:
            return cached[1]
        specs = tuple(_spec(f) for f in app.get_functions())
        _index[id(app)] = (app, specs)
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AppLoadError(f"function names must be unique; repeated: {', '.join(dupes)}")
    return specs


def _spec(function: Any) -> FunctionSpec:
    name = function.get_function_name()
    doc = json.loads(function.get_function_json())
    bindings = tuple(doc.get("bindings", []))
    triggers = [b for b in bindings if b.get("type", "").endswith("Trigger")]
    if len(triggers) != 1:
        raise BindingError(f"function {name!r}: expected exactly one trigger binding, found {len(triggers)}")
    trigger = triggers[0]
    if trigger["type"] not in TRIGGERS:
        raise BindingError(f"function {name!r}: devhost does not run {trigger['type']!r} triggers "
                           f"(supported: {', '.join(TRIGGERS)})")
    user = function.get_user_function()
    spec = FunctionSpec(name=name, trigger=trigger, bindings=bindings, func=user, parameters=_parameters(user))
    _check_parameters(spec)
    return spec


def _parameters(func: Callable[..., Any]) -> tuple[Parameter, ...]:
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable string annotations: keep the raw text and match by name
        hints = {}
    params = []
    for p in inspect.signature(func).parameters.values():
        ann = hints.get(p.name, None if p.annotation is inspect.Parameter.empty else p.annotation)
        params.append(Parameter(p.name, ann))
    return tuple(params)


def _check_parameters(spec: FunctionSpec) -> None:
    """Refuse at start-up what would fail at every invocation: unbound parameters, unsupported bindings."""
    bound = {CONTEXT_PARAM}
    for b in spec.bindings:
        if b is spec.trigger or b.get("name") == "$return":
            if b.get("name") == "$return" and b["type"] not in ("http",) + OUTPUTS:
                raise BindingError(f"function {spec.name!r}: devhost does not support a {b['type']!r} return binding")
            continue
        if b.get("direction", "").upper() == "OUT" and b["type"] in OUTPUTS:
            bound.add(b["name"])
            continue
        raise BindingError(f"function {spec.name!r}: devhost does not support the {b.get('direction', '')} "
                           f"{b.get('type')!r} binding {b.get('name')!r} (supported besides triggers: "
                           f"queue output); use the SDK in the function instead")
    bound.add(spec.trigger["name"])
    names = {p.name for p in spec.parameters}
    if spec.trigger["name"] not in names:
        raise BindingError(f"function {spec.name!r}: trigger binding {spec.trigger['name']!r} has no parameter "
                           f"of that name (parameters: {', '.join(sorted(names)) or 'none'})")
    unbound = sorted(names - bound)
    if unbound:
        raise BindingError(f"function {spec.name!r}: parameters not declared as bindings: {', '.join(unbound)}")
