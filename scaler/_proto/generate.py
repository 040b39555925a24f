"""Regenerate the protobuf and gRPC stubs from proto/: `make proto`.

The `-Iscaler/_proto=proto` mapping makes protoc emit `scaler._proto...` imports,
so the generated files need no patching. Commit the result; a test checks that
running this again changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO_FILES = ["scaler/_proto/externalscaler.proto"]


def generate(out_dir: Path = ROOT) -> None:
    args = [
        "grpc_tools.protoc",
        "-Iscaler/_proto=proto",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *PROTO_FILES,
    ]
    (out_dir / "scaler" / "_proto").mkdir(parents=True, exist_ok=True)
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
