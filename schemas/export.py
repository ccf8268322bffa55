"""Write the JSON Schema of every event model under schemas/jsonschema/.

Run ``python -m schemas.export`` after changing a model; a test fails while
the committed files are stale, so consumers in other languages never read an
outdated contract.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from schemas.registry import EVENT_MODELS

SCHEMA_DIR = Path(__file__).parent / "jsonschema"


def render_all() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://tocsin.dev/schemas/v1/{name}.json"
        out[f"{name}.json"] = (
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    return out


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for filename, content in render_all().items():
        (SCHEMA_DIR / filename).write_bytes(content)
    print(f"wrote {len(EVENT_MODELS)} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
