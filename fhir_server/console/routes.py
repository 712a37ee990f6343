"""HTTP for the web console under ``/console``: the route table and one small handler per
page or action. Reads go through ``repositories_for`` and operations through
``authorize_operation`` / ``audit_operation`` (fhir_server.security.access), as on the API.
Actions that change data are POST forms carrying the CSRF token; when authorisation is
configured, every page but the login page needs the login cookie."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from fhir_server.console import comparison, merging, session
from fhir_server.console.duplicates import ConsoleState, ScanFile, queue_page, scan_path
from fhir_server.console.patients import (
    SEARCH_FIELDS,
    Repositories,
    patient_page,
    patient_row,
    search_patients,
)
from fhir_server.console.rendering import STATIC_DIR, STATIC_PATH, page
from fhir_server.errors import FhirError, InvalidRequest, NotFound
from fhir_server.http.routes import base_url, checked_id, services_of
from fhir_server.media import download_links
from fhir_server.media.binaries import BinaryRepository
from fhir_server.security.access import (
    audit_operation,
    authorize_operation,
    principal_of,
    repositories_for,
    run_operation,
)
from fhir_server.services import Services
from storage.blobs import BlobMissing
from storage.dismissals import DismissalStore
from storage.stored import now

logger = logging.getLogger("fhir_server")
DISMISS = "Patient/$not-a-duplicate"
"""How the audit names a dismissal (it needs the $merge permission: it is a decision)."""


@dataclass
class Console:
    """One console request: what its handler needs besides the request itself."""

    request: Request
    services: Services
    guard: session.CsrfGuard
    login: bool
    form: dict[str, str] = field(default_factory=dict)

    @property
    def repositories(self) -> Repositories:
        return repositories_for(self.request)

    @property
    def base_url(self) -> str:
        return base_url(self.request)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return page(self.request, template, context, guard=self.guard, login=self.login,
                    status=status)

    def client(self) -> str | None:
        """Who acts, for the merge record: the token's subject, else the client address."""
        principal = principal_of(self.request)
        if principal.authenticated:
            return principal.subject
        return self.request.client.host if self.request.client else None


Handler = Callable[[Console], Awaitable[Response]]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def console_page(handler: Handler, *, public: bool = False
                 ) -> Callable[[Request], Awaitable[Response]]:
    """The handler behind the console's checks: login (when configured), CSRF on POST, and
    errors rendered as an HTML page with their status."""

    async def endpoint(request: Request) -> Response:
        services = services_of(request)
        console = Console(request, services, session.CsrfGuard(request, services.link_key),
                          session.auth_configured(services.settings))
        if console.login and not public and not session.has_token(request):
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return _see_other(f"/console/login?next={quote(wanted)}")
        try:
            if request.method == "POST":
                console.form = await session.read_form(request)
                console.guard.check(console.form.get(session.CSRF_FIELD))
            return await handler(console)
        except FhirError as error:
            if error.status == 401 and console.login:
                response = _see_other("/console/login?expired=1")
                session.forget_token(request, response)
                return response
            return console.render("error.html", status=error.status, error=error)
        except Exception:
            logger.exception("console error on %s %s", request.method, request.url.path)
            return console.render("error.html", status=500,
                                  error=FhirError("The console failed to show this page; "
                                                  "the failure is logged"))

    return endpoint


def _state(console: Console) -> ConsoleState:
    app_state = console.request.app.state
    state = getattr(app_state, "console", None)
    if not isinstance(state, ConsoleState):
        state = ConsoleState(ScanFile(scan_path(console.services.settings)))
        app_state.console = state
    return state


async def _audited(console: Console, operation: str, entities: Sequence[str],
                   action: Callable[[], Awaitable[Any]], *, writes: bool = False) -> Any:
    """Run ``action`` as the API runs its operations (``run_operation``: authorised, audited
    succeeded or not, in the transaction of its writes when it writes)."""
    return await run_operation(console.request, operation, action,
                               entities=lambda _: list(entities), asked=list(entities),
                               writes=writes)


def _patients(*ids: str) -> list[str]:
    return [f"Patient/{patient_id}" for patient_id in ids]


# ------------------------------------------------------------------------ pages


async def home(console: Console) -> Response:
    return _see_other("/console/patients")


async def patient_search(console: Console) -> Response:
    query = console.request.query_params
    criteria = {name: query.get(name, "")[:200] for name, _ in SEARCH_FIELDS}
    found = await search_patients(console.repositories, criteria, query.get("page"),
                                  settings=console.services.settings, base_url=console.base_url)

    def page_link(token: str | None) -> str | None:
        if token is None:
            return None
        kept = [(name, value) for name, value in criteria.items() if value]
        return "/console/patients?" + urlencode([*kept, ("page", token)])

    return console.render("search.html", status=400 if found.error else 200, found=found,
                          fields=SEARCH_FIELDS, next_link=page_link(found.next_page),
                          previous_link=page_link(found.previous_page))


