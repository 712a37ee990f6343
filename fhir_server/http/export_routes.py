"""HTTP for the Bulk Data export (https://hl7.org/fhir/uv/bulkdata/export.html, v2):

- ``GET [base]/$export`` and ``GET [base]/Patient/$export`` with ``Prefer: respond-async``:
  202, ``Content-Location`` the job's status URL;
- ``GET [base]/$export-status/{job}``: 202 with ``X-Progress`` and ``Retry-After`` while it
  runs, 200 and the manifest when done, 500 with an OperationOutcome when it failed;
- ``DELETE [base]/$export-status/{job}``: 202, the job cancelled and its files removed;
- ``GET [base]/$export-file/{job}/{name}``: one NDJSON file (on S3 the manifest hands out
  presigned URLs instead).

Each call is authorised (search on every type the job exports, a user/ or system/ scope) and
audited; a job answers only the token subject that started it (404 to anyone else)."""

from __future__ import annotations

import uuid
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fhir_server.bulk_export.kickoff import PATIENT, SYSTEM, parse_kickoff
from fhir_server.bulk_export.service import NDJSON, POLL_SECONDS, BulkExports
from fhir_server.errors import FhirError, NotFound, informational_outcome
from fhir_server.http import routes
from fhir_server.http.negotiation import response_format
from fhir_server.http.responses import json_response
from fhir_server.security.access import audit_operation, authorize_operation, principal_of
from fhir_server.security.scopes import Reach
from mappings.fhir_dates import format_instant
from storage.export_jobs import CANCELLED, COMPLETED, FAILED, RUNNING, ExportJob, NewJob
from storage.stored import now

STATUS = "/$export-status"
FILES = "/$export-file"


def _exports(request: Request) -> BulkExports:
    exports = routes.services_of(request).exports
    if exports is None:
        raise NotFound("Bulk Data export is not available on this server")
    return exports


def _request_url(request: Request) -> str:
    """The kick-off URL as the client addressed it, under the server's base URL."""
    path = request.url.path.removeprefix("/fhir")
    query = request.url.query
    return f"{routes.base_url(request)}{path}" + (f"?{query}" if query else "")


async def system_export(request: Request) -> Response:
    return await _kickoff(request, SYSTEM, "$export")


async def patient_export(request: Request) -> Response:
    return await _kickoff(request, PATIENT, "Patient/$export")


async def _kickoff(request: Request, level: str, operation: str) -> Response:
    """Check the request and the token, record the job; the runner does the rest."""
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    services = routes.services_of(request)
    exports = _exports(request)
    principal = principal_of(request)
    try:
        wanted = parse_kickoff(request.query_params.multi_items(), level=level,
                               prefer=request.headers.get("prefer"), served=exports.types)
        types = wanted.types
        left_out: tuple[str, ...] = ()
        if types is None:  # every type the token may search; the others named in an error file
            types = tuple(kind for kind in exports.types
                          if principal.scopes.reach(kind, "s") is Reach.ALL)
            left_out = tuple(kind for kind in exports.types if kind not in types)
        authorize_operation(request, operation, types=types or exports.types)
    except FhirError as error:
        await audit_operation(request, operation, entities=(), succeeded=False,
                              detail=error.message)
        raise
    moment = now()
    job = NewJob(
        id=str(uuid.uuid4()), level=level, request_url=_request_url(request), types=types,
        left_out=left_out, since=wanted.since,
        subject=principal.subject if services.verifier is not None else None,
        reveal_ssn=principal.scopes.reach("Patient", "$reveal-ssn") is Reach.ALL,
        transaction_time=moment)
    await exports.jobs.create(job, now=moment)
    exports.runner.wake.set()
    await audit_operation(request, operation, entities=(), succeeded=True,
                          detail=f"export {job.id} started: {', '.join(types)}"
                          + (f" changed after {wanted.since}" if wanted.since else ""))
    message = f"Export {job.id} accepted; poll the Content-Location URL for its progress"
    if wanted.ignored:
        message += f" (ignored: {', '.join(wanted.ignored)})"
    return json_response(informational_outcome(message), 202, {
        "Content-Location": f"{routes.base_url(request)}{STATUS}/{job.id}"})


