"""The emulator's own copies of trained models, by content hash, so serving never depends on a caller's SAS."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from emulators.training import training
from .blobs import BlobRef
from .errors import BadArgument, BlobError


class ModelFiles:
    """Validated `.ilearner` bytes on disk under `<data-dir>/models/<sha256>.ilearner`, loaded models cached."""

    def __init__(self, root: Path, cache_size: int = 16):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, training.TrainedModel] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def add(self, blob: bytes) -> str:
        """Validate and keep a copy; returns its id. Raises training.InvalidModelFile for non-models."""
        model = training.load_model(blob)
        model_id = hashlib.sha256(blob).hexdigest()
        path = self._path(model_id)
        if not path.exists():
            tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        self._remember(model_id, model)
        return model_id

    def has(self, model_id: str) -> bool:
        return self._path(model_id).exists()

    def get(self, model_id: str) -> training.TrainedModel:
        with self._lock:
            if model_id in self._cache:
                self._cache.move_to_end(model_id)
                return self._cache[model_id]
        model = training.load_model(self._path(model_id).read_bytes())
        self._remember(model_id, model)
        return model

    def _remember(self, model_id: str, model: training.TrainedModel) -> None:
        with self._lock:
            self._cache[model_id] = model
            self._cache.move_to_end(model_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _path(self, model_id: str) -> Path:
        if not model_id.isalnum():
            raise ValueError("bad model id")
        return self.root / f"{model_id}.ilearner"

    def fetch(self, ref: BlobRef, what: str = "trained model") -> str:
        """Download, validate and keep a model from a blob; BadArgument says which of those steps failed."""
        try:
            blob = ref.read()
        except BlobError as e:
            raise BadArgument("BlobNotFound" if e.missing else "BlobNotReadable",
                              f"The {what} cannot be downloaded: {e}") from None
        try:
            return self.add(blob)
        except training.InvalidModelFile as e:
            raise BadArgument("InvalidTrainedModel",
                              f"The blob '{ref.uri}' is not a trained model (.ilearner) this service can load: {e}") \
                from None
