"""Push a tiny demo model for server.py: a random ``weight`` and ``bias`` in model.safetensors.

    python make_model.py --model demo                # version N, and production -> N
    python make_model.py --model demo --seed 2 --no-alias

It prints the new version's number. The same ``--seed`` always writes the same weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from modelregistry import Client

WEIGHTS_FILE = "model.safetensors"


def write_model(folder: Path, seed: int, inputs: int, outputs: int) -> Path:
    """Write ``weight`` (outputs x inputs) and ``bias`` (outputs) drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    tensors = {
        "weight": rng.standard_normal((outputs, inputs)).astype(np.float32),
        "bias": rng.standard_normal(outputs).astype(np.float32),
    }
    path = folder / WEIGHTS_FILE
    save_file(tensors, str(path), metadata={"seed": str(seed)})
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default=os.environ.get("SERVING_MODEL", "demo"))
    parser.add_argument(
        "--registry", help="registry host:port (env MODELREGISTRY_URL, read by the SDK)"
    )
    parser.add_argument("--seed", type=int, default=1, help="weights are drawn from this seed")
    parser.add_argument("--inputs", type=int, default=4, help="input size (default: 4)")
    parser.add_argument("--outputs", type=int, default=2, help="output size (default: 2)")
    parser.add_argument("--alias", default="production", help="alias to point at the new version")
    parser.add_argument("--no-alias", action="store_true", help="set no alias")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder, Client(args.registry) as client:
        write_model(Path(folder), args.seed, args.inputs, args.outputs)
        version = client.push(
            folder,
            model=args.model,
            params={"seed": args.seed, "inputs": args.inputs, "outputs": args.outputs},
            description=f"demo linear model, seed {args.seed}",
            alias=None if args.no_alias else args.alias,
        )
    print(version.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