async def _own_job(request: Request, operation: str) -> ExportJob:
    """The job the path names, if the caller started it and may still search its types;
    refusals are audited (to the caller, another subject's job does not exist)."""
    exports = _exports(request)
    job_id = routes.checked_id(request.path_params["job_id"])
    principal = principal_of(request)
    job = await exports.jobs.get(job_id)
    refused = None
    if job is None or job.status == CANCELLED:
        refused = f"no export job {job_id}"
    elif routes.services_of(request).verifier is not None and job.subject != principal.subject:
        refused = f"export {job_id} belongs to another subject"
    if job is None or refused is not None:
        await audit_operation(request, operation, entities=(), succeeded=False, detail=refused)
        raise NotFound(f"No export job {job_id} (never started, cancelled or removed)")
    try:
        authorize_operation(request, operation, types=job.types)
    except FhirError as error:
        await audit_operation(request, operation, entities=(), succeeded=False,
                              detail=error.message)
        raise
    return job


def _progress(job: ExportJob) -> str:
    if job.status != RUNNING:
        return "queued"
    if job.planned is None:
        return "in progress: counting"
    share = 100 * job.exported // job.planned if job.planned else 100
    return f"{min(share, 99)}% complete ({job.exported} of {job.planned} resources)"


async def export_status(request: Request) -> Response:
    job = await _own_job(request, "$export-poll-status")
    exports = _exports(request)
    if job.status == FAILED:
        await audit_operation(request, "$export-poll-status", entities=(), succeeded=True,
                              detail=f"export {job.id}: failed")
        raise FhirError(job.error or "The export failed")
    if job.status != COMPLETED:
        await audit_operation(request, "$export-poll-status", entities=(), succeeded=True,
                              detail=f"export {job.id}: {_progress(job)}")
        return Response(status_code=202, headers={
            "X-Progress": _progress(job), "Retry-After": str(int(POLL_SECONDS))})
    base = routes.base_url(request)
    output: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for file in await exports.jobs.files(job.id):
        entry = {"type": file.resource_type,
                 "url": await exports.url(file, job_id=job.id, base_url=base),
                 "count": file.count}
        (output if file.kind == "output" else errors).append(entry)
    manifest = {
        "transactionTime": format_instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": routes.services_of(request).verifier is not None
        and not exports.presigned,
        "output": output,
        "error": errors,
    }
    await audit_operation(request, "$export-poll-status", entities=(), succeeded=True,
                          detail=f"export {job.id}: manifest of {len(output)} files")
    headers = {}
    if job.finished_at is not None:
        headers["Expires"] = _http_date(job.finished_at + exports.keep)
    return Response(orjson.dumps(manifest), status_code=200, headers=headers,
                    media_type="application/json")


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


async def export_cancel(request: Request) -> Response:
    job = await _own_job(request, "$export-cancel")
    exports = _exports(request)
    before = await exports.jobs.cancel(job.id)
    if before is None:
        raise NotFound(f"No export job {job.id} (never started, cancelled or removed)")
    if before != RUNNING:
        await exports.remove(job.id)
    await audit_operation(request, "$export-cancel", entities=(), succeeded=True,
                          detail=f"export {job.id} cancelled ({before})")
    return json_response(informational_outcome(
        f"Export {job.id} cancelled; its files are removed"), 202)


async def export_file(request: Request) -> Response:
    job = await _own_job(request, "$export-file")
    exports = _exports(request)
    name = request.path_params["file_name"]
    file = await exports.jobs.file(job.id, name) if job.status == COMPLETED else None
    if file is None:
        await audit_operation(request, "$export-file", entities=(), succeeded=False,
                              detail=f"export {job.id} has no file {name[:80]}")
        raise NotFound(f"Export {job.id} has no file {name[:80]}")
    await audit_operation(request, "$export-file", entities=(), succeeded=True,
                          detail=f"export {job.id}: {file.name} ({file.count} "
                                 f"{file.resource_type})")
    return StreamingResponse(exports.open(file), media_type=NDJSON,
                             headers={"Cache-Control": "private, no-store"})


def export_routes(prefix: str = "/fhir") -> list[Route]:
    """Ahead of ``/fhir/{resource_type}``, which would take ``$export`` for a type."""
    return [
        Route(prefix + "/$export", system_export, methods=["GET"]),
        Route(prefix + "/Patient/$export", patient_export, methods=["GET"]),
        Route(prefix + STATUS + "/{job_id}", export_status, methods=["GET"]),
        Route(prefix + STATUS + "/{job_id}", export_cancel, methods=["DELETE"]),
        Route(prefix + FILES + "/{job_id}/{file_name}", export_file, methods=["GET"]),
    ]
