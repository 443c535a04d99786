"""Durable state under --data-dir (one SQLite file of JSON documents), so a restart keeps endpoints, jobs, ARM."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Callable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    body TEXT NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
"""


class Store:
    """Documents by (kind, key); one lock serialises writers so read-modify-write is atomic."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM docs").fetchone()[0]

    def get(self, kind: str, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM docs WHERE kind=? AND key=?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, key: str, body: dict) -> None:
        with self._lock:
            self._seq += 1
            self._db.execute(
                "INSERT INTO docs(kind, key, body, seq) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(kind, key) DO UPDATE SET body=excluded.body",
                (kind, key, json.dumps(body), self._seq))

    def insert(self, kind: str, key: str, body: dict) -> bool:
        """Insert if absent; False when the key exists already."""
        with self._lock:
            if self.get(kind, key) is not None:
                return False
            self.put(kind, key, body)
            return True

    def update(self, kind: str, key: str, change: Callable[[dict], dict | None]) -> dict | None:
        """Apply `change` atomically; it returns the new body, or None to leave the document as it is."""
        with self._lock:
            current = self.get(kind, key)
            if current is None:
                return None
            new = change(dict(current))
            if new is None:
                return current
            self.put(kind, key, new)
            return new

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM docs WHERE kind=? AND key=?", (kind, key))
            return cur.rowcount > 0

    def all(self, kind: str) -> list[tuple[str, dict]]:
        """Every document of a kind, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT key, body FROM docs WHERE kind=? ORDER BY seq", (kind,)).fetchall()
        return [(k, json.loads(b)) for k, b in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
