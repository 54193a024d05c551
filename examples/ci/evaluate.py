"""A CI job for the registry: pull a model version, evaluate it, report a check.

The model is a linear classifier in ``model.json`` (``{"weights": [...], "bias": b}``); the
evaluation set is ``eval.csv`` beside this script (features, then the 0/1 label). The job
reports ``eval/accuracy`` as PASSED when accuracy reaches ``--min-accuracy``, else FAILED, with
the accuracy as a metric, so a protected alias can require it (README, "Promotion gates").

    MODELREGISTRY_TOKEN=<a reporter's token> python examples/ci/evaluate.py fraud:3

Exit code: 0 when the check PASSED, 1 when it FAILED, 2 on a usage error; registry errors
exit with the SDK's codes (``modelregistry.errors``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from modelregistry import Client
from modelregistry.errors import RegistryError

HERE = Path(__file__).resolve().parent


def accuracy(model: dict[str, object], rows: list[list[float]]) -> float:
    """The share of ``rows`` (features…, label) the linear model classifies right."""
    weights = [float(w) for w in model["weights"]]  # type: ignore[attr-defined]
    bias = float(model["bias"])  # type: ignore[arg-type]
    right = 0
    for *features, label in rows:
        score = sum(w * x for w, x in zip(weights, features, strict=True)) + bias
        right += int((score > 0) == (label > 0.5))
    return right / len(rows)


def main(argv: list[str] | None = None) -> int:
    """Pull, evaluate, report; see the module docstring."""
    parser = argparse.ArgumentParser(description="Evaluate a model version and report a check.")
    parser.add_argument("version", metavar="MODEL:VERSION", help="e.g. fraud:3")
    parser.add_argument("--check", default="eval/accuracy", help="the check's name")
    parser.add_argument("--min-accuracy", type=float, default=0.9, help="PASSED from here")
    parser.add_argument("--eval-set", type=Path, default=HERE / "eval.csv")
    parser.add_argument("--url", default=None, help="the registry (default $MODELREGISTRY_URL)")
    args = parser.parse_args(argv)
    model_id, _, number = args.version.partition(":")
    if not number.isdecimal():
        parser.error("give MODEL:VERSION, e.g. fraud:3")
    with args.eval_set.open() as f:
        rows = [[float(v) for v in row] for row in csv.reader(f) if row]
    try:
        with Client(args.url) as client, tempfile.TemporaryDirectory() as tmp:
            folder = client.pull(args.version, Path(tmp) / "model")
            score = accuracy(json.loads((folder / "model.json").read_text()), rows)
            passed = score >= args.min_accuracy
            client.report_check(
                model_id, int(number), args.check, "PASSED" if passed else "FAILED",
                summary=f"accuracy {score:.3f} on {len(rows)} examples "
                f"(needs {args.min_accuracy:.3f})",
                metrics={"accuracy": score},
            )  # fmt: skip
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{args.version} {args.check}: {'PASSED' if passed else 'FAILED'} ({score:.3f})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
