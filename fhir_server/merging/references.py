"""Find and rewrite the references to one patient anywhere in a resource (extensions and
contained resources included), remembering where, so an undo can move exactly those back."""

from __future__ import annotations

import copy
import re
from typing import Any

Path = tuple[str | int, ...]


def _refers_to(literal: str, patient_id: str) -> bool:
    pattern = rf"(^|/)Patient/{re.escape(patient_id)}(/_history/[^/]+)?$"
    return re.search(pattern, literal) is not None


def _walk(node: Any, path: Path, found: list[Path], patient_id: str) -> None:
    if isinstance(node, dict):
        literal = node.get("reference")
        if isinstance(literal, str) and _refers_to(literal, patient_id):
            found.append((*path, "reference"))
        for key, value in node.items():
            if key != "reference":
                _walk(value, (*path, key), found, patient_id)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk(value, (*path, index), found, patient_id)


def reference_paths(resource: dict[str, Any], patient_id: str) -> list[Path]:
    """Where ``resource`` refers to ``Patient/{patient_id}`` (relative, absolute or versioned)."""
    found: list[Path] = []
    _walk(resource, (), found, patient_id)
    return found


def _get(node: Any, path: Path) -> Any:
    for step in path:
        node = node[step]
    return node


def _set(node: Any, path: Path, value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def rewrite(resource: dict[str, Any], source_id: str,
            target_id: str) -> tuple[dict[str, Any], list[Path]]:
    """A copy with every reference to the source pointing at the target, and where."""
    paths = reference_paths(resource, source_id)
    changed = copy.deepcopy(resource)
    for path in paths:
        _set(changed, path, f"Patient/{target_id}")
    return changed, paths


def restore(resource: dict[str, Any], paths: list[Path], source_id: str,
            target_id: str) -> tuple[dict[str, Any], list[str]]:
    """A copy with the references at ``paths`` pointing back at the source, and the conflicts:
    paths that no longer point at the target (then nothing should be written)."""
    changed = copy.deepcopy(resource)
    conflicts: list[str] = []
    for path in paths:
        try:
            current = _get(changed, path)
        except (KeyError, IndexError, TypeError):
            current = None
        if current != f"Patient/{target_id}":
            conflicts.append("/".join(str(step) for step in path))
            continue
        _set(changed, path, f"Patient/{source_id}")
    return changed, conflicts


def _is_extension(node: dict[str, Any]) -> bool:
    return any(key.startswith("value") for key in node)


def replace_references(node: Any, replacement: Any) -> Any:
    """``node`` with each literal ``replacement(literal)`` answers (not None) put in its place:
    every ``Reference.reference`` anywhere (extensions and contained resources included) and
    every ``Attachment.url`` (a ``url`` that is not an extension's).
    https://hl7.org/fhir/R4/bundle.html#references
    Copy on write: the parts with nothing replaced are ``node``'s own objects (``node`` itself
    when nothing is), so a resource without references costs a walk, not a copy."""
    if isinstance(node, dict):
        changed: dict[str, Any] | None = None
        for key, value in node.items():
            if isinstance(value, str):
                if key != "reference" and (key != "url" or _is_extension(node)):
                    continue
                found = replacement(value)
                new = value if found is None else found
            elif isinstance(value, (dict, list)):
                new = replace_references(value, replacement)
            else:
                continue
            if new is not value:
                changed = dict(node) if changed is None else changed
                changed[key] = new
        return node if changed is None else changed
    if isinstance(node, list):
        items = [replace_references(value, replacement) for value in node]
        return node if all(new is old for new, old in zip(items, node)) else items
    return node


def reference_literals(node: Any, found: list[str] | None = None) -> list[str]:
    """Every ``reference`` and non-extension ``url`` string in ``node``."""
    found = [] if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (
                    key == "reference" or (key == "url" and not _is_extension(node))):
                found.append(value)
            else:
                reference_literals(value, found)
    elif isinstance(node, list):
        for value in node:
            reference_literals(value, found)
    return found