async def _likely_duplicates(console: Console, resource: dict[str, Any]) -> list[Any] | None:
    """The patient's likely duplicates by ``$match`` (not those dismissed); None when the
    caller may not run $match."""
    patient_id = str(resource["id"])
    try:
        authorize_operation(console.request, "Patient/$match", [patient_id])
    except FhirError as error:
        if error.status == 403:
            return None
        raise
    outcome = await console.services.matcher.match(resource, count=5, exclude=patient_id)
    found = [(result, outcome.resources[result.candidate.resource_id or ""])
             for result in outcome.results]
    await audit_operation(console.request, "Patient/$match",
                          entities=_patients(patient_id, *(str(r["id"]) for _, r in found)),
                          succeeded=True)
    dismissed = await DismissalStore(console.services.engine).among(
        (patient_id, str(other["id"])) for _, other in found)
    mrn_system = console.services.settings.mrn_system
    return [{"row": patient_row(other, mrn_system), "score": result.probability,
             "grade": result.grade} for result, other in found
            if tuple(sorted((patient_id, str(other["id"])))) not in dismissed]


async def patient(console: Console) -> Response:
    patient_id = checked_id(console.request.path_params["patient_id"])
    shown = await patient_page(console.repositories, patient_id,
                               settings=console.services.settings, base_url=console.base_url)
    duplicates = (await _likely_duplicates(console, shown.resource)
                  if shown.resource.get("active") is not False and not shown.replaced_by
                  else [])
    query = console.request.query_params
    return console.render("patient.html", patient=shown, duplicates=duplicates,
                          merged=query.get("merged"), undone=query.get("undone"))


async def document_download(console: Console) -> Response:
    """The document's first attachment: a redirect to a signed, short-lived link."""
    document_id = checked_id(console.request.path_params["document_id"])
    repositories = console.repositories
    document = (await repositories["DocumentReference"].read(document_id)).resource or {}
    url = next((str((content.get("attachment") or {}).get("url") or "")
                for content in document.get("content") or []), "")
    binary_id = url.rsplit("/", 1)[-1] if url.startswith("Binary/") or "/Binary/" in url else ""
    if not binary_id:
        raise NotFound(f"DocumentReference/{document_id} has no file stored here"
                       + (f" (its attachment is at {url[:200]})" if url else ""))
    await repositories["Binary"].read(checked_id(binary_id))  # the caller may read it
    binaries = console.services.repositories["Binary"]
    assert isinstance(binaries, BinaryRepository)
    file = await binaries.file(binary_id)
    seconds = console.services.settings.presign_seconds
    try:
        link = await binaries.store.presigned_url(file.sha256, expires_seconds=seconds,
                                                  content_type=file.content_type, filename=None)
    except BlobMissing:
        raise NotFound(f"Binary/{binary_id}: the content is no longer kept") from None
    if link is None:
        token = download_links.sign(console.services.link_key, binary_id,
                                    file.stored.version_id, int(time.time()) + seconds)
        link = f"/download/{token}"
    return _see_other(link)


async def duplicates(console: Console) -> Response:
    authorize_operation(console.request, "Patient/$match")
    state = _state(console)
    start = console.request.query_params.get("from", "0")
    if not start.isdigit():
        raise InvalidRequest("'from' must be a position in the queue (a number)")
    queue = await queue_page(console.repositories, state.scan_file.pairs(), int(start),
                             dismissals=DismissalStore(console.services.engine),
                             scanned_at=state.scan_file.written_at,
                             settings=console.services.settings, base_url=console.base_url)
    return console.render("duplicates.html", queue=queue, job=state.job,
                          scan_file=str(state.scan_file.path),
                          dismissed=console.request.query_params.get("dismissed"))


async def start_scan(console: Console) -> Response:
    authorize_operation(console.request, "Patient/$match")
    services = console.services
    started = _state(console).job.start(engine=services.engine, patients=services.patients,
                                        matcher=services.matcher,
                                        path=scan_path(services.settings))
    if started:
        await audit_operation(console.request, "Patient/$match", entities=[], succeeded=True)
    return _see_other("/console/duplicates")


async def dismiss(console: Console) -> Response:
    first = checked_id(console.form.get("first", ""))
    second = checked_id(console.form.get("second", ""))
    if first == second:
        raise InvalidRequest("A patient cannot be a duplicate of itself")
    authorize_operation(console.request, "Patient/$merge", [first, second])
    for patient_id in (first, second):
        await console.repositories["Patient"].read(patient_id)
    await DismissalStore(console.services.engine).dismiss(first, second, by=console.client(),
                                                          at=now())
    await audit_operation(console.request, DISMISS, entities=_patients(first, second),
                          succeeded=True)
    back = session.local_path(console.form.get("next"), "/console/duplicates")
    separator = "&" if "?" in back else "?"
    return _see_other(f"{back}{separator}dismissed={first},{second}")


