"""The Patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html) of the
types served here: which patients a resource belongs to, in Python (reads, writes, included
resources) and as a search clause (searches). Binary is not in R4's compartment; this server
puts a Binary in the compartment of the patient its ``securityContext`` names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_server.search.query import Clause
from fhir_server.search.values import TokenValue
from mappings.search_backing import PatientCompartment, SearchParameter

MEMBERSHIP: dict[str, PatientCompartment] = {
    "Patient": PatientCompartment(params=("link",), self_id=True),
    "DocumentReference": PatientCompartment(params=("subject", "author")),
    "Communication": PatientCompartment(params=("subject", "sender", "recipient")),
    "CommunicationRequest": PatientCompartment(
        params=("subject", "sender", "recipient", "requester")),
    "Binary": PatientCompartment(column="security_context"),
    "Coverage": PatientCompartment(params=("policy-holder", "subscriber", "beneficiary",
                                           "payor")),
}
"""Per type, the search parameters (and columns) that place a resource in a compartment."""

_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Patient": ("link",),
    "DocumentReference": ("subject", "author"),
    "Communication": ("subject", "sender", "recipient"),
    "CommunicationRequest": ("subject", "sender", "recipient", "requester"),
    "Binary": ("securityContext",),
    "Coverage": ("policyHolder", "subscriber", "beneficiary", "payor"),
}
"""The same, as the elements holding the References."""


def _references(value: Any) -> Iterator[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            if "other" in item:  # Patient.link.other
                item = item["other"]
            reference = item.get("reference") if isinstance(item, dict) else None
            if isinstance(reference, str):
                yield reference


def patient_id_of(reference: str, base_url: str) -> str | None:
    """The id of the Patient ``reference`` points at on this server, if it does."""
    if reference.startswith(base_url.rstrip("/") + "/"):
        reference = reference[len(base_url.rstrip("/")) + 1:]
    kind, _, rest = reference.partition("/")
    if kind != "Patient" or not rest or "/" in rest.split("/_history")[0]:
        return None
    return rest.split("/_history")[0]


def patients_of(resource: dict[str, Any], base_url: str) -> set[str]:
    """The patients whose compartment ``resource`` is in."""
    resource_type = resource.get("resourceType")
    found: set[str] = set()
    if resource_type == "Patient" and isinstance(resource.get("id"), str):
        found.add(resource["id"])
    for element in _ELEMENTS.get(str(resource_type), ()):
        for reference in _references(resource.get(element)):
            patient = patient_id_of(reference, base_url)
            if patient is not None:
                found.add(patient)
    return found


def compartment_clause(resource_type: str, patient_id: str) -> Clause:
    """A search clause keeping only ``patient_id``'s compartment of ``resource_type``."""
    membership = MEMBERSHIP.get(resource_type, PatientCompartment())
    parameter = SearchParameter("token", membership, None, "the patient compartment")
    return Clause(name="_compartment", modifier=None, parameter=parameter,
                  values=(TokenValue(system=None, code=patient_id),), raw=patient_id)
