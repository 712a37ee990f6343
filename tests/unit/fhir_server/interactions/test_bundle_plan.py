"""The pure Bundle planner: entries parsed, ids assigned, fullUrls mapped, processing order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from fhir_server.errors import InvalidRequest, PayloadTooLarge
from fhir_server.interactions.bundle_plan import aliases_of, at_entry, plan_bundle
from fhir_server.merging.references import replace_references

BASE = "http://server/fhir"
SERVED = {"Patient", "Communication", "DocumentReference", "Binary"}


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(method: str, url: str, resource: dict[str, Any] | None = None,
          full_url: str | None = None, **request: str) -> dict[str, Any]:
    found: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        found["resource"] = resource
    if full_url is not None:
        found["fullUrl"] = full_url
    return found


PATIENT = {"resourceType": "Patient", "gender": "female"}


def plan(*entries: dict[str, Any], kind: str = "transaction", max_entries: int = 100) -> Any:
    return plan_bundle(bundle(kind, *entries), served=SERVED, base_url=BASE,
                       max_entries=max_entries, new_id=ids())


def test_processing_order_is_delete_post_put_get() -> None:
    planned = plan(entry("GET", "Patient/a"), entry("PUT", "Patient/b", PATIENT | {"id": "b"}),
                   entry("POST", "Patient", PATIENT), entry("DELETE", "Patient/c"),
                   entry("PATCH", "Patient/d", {"resourceType": "Binary", "data": "W10=",
                                                "contentType": "application/json-patch+json"}))
    assert [e.method for e in planned.order()] == ["DELETE", "POST", "PUT", "PATCH", "GET"]


def test_creates_come_after_the_creates_they_refer_to() -> None:
    message = {"resourceType": "Communication", "status": "completed",
               "subject": {"reference": "urn:uuid:p"}}
    planned = plan(entry("POST", "Communication", message, "urn:uuid:c"),
                   entry("POST", "Patient", PATIENT, "urn:uuid:p"))
    assert [e.index for e in planned.order()] == [1, 0]


def test_ids_are_assigned_to_creates_and_full_urls_mapped() -> None:
    planned = plan(entry("POST", "Patient", PATIENT, "urn:uuid:p"),
                   entry("POST", "Patient", PATIENT, "http://other/fhir/Patient/7"),
                   entry("PUT", "Patient/k", PATIENT | {"id": "k"}, f"{BASE}/Patient/k"))
    assert planned.aliases == {"urn:uuid:p": "Patient/id-1",
                               "http://other/fhir/Patient/7": "Patient/id-2",
                               "Patient/7": "Patient/id-2",
                               f"{BASE}/Patient/k": "Patient/k", "Patient/k": "Patient/k"}


def test_conditional_update_id_is_left_for_execution() -> None:
    planned = plan(entry("PUT", "Patient?identifier=a|b", PATIENT, "urn:uuid:x"))
    planned_entry = planned.entries[0]
    assert planned_entry.action == "update"
    assert planned_entry.resource_id is None
    assert planned_entry.query == "identifier=a|b"
    assert planned.aliases == {}


@pytest.mark.parametrize(("url", "action", "resource_id", "version", "query"), [
    ("Patient/a", "read", "a", None, None),
    ("/Patient/a/_history/3", "vread", "a", 3, None),
    ("Patient?name=x", "search", None, None, "name=x"),
    ("Patient", "search", None, None, ""),
    (f"{BASE}/Patient/a", "read", "a", None, None),
])
def test_get_urls(url: str, action: str, resource_id: str | None, version: int | None,
                  query: str | None) -> None:
    planned_entry = plan(entry("GET", url)).entries[0]
    assert (planned_entry.action, planned_entry.resource_id, planned_entry.version_id,
            planned_entry.query) == (action, resource_id, version, query)


def test_conditions_are_parsed() -> None:
    planned = plan(entry("PUT", "Patient/a", PATIENT | {"id": "a"}, ifMatch='W/"4"'),
                   entry("GET", "Patient/b", ifNoneMatch='W/"2"',
                         ifModifiedSince="2020-01-01T00:00:00+10:00"),
                   entry("POST", "Patient", PATIENT, ifNoneExist="identifier=x|1"))
    first, second, third = planned.entries
    assert first.if_match == 4
    assert second.if_none_match == 'W/"2"'
    assert second.if_modified_since.isoformat() == "2020-01-01T00:00:00+10:00"
    assert third.if_none_exist == "identifier=x|1"


@pytest.mark.parametrize("bad", [
    entry("POST", "Patient/a", PATIENT),
    entry("PUT", "Patient", PATIENT),
    entry("TRACE", "Patient"),
    entry("GET", "patient/a"),
    entry("GET", "Patient/$everything"),
    entry("GET", "http://elsewhere/fhir/Patient/a"),
    entry("POST", "Patient", {"resourceType": "Patient", "gender": "robot"}),
    entry("POST", "Patient", {"resourceType": "Communication", "status": "completed"}),
    entry("GET", "Patient/a", ifMatch='W/"1"'),
    entry("PATCH", "Patient/a", PATIENT),
    {"resource": PATIENT},
    "not an object",
])
def test_bad_entries_fail_alone_with_their_index(bad: Any) -> None:
    planned = plan(entry("POST", "Patient", PATIENT), bad, kind="batch")
    assert planned.entries[0] is not None
    assert planned.entries[1] is None
    assert planned.errors[1].status in (400, 404)
    assert planned.errors[1].message.startswith("Bundle.entry[1]")


def test_unsupported_types_are_collected() -> None:
    planned = plan(entry("POST", "Encounter", {"resourceType": "Encounter"}),
                   entry("GET", "Observation?code=x"), entry("POST", "Encounter", {}))
    assert planned.unsupported == {"Encounter": [0, 2], "Observation": [1]}
    assert planned.errors[1].status == 404


def test_a_resource_changed_twice_in_a_transaction_is_refused() -> None:
    planned = plan(entry("PUT", "Patient/a", PATIENT | {"id": "a"}), entry("DELETE", "Patient/a"))
    assert "also changed by Bundle.entry[0]" in planned.errors[1].message


@pytest.mark.parametrize("kind", ["collection", "searchset", None, "document"])
def test_other_bundle_types_are_refused_naming_them(kind: str | None) -> None:
    with pytest.raises(InvalidRequest, match=f"'{kind}'"):
        plan_bundle(bundle(kind), served=SERVED, base_url=BASE,  # type: ignore[arg-type]
                    max_entries=10)


def test_not_a_bundle_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        plan_bundle(PATIENT, served=SERVED, base_url=BASE, max_entries=10)


def test_too_many_entries_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        plan(*(entry("GET", "Patient/a") for _ in range(3)), max_entries=2)


def test_at_entry_maps_resource_expressions() -> None:
    error = at_entry(InvalidRequest("bad"), 2, "urn:uuid:x")
    assert error.message == "Bundle.entry[2] (fullUrl urn:uuid:x): bad"
    assert error.all_issues()[0].expression == ("Bundle.entry[2]",)


def test_aliases_of_absolute_full_url() -> None:
    assert aliases_of("http://a/fhir/Patient/1", BASE) == ["http://a/fhir/Patient/1",
                                                            "Patient/1"]
    assert aliases_of("urn:uuid:1", BASE) == ["urn:uuid:1"]
    assert aliases_of(None, BASE) == []


def test_replace_references_reaches_extensions_contained_and_attachments() -> None:
    resource = {
        "resourceType": "DocumentReference",
        "extension": [{"url": "urn:uuid:1", "valueReference": {"reference": "urn:uuid:1"}}],
        "contained": [{"resourceType": "Patient", "link": [{"other": {"reference": "urn:uuid:1"}}]}],
        "content": [{"attachment": {"url": "urn:uuid:1", "contentType": "image/png"}}],
        "description": "urn:uuid:1",
    }
    rewritten = replace_references(resource, {"urn:uuid:1": "Patient/9"}.get)
    assert rewritten["extension"][0] == {"url": "urn:uuid:1",
                                         "valueReference": {"reference": "Patient/9"}}
    assert rewritten["contained"][0]["link"][0]["other"]["reference"] == "Patient/9"
    assert rewritten["content"][0]["attachment"]["url"] == "Patient/9"
    assert rewritten["description"] == "urn:uuid:1"
    assert resource["content"][0]["attachment"]["url"] == "urn:uuid:1"  # the input unchanged
