"""A scoring script for rollout tests: answers the word in the model's answer.txt.

A model whose word is `broken` fails every request (400: the script raised); one whose word is `flaky`
kills its process on rows carrying {"boom": true} (5xx, as a crashing model server answers).
"""
import json
import os
from pathlib import Path

word = None


def init():
    global word
    found = sorted(Path(os.environ["AZUREML_MODEL_DIR"]).rglob("answer.txt"))
    word = found[0].read_text().strip()


def run(raw_data):
    rows = json.loads(raw_data).get("data", [])
    if word == "broken":
        raise ValueError("this model cannot score anything")
    if word == "flaky" and any(r.get("boom") for r in rows):
        os._exit(3)
    return {"answer": word, "rows": len(rows)}
