"""Copy the official HL7 terminology the server bundles from the shared test data into
``terminology/`` (package data: the server never reads ../shared/data at run time).

    .venv/bin/python scripts/bundle_terminology.py [SHARED_DATA]

Writes two collection Bundles, resources as published except their ``text`` narrative:
``hl7-r4-terminology.json`` (R4 4.0.1 value sets and code systems, from
valuesets/terminology-r4.json) and ``us-core-3.1.0-terminology.json`` (US Core 3.1.0 race,
ethnicity, birth sex, USPS states, document categories). Run it again after the shared data
changes; the output is deterministic."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "data"

R4_LEFT_OUT = {
    ("ValueSet", "c80-doc-typecodes"): "1.4 MB of LOINC codes behind a preferred binding",
    ("ValueSet", "security-labels"): "imports v3 value sets that are not bundled",
}
US_CORE_FILES = (
    "CodeSystem-cdcrec.json", "ValueSet-omb-race-category.json",
    "ValueSet-omb-ethnicity-category.json", "ValueSet-detailed-race.json",
    "ValueSet-detailed-ethnicity.json", "ValueSet-birthsex.json",
    "ValueSet-us-core-usps-state.json", "CodeSystem-us-core-documentreference-category.json",
    "ValueSet-us-core-documentreference-category.json",
)


def _collection(bundle_id: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "id": bundle_id, "type": "collection",
            "entry": [{"fullUrl": resource["url"], "resource": resource}
                      for resource in resources]}


def _without_text(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key != "text"}


def main(shared: Path) -> None:
    r4 = json.loads((shared / "valuesets" / "terminology-r4.json").read_text())
    kept = [_without_text(entry["resource"]) for entry in r4["entry"]
            if (entry["resource"]["resourceType"], entry["resource"]["id"]) not in R4_LEFT_OUT]
    us_core = [_without_text(json.loads((shared / "valuesets" / "us-core-3.1.0" / name)
                                        .read_text())) for name in US_CORE_FILES]
    for name, bundle in (("hl7-r4-terminology", _collection("hl7-r4-terminology", kept)),
                         ("us-core-3.1.0-terminology",
                          _collection("us-core-3.1.0-terminology", us_core))):
        path = ROOT / "terminology" / f"{name}.json"
        path.write_text(json.dumps(bundle, ensure_ascii=False, indent=1) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(bundle['entry'])} resources, "
              f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SHARED)