async def _pair(console: Console, first_id: str, second_id: str
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    if first_id == second_id:
        raise InvalidRequest("Choose two different patients")
    patients = console.repositories["Patient"]
    first = (await patients.read(first_id)).resource or {}
    second = (await patients.read(second_id)).resource or {}
    return first, second


async def compare(console: Console) -> Response:
    first_id = checked_id(console.request.path_params["first"])
    second_id = checked_id(console.request.path_params["second"])
    first, second = await _pair(console, first_id, second_id)
    compared = await _audited(console, "Patient/$match", _patients(first_id, second_id),
                              lambda: comparison.compare(
                                  console.services.matcher, first, second,
                                  mrn_system=console.services.settings.mrn_system))
    dismissal = await DismissalStore(console.services.engine).find(first_id, second_id)
    return console.render("compare.html", compared=compared, dismissal=dismissal,
                          retired=[p["id"] for p in (first, second)
                                   if p.get("active") is False])


async def merge_preview(console: Console) -> Response:
    query = console.request.query_params
    target_id = checked_id(query.get("target", ""))
    others = [other for other in query.get("pair", "").split(",") if other != target_id]
    source_id = checked_id(query.get("source") or (others[0] if len(others) == 1 else ""))
    source, target = await _pair(console, source_id, target_id)
    outcome = await _audited(console, "Patient/$merge", _patients(source_id, target_id),
                             lambda: merging.preview(console.services.merger, source_id,
                                                     target_id))
    mrn_system = console.services.settings.mrn_system
    return console.render(
        "merge.html", outcome=outcome, source=patient_row(source, mrn_system),
        target=patient_row(target, mrn_system),
        gained=merging.gained_identifiers(target, outcome.result, mrn_system))


async def merge(console: Console) -> Response:
    source_id = checked_id(console.form.get("source", ""))
    target_id = checked_id(console.form.get("target", ""))
    await _pair(console, source_id, target_id)
    outcome = await _audited(console, "Patient/$merge", _patients(source_id, target_id),
                             lambda: merging.merge(console.services.merger, source_id,
                                                   target_id, requested_by=console.client()),
                             writes=True)
    return _see_other(f"/console/patients/{target_id}?merged={quote(outcome.merge_id or '')}")


async def unmerge(console: Console) -> Response:
    patient_id = checked_id(console.request.path_params["patient_id"])
    merge_id = checked_id(console.form.get("merge", ""))
    provenance = (await console.repositories["Provenance"].read(merge_id)).resource or {}
    involved = sorted({str(target.get("reference", "")).split("/")[1]
                       for target in provenance.get("target") or []
                       if str(target.get("reference", "")).startswith("Patient/")})
    if patient_id not in involved:
        raise InvalidRequest(f"Merge {merge_id} did not involve Patient/{patient_id}")
    await _audited(console, "Patient/$unmerge", _patients(*involved),
                   lambda: merging.unmerge(console.services.merger, merge_id), writes=True)
    return _see_other(f"/console/patients/{patient_id}?undone={quote(merge_id)}")


# ------------------------------------------------------------------------ login


async def login_form(console: Console) -> Response:
    if not console.login:
        return _see_other("/console")
    query = console.request.query_params
    return console.render("login.html", next=session.local_path(query.get("next")),
                          expired=query.get("expired") == "1", error=None)


async def login(console: Console) -> Response:
    if not console.login:
        return _see_other("/console")
    token = console.form.get("token", "").strip()
    target = session.local_path(console.form.get("next"))
    if not token or len(token) > session.MAX_TOKEN_CHARS or any(c.isspace() for c in token):
        return console.render("login.html", status=400, next=target, expired=False,
                              error="Paste one access token (a JWT, no spaces).")
    response = _see_other(target)
    session.store_token(console.request, response, token)
    return response


async def logout(console: Console) -> Response:
    response = _see_other("/console/login" if console.login else "/console")
    session.forget_token(console.request, response)
    return response


def console_routes() -> list[BaseRoute]:
    get, post = ["GET", "HEAD"], ["POST"]
    return [
        Route("/console", console_page(home), methods=get),
        Route("/console/login", console_page(login_form, public=True), methods=get),
        Route("/console/login", console_page(login, public=True), methods=post),
        Route("/console/logout", console_page(logout, public=True), methods=post),
        Route("/console/patients", console_page(patient_search), methods=get),
        Route("/console/patients/{patient_id}", console_page(patient), methods=get),
        Route("/console/patients/{patient_id}/unmerge", console_page(unmerge), methods=post),
        Route("/console/documents/{document_id}/download", console_page(document_download),
              methods=get),
        Route("/console/duplicates", console_page(duplicates), methods=get),
        Route("/console/duplicates/scan", console_page(start_scan), methods=post),
        Route("/console/duplicates/dismiss", console_page(dismiss), methods=post),
        Route("/console/compare/{first}/{second}", console_page(compare), methods=get),
        Route("/console/merge", console_page(merge_preview), methods=get),
        Route("/console/merge", console_page(merge), methods=post),
        Mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="console-static"),
    ]
