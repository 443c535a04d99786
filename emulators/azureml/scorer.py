"""A deployment instance: imports the scoring script, calls `init()`, then answers `run(raw_data)` calls.

Protocol on stdin/stdout (the script's own prints go to stderr, i.e. the deployment log): each message
is a 4-byte big-endian length and that many bytes; requests are the raw body, answers JSON
`{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`. The first answer says whether init() worked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import sys
import traceback


def _send(out, message: dict) -> None:
    data = json.dumps(message, default=str).encode()
    out.write(struct.pack(">I", len(data)) + data)
    out.flush()


def _read(inp) -> bytes | None:
    head = inp.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return inp.read(size)


def _failure(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(lines[-6:]).strip()


def main() -> int:
    script = sys.argv[1]
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the script's prints must not corrupt the protocol
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
        spec = importlib.util.spec_from_file_location("score", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "init"):
            module.init()
        run = module.run
    except BaseException as exc:  # noqa: BLE001 - reported to the service, which fails the provisioning
        _send(out, {"ok": False, "error": f"init() failed: {_failure(exc)}"})
        return 1
    _send(out, {"ok": True, "ready": True})
    while True:
        raw = _read(inp)
        if raw is None:
            return 0
        try:
            result = run(raw.decode("utf-8", "replace"))
            _send(out, {"ok": True, "result": result})
        except Exception as exc:  # noqa: BLE001 - the caller gets the script's error
            _send(out, {"ok": False, "error": _failure(exc)})


if __name__ == "__main__":
    sys.exit(main())
