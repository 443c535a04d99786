"""A scoring script for tests: answers who it is (from an env var) and the rows it got; init() may fail."""
import json
import os

name = None


def init():
    global name
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("init failed on purpose")
    name = os.environ.get("WHO", "?")


def run(raw_data):
    return {"who": name, "rows": len(json.loads(raw_data).get("data", []))}
