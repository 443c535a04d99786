"""HTTP route templates as the Functions host reads them: `{name}`, `{id:int}`, `{x?}`, `{*rest}`, precedence."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import unquote

from .errors import BindingError

_PARAM = re.compile(r"\{([^{}]+)\}")
_CALL = re.compile(r"^(\w+)(?:\((.*)\))?$")


def _is_int(v: str, bits: int) -> bool:
    return re.fullmatch(r"-?\d+", v) is not None and -(2 ** (bits - 1)) <= int(v) < 2 ** (bits - 1)


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _is_guid(v: str) -> bool:
    try:
        uuid.UUID(v)
        return True
    except ValueError:
        return False


def _is_datetime(v: str) -> bool:
    try:
        datetime.fromisoformat(v)
        return True
    except ValueError:
        return False


def _constraint(name: str, arg: str | None, template: str) -> Callable[[str], bool]:
    """A predicate for one inline constraint; unknown constraints are a start-up error, not a silent pass."""
    args = [a.strip() for a in arg.split(",")] if arg else []
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _is_int(v, 32), "long": lambda v: _is_int(v, 64),
        "bool": lambda v: v.lower() in ("true", "false"), "alpha": lambda v: v.isascii() and v.isalpha(),
        "guid": _is_guid, "double": _is_float, "float": _is_float, "decimal": _is_float, "datetime": _is_datetime,
    }
    try:
        if name in simple and not args:
            return simple[name]
        if name == "min" and len(args) == 1:
            return lambda v: _is_int(v, 64) and int(v) >= int(args[0])
        if name == "max" and len(args) == 1:
            return lambda v: _is_int(v, 64) and int(v) <= int(args[0])
        if name == "range" and len(args) == 2:
            return lambda v: _is_int(v, 64) and int(args[0]) <= int(v) <= int(args[1])
        if name == "minlength" and len(args) == 1:
            return lambda v: len(v) >= int(args[0])
        if name == "maxlength" and len(args) == 1:
            return lambda v: len(v) <= int(args[0])
        if name == "length" and len(args) in (1, 2):
            lo, hi = int(args[0]), int(args[-1])
            return lambda v: lo <= len(v) <= hi
        if name == "regex" and arg:
            rx = re.compile(arg, re.I)
            return lambda v: rx.search(v) is not None
    except (ValueError, re.error) as e:
        raise BindingError(f"route {template!r}: bad argument for constraint {name!r}: {e}") from None
    raise BindingError(f"route {template!r}: unknown route constraint {name}{'(' + arg + ')' if arg else ''}")


@dataclass(frozen=True)
class RouteParam:
    """One `{...}` in a template."""

    name: str
    checks: tuple[Callable[[str], bool], ...]
    optional: bool
    catch_all: bool
    default: str | None

    @classmethod
    def parse(cls, inner: str, template: str) -> "RouteParam":
        catch_all = inner.startswith("*")
        inner = inner.lstrip("*")
        default = None
        if "=" in inner:
            inner, default = inner.split("=", 1)
        optional = inner.endswith("?")
        inner = inner.rstrip("?")
        name, *constraints = inner.split(":")
        if not name:
            raise BindingError(f"route {template!r}: a parameter has no name")
        checks = []
        for c in constraints:
            m = _CALL.match(c)
            if not m:
                raise BindingError(f"route {template!r}: cannot read constraint {c!r}")
            checks.append(_constraint(m.group(1).lower(), m.group(2), template))
        return cls(name, tuple(checks), optional or default is not None, catch_all, default)


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template; match() gives the route parameters or None."""

    template: str
    regex: re.Pattern[str]
    params: tuple[RouteParam, ...]
    precedence: tuple[int, ...]

    @classmethod
    def parse(cls, template: str) -> "RouteTemplate":
        segments = [s for s in template.strip("/").split("/")] if template.strip("/") else []
        regex, params, ranks = "", [], []
        for i, seg in enumerate(segments):
            sep = "/" if i else ""
            whole = _PARAM.fullmatch(seg)
            if whole:
                p = RouteParam.parse(whole.group(1), template)
                group = f"g{len(params)}"
                params.append(p)
                if p.catch_all:
                    if i != len(segments) - 1:
                        raise BindingError(f"route {template!r}: a catch-all {{*{p.name}}} must be the last segment")
                    regex += f"(?:{sep}(?P<{group}>.*))?"
                    ranks.append(5)
                elif p.optional:
                    if i != len(segments) - 1:
                        raise BindingError(f"route {template!r}: only the last parameter can be optional")
                    regex += f"(?:{sep}(?P<{group}>[^/]+))?"
                    ranks.append(4)
                else:
                    regex += f"{sep}(?P<{group}>[^/]+)"
                    ranks.append(3 if p.checks else 4)
                continue
            if "{" not in seg:
                regex += sep + re.escape(seg)
                ranks.append(1)
                continue
            regex += sep
            pos = 0
            for m in _PARAM.finditer(seg):
                p = RouteParam.parse(m.group(1), template)
                if p.catch_all or p.optional:
                    raise BindingError(f"route {template!r}: {{{m.group(1)}}} cannot share a segment with text")
                regex += re.escape(seg[pos:m.start()]) + f"(?P<g{len(params)}>[^/]+?)"
                params.append(p)
                pos = m.end()
            regex += re.escape(seg[pos:])
            ranks.append(2)
        names = [p.name.lower() for p in params]
        if len(set(names)) != len(names):
            raise BindingError(f"route {template!r}: a parameter name is used twice")
        return cls(template, re.compile(f"^{regex}/?$", re.I), tuple(params), tuple(ranks))

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters (decoded) if `path` (below the route prefix, no leading slash) fits, else None."""
        m = self.regex.match(path)
        if not m:
            return None
        values: dict[str, str] = {}
        for i, p in enumerate(self.params):
            raw = m.group(f"g{i}")
            if raw is None or raw == "":
                if p.default is not None:
                    values[p.name] = p.default
                continue
            value = unquote(raw)
            if not all(check(value) for check in p.checks):
                return None
            values[p.name] = value
        return values
