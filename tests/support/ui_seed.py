"""Models for the web UI's tests and screenshots: a model with a few versions whose params,
metrics, files, lineage and cards differ, and aliases that moved.

Run by hand against a running registry to look at the UI:
``python -m tests.support.ui_seed 127.0.0.1:50051 <token>``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from modelregistry import Client

CARD = """# Fraud detector

Gradient-boosted trees over **card transactions**; scores each payment from 0 to 1.

## Intended use
- Real-time scoring in the payments API
- Not for credit decisions

| split | rows |
|---|---|
| train | 1,200,000 |
| test | 300,000 |

<script>alert("cards are rendered without raw HTML")</script>
"""

Params = dict[str, str | int | float | bool]
VERSIONS: list[tuple[Params, dict[str, float], bytes, tuple[str, bytes] | None, str]] = [
    # (params, metrics, weights, extra file, description)
    ({"learning_rate": 0.1, "max_depth": 6, "optimizer": "adam"},
     {"accuracy": 0.912, "auc": 0.951, "f1": 0.801}, b"w1" * 5000, None, CARD),
    ({"learning_rate": 0.05, "max_depth": 8, "optimizer": "adam"},
     {"accuracy": 0.927, "auc": 0.962, "f1": 0.822}, b"w2" * 7000, ("calibration.json", b"{}"),
     CARD.replace("1,200,000", "1,500,000")),
    ({"learning_rate": 0.05, "max_depth": 8, "optimizer": "sgd"},
     {"accuracy": 0.934, "auc": 0.958, "f1": 0.830}, b"w3" * 7000, ("calibration.json", b"{}"),
     CARD),
]  # fmt: skip


def seed(client: Client, model: str = "fraud-detector") -> list[int]:
    """Push the versions of ``model`` and set ``staging`` and ``production``; their numbers."""
    numbers = []
    client.create_model(
        model, description="Scores card payments for fraud.", labels={"team": "risk", "tier": "1"}
    )
    with tempfile.TemporaryDirectory() as folder:
        for index, (params, metrics, weights, extra, card) in enumerate(VERSIONS):
            root = Path(folder) / f"v{index}"
            root.mkdir()
            (root / "model.bin").write_bytes(weights)
            (root / "config.json").write_text('{"classes": 2}')
            if extra:
                (root / extra[0]).write_bytes(extra[1])
            version = client.push(
                str(root),
                model=model,
                params=params,
                metrics=metrics,
                labels={"team": "risk"},
                description=card,
                lineage=False,
            )
            numbers.append(int(version.version))
    client.set_alias(model, "production", numbers[0])
    client.set_alias(model, "staging", numbers[1])
    client.set_alias(model, "production", numbers[1])
    for other, team in (("churn-predictor", "growth"), ("image-tagger", "vision")):
        client.create_model(other, labels={"team": team})
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "weights.bin").write_bytes(other.encode() * 100)
            client.push(folder, model=other, labels={"team": team}, metrics={"accuracy": 0.8})
    return numbers


if __name__ == "__main__":
    target, token = sys.argv[1], sys.argv[2]
    with Client(target, token=token) as registry:
        print(seed(registry))
