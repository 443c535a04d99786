"""Azure ML command-job training script: train on a CSV, log hold-out metrics to MLflow, write a skops model.

    python train.py --data ${{inputs.data}} --label label --task binary --model ${{outputs.model}}
                    [--baseline ${{inputs.baseline}}] [--learner logistic_regression] [--holdout 0.25] [--seed 42]

Metrics (MLflow, on the hold-out rows): binary `auc`, `accuracy`, `f1`, `log_loss`; regression `rmse`,
`mae`, `r2`; multiclass `accuracy`, `precision_macro`, `recall_macro`. With `--baseline` (a model folder
this script wrote), the baseline is scored on the same hold-out rows and logged as `baseline_<metric>`.
The model folder gets `model.skops` (a skops archive, never pickle) and `schema.json`. Bad data fails the
job with the reason on stderr (exit code 1). The training itself is emulators.training, the same core the
Studio (classic) emulator trains with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mlflow

from emulators.training.training import Recipe, TrainingDataError, train

METRICS = {
    "binary": {"auc": "AUC", "accuracy": "Accuracy", "f1": "F-Score", "log_loss": "Average Log Loss"},
    "regression": {"rmse": "Root Mean Squared Error", "mae": "Mean Absolute Error",
                   "r2": "Coefficient of Determination"},
    "multiclass": {"accuracy": "Overall accuracy", "precision_macro": "Macro-averaged precision",
                   "recall_macro": "Macro-averaged recall"},
}
MODEL_FILE = "model.skops"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="the training CSV (a file, or a folder holding one)")
    p.add_argument("--label", required=True, help="the label column")
    p.add_argument("--task", default="binary", choices=sorted(METRICS))
    p.add_argument("--learner", default="logistic_regression")
    p.add_argument("--holdout", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--baseline", type=Path, default=None, help="folder of the model in production")
    p.add_argument("--model", required=True, type=Path, help="output folder for the trained model")
    return p.parse_args(argv)


def find(folder_or_file: Path, pattern: str) -> Path:
    """The file itself, or the first file matching `pattern` under the folder."""
    if folder_or_file.is_file():
        return folder_or_file
    found = sorted(folder_or_file.rglob(pattern))
    if not found:
        raise FileNotFoundError(f"no {pattern} under {folder_or_file}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = find(args.data, "*.csv")
        baseline = find(args.baseline, MODEL_FILE).read_bytes() if args.baseline else None
        result = train(data.read_bytes(), Recipe(task=args.task, label=args.label, learner=args.learner,
                                                 holdout=args.holdout, seed=args.seed), baseline=baseline)
    except TrainingDataError as e:
        print(f"Training failed: {e.message}", file=sys.stderr)
        return 1
    except FileNotFoundError as e:
        print(f"Training failed: {e}", file=sys.stderr)
        return 1
    names = METRICS[args.task]
    metrics = {name: result.metrics[studio] for name, studio in names.items()}
    if result.baseline_metrics is not None:
        metrics.update({f"baseline_{name}": result.baseline_metrics[studio] for name, studio in names.items()})
    with mlflow.start_run():  # MLFLOW_RUN_ID is the job's name: this resumes the job's own run
        mlflow.log_params({"task": args.task, "label": args.label, "learner": args.learner,
                           "holdout": args.holdout, "seed": args.seed, "rows": result.rows})
        mlflow.log_metrics(metrics)
    args.model.mkdir(parents=True, exist_ok=True)
    (args.model / MODEL_FILE).write_bytes(result.model)
    from emulators.training.training import load_model
    model = load_model(result.model)
    schema = {"task": model.task, "label": model.label, "features": model.features,
              "classes": [str(c) for c in model.classes], "metrics": metrics}
    (args.model / "schema.json").write_text(json.dumps(schema, indent=2))
    print(f"trained on {result.rows} rows: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
