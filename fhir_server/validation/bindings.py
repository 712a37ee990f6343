"""Required bindings (https://hl7.org/fhir/R4/terminologies.html#required): the ValueSet each
coded element with a *required* binding names, and its codes from the bundled content, so a
refusal names the element, the code and the value set. The strict JSON walker
(``strict_json``) applies them wherever the element appears, datatypes inside extensions and
contained resources included; elements not listed here keep the code list of the R4 models.

Preferred, extensible and example bindings (languages, identifier types, categories, ...) are
never refused: ``ValueSet/$validate-code`` answers for them."""

from __future__ import annotations

from functools import cache

from fhir_server.errors import Issue
from terminology.expansion import SYNTAX, expand, value_set

VS = "http://hl7.org/fhir/ValueSet/"
MIME_TYPES = VS + "mimetypes"
REQUIRED: dict[tuple[str, str], str] = {
    ("Patient", "gender"): VS + "administrative-gender",
    ("PatientContact", "gender"): VS + "administrative-gender",
    ("PatientLink", "type"): VS + "link-type",
    ("HumanName", "use"): VS + "name-use",
    ("ContactPoint", "system"): VS + "contact-point-system",
    ("ContactPoint", "use"): VS + "contact-point-use",
    ("Address", "use"): VS + "address-use",
    ("Address", "type"): VS + "address-type",
    ("Identifier", "use"): VS + "identifier-use",
    ("Narrative", "status"): VS + "narrative-status",
    ("DocumentReference", "status"): VS + "document-reference-status",
    ("DocumentReference", "docStatus"): VS + "composition-status",
    ("DocumentReferenceRelatesTo", "code"): VS + "document-relationship-type",
    ("Communication", "status"): VS + "event-status",
    ("Communication", "priority"): VS + "request-priority",
    ("CommunicationRequest", "status"): VS + "request-status",
    ("CommunicationRequest", "priority"): VS + "request-priority",
    ("Attachment", "contentType"): MIME_TYPES,
    ("Binary", "contentType"): MIME_TYPES,
}
"""(R4 element type, as the fhir.resources model is named; element) -> its required ValueSet."""


def required_value_set(model_name: str, element: str) -> str | None:
    return REQUIRED.get((model_name, element))


@cache
def allowed_codes(canonical: str) -> frozenset[str] | None:
    """The codes of a bundled ValueSet; None when its codes are checked by syntax (MIME
    types)."""
    resource = value_set(canonical)
    if resource is None:
        raise LookupError(f"required binding to {canonical}, which is not bundled")
    systems = {include.get("system") for include in resource["compose"]["include"]}
    if systems <= set(SYNTAX):
        return None
    return frozenset(entry.code for entry in expand(resource))


def binding_issue(code: str, canonical: str, path: str) -> Issue | None:
    """The refusal of ``code`` at ``path`` if the required ValueSet does not hold it."""
    codes = allowed_codes(canonical)
    if codes is None:
        system = next(iter({include["system"] for include in
                            (value_set(canonical) or {})["compose"]["include"]}))
        if SYNTAX[system](code):
            return None
        return Issue(f"{path}: '{_shown(code)}' is not a MIME type (type/subtype, RFC 6838), as "
                     f"the value set {canonical} (required binding) needs",
                     code="code-invalid", expression=(path,))
    if code in codes:
        return None
    return Issue(f"{path}: '{_shown(code)}' is not in the required value set {canonical} "
                 f"({', '.join(sorted(codes))})", code="code-invalid", expression=(path,))


def _shown(code: str) -> str:
    return code if len(code) <= 40 else code[:40] + "..."
