"""PRM media categories <-> DocumentReference.category codings, through the shipped ConceptMap
``conceptmap-prm-document-category.json``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

from terminology import systems

CONCEPT_MAP_FILE = Path(__file__).with_name("conceptmap-prm-document-category.json")


@cache
def concept_map() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(CONCEPT_MAP_FILE.read_bytes())
    return data


@cache
def _maps() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(PRM code -> LOINC coding, LOINC code -> PRM code)."""
    forward: dict[str, dict[str, str]] = {}
    backward: dict[str, str] = {}
    for element in concept_map()["group"][0]["element"]:
        for target in element.get("target", []):
            if target.get("code"):
                forward[element["code"]] = {"system": systems.LOINC, "code": target["code"],
                                            "display": target["display"]}
                backward[target["code"]] = element["code"]
    return forward, backward


PRM_CATEGORIES = ("medical_record", "lab_result", "prescription", "insurance", "consent_form",
                  "photo", "voice_message")


def category_coding(prm_category: str) -> dict[str, str]:
    """The coding a PRM category appears as: LOINC where the map has one, else the PRM code."""
    coding = _maps()[0].get(prm_category)
    return dict(coding) if coding else {"system": systems.PRM_DOCUMENT_CATEGORY,
                                        "code": prm_category}


def prm_category(concepts: list[dict[str, Any]]) -> str | None:
    """The PRM category the first recognised coding of ``concepts`` stands for."""
    backward = _maps()[1]
    for concept in concepts:
        for coding in concept.get("coding") or ():
            system, code = coding.get("system"), coding.get("code")
            if system == systems.PRM_DOCUMENT_CATEGORY and code in PRM_CATEGORIES:
                return str(code)
            if system == systems.LOINC and code in backward:
                return backward[code]
    return None
