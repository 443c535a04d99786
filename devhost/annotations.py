"""Which Python type a trigger parameter asks for, so devhost passes what the worker would."""

from __future__ import annotations

import inspect
from typing import Any

from azure.functions import _abc as azf_abc

from .app import FunctionSpec
from .errors import BindingError


def _named(annotation: Any, *names: str) -> bool:
    """String annotations that could not be resolved are matched by their last dotted name."""
    return isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] in names


def _sub(annotation: Any, base: type) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, base)


def _unannotated(annotation: Any) -> bool:
    return annotation is None or annotation is Any or annotation is inspect.Parameter.empty


def queue_kind(spec: FunctionSpec) -> str:
    """"message" (func.QueueMessage, the default), "str" or "bytes"."""
    ann = spec.trigger_param.annotation
    if _unannotated(ann) or _sub(ann, azf_abc.QueueMessage) or _named(ann, "QueueMessage"):
        return "message"
    if ann is str or _named(ann, "str"):
        return "str"
    if ann is bytes or _named(ann, "bytes"):
        return "bytes"
    raise BindingError(f"function {spec.name!r}: queue trigger parameter {spec.trigger_param.name!r} is annotated "
                       f"{ann!r}; use func.QueueMessage, str or bytes")


def blob_kind(spec: FunctionSpec) -> str:
    """"stream" (func.InputStream, the default), "bytes", "str", or an SDK type: "client", "container", "downloader"."""
    ann = spec.trigger_param.annotation
    try:
        from azurefunctions.extensions.bindings import blob as sdk
        sdk_types = {"client": sdk.BlobClient, "container": sdk.ContainerClient,
                     "downloader": sdk.StorageStreamDownloader}
    except ImportError:  # the SDK-type package is optional for apps that do not use it
        sdk_types = {}
    for kind, cls in sdk_types.items():
        if _sub(ann, cls):
            return kind
    if _unannotated(ann) or _sub(ann, azf_abc.InputStream) or _named(ann, "InputStream"):
        return "stream"
    if _named(ann, "BlobClient"):
        return "client"
    if _named(ann, "ContainerClient"):
        return "container"
    if _named(ann, "StorageStreamDownloader"):
        return "downloader"
    if ann is bytes or _named(ann, "bytes"):
        return "bytes"
    if ann is str or _named(ann, "str"):
        return "str"
    raise BindingError(f"function {spec.name!r}: blob trigger parameter {spec.trigger_param.name!r} is annotated "
                       f"{ann!r}; use func.InputStream, bytes, str, or blob.BlobClient / ContainerClient / "
                       f"StorageStreamDownloader from azurefunctions.extensions.bindings.blob")
