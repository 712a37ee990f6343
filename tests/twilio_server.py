"""A local HTTP server speaking Twilio's Messages API as the ``twilio`` library calls it, for
tests with real wire traffic: create (``POST .../Messages.json``), list (``GET
.../Messages.json`` with To, From, DateSent>, PageSize) and fetch (``GET
.../Messages/{Sid}.json``), HTTP basic auth with the account SID and token, Twilio-shaped
JSON answers and errors. It records what it receives, fails on demand, and signs status
callbacks and inbound messages as Twilio does (``X-Twilio-Signature``).

The fake "sends" at once: ``date_sent`` is the time of receipt, the status ``queued`` until a
status callback moves it on."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

API = "/2010-04-01"
MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages(?:/(SM[0-9a-f]{32}))?"
                      r"\.json$")
E164 = re.compile(r"^(whatsapp:)?\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted, as the client posted it."""

    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    date_created: datetime
    form: dict[str, str]
    status: str = "queued"


@dataclass
class _Failure:
    status: int
    code: int | None
    message: str
    remaining: int


@dataclass
class TwilioServer:
    """The server's state; ``url`` is what ``FHIR_TWILIO_API_BASE`` should be."""

    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    sms_from: str = "+15005550006"
    whatsapp_from: str = "+14155238886"
    url: str = ""
    on_receive: Callable[[ReceivedMessage], None] | None = None
    """Called after a message is recorded and before it is answered."""
    post_count: int = 0
    """Every create request, refused ones included."""
    _messages: list[ReceivedMessage] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """What was accepted, oldest first."""
        with self._lock:
            return list(self._messages)

    def environment(self) -> dict[str, str]:
        """The variables that point the server's Twilio channels here (for a worker process)."""
        return {"TWILIO_ACCOUNT_SID": self.account_sid, "TWILIO_AUTH_TOKEN": self.auth_token,
                "TWILIO_FROM_NUMBER": self.sms_from, "TWILIO_WHATSAPP_FROM": self.whatsapp_from,
                "FHIR_TWILIO_API_BASE": self.url}

    def fail_next(self, status: int, *, code: int | None = None, count: int = 1,
                  message: str = "Injected failure") -> None:
        """Answer the next ``count`` creates with this error (nothing recorded)."""
        with self._lock:
            self._failures.append(_Failure(status, code, message, count))

    def message(self, sid: str) -> ReceivedMessage:
        [found] = [message for message in self.messages if message.sid == sid]
        return found

    def signed(self, url: str, form: dict[str, str]) -> dict[str, str]:
        """The headers Twilio sends with ``form`` posted to ``url``."""
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        return {"X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded"}

    def post_status_callback(self, sid: str, status: str, url: str | None = None, *,
                             error_code: str | None = None,
                             client: httpx.Client | None = None) -> httpx.Response:
        """Post the status callback of message ``sid`` (to its StatusCallback unless ``url``);
        ``client`` may be a Starlette TestClient for an app not listening on a port."""
        message = self.message(sid)
        target = url or message.status_callback
        if target is None:
            raise ValueError(f"message {sid} has no StatusCallback and no url was given")
        form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                "AccountSid": self.account_sid, "To": message.to, "From": message.from_,
                "ApiVersion": "2010-04-01"}
        if error_code is not None:
            form["ErrorCode"] = error_code
        with self._lock:
            self._messages = [replace(item, status=status) if item.sid == sid else item
                              for item in self._messages]
        return _post(client, target, form, self.signed(target, form))

    def post_inbound(self, url: str, *, from_: str, body: str, to: str | None = None,
                     client: httpx.Client | None = None) -> httpx.Response:
        """Post an incoming message (a reply such as ``STOP``) to ``url``, signed."""
        sid = _sid("SM")
        form = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
                "AccountSid": self.account_sid, "From": from_, "To": to or self.sms_from,
                "Body": body, "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}
        return _post(client, url, form, self.signed(url, form))

    def _take_failure(self) -> _Failure | None:
        with self._lock:
            self.post_count += 1
            if not self._failures:
                return None
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            return failure

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)


def _post(client: httpx.Client | None, url: str, form: dict[str, str],
          headers: dict[str, str]) -> httpx.Response:
    if client is not None:
        return client.post(url, content=urlencode(form), headers=headers)
    with httpx.Client(timeout=10) as own:
        return own.post(url, content=urlencode(form), headers=headers)


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _resource(server: TwilioServer, message: ReceivedMessage) -> dict[str, Any]:
    uri = f"{API}/Accounts/{server.account_sid}/Messages/{message.sid}.json"
    created = format_datetime(message.date_created)
    return {
        "account_sid": server.account_sid, "api_version": "2010-04-01", "body": message.body,
        "date_created": created, "date_sent": created, "date_updated": created,
        "direction": "outbound-api", "error_code": None, "error_message": None,
        "from": message.from_, "messaging_service_sid": None, "num_media": "0",
        "num_segments": "1", "price": None, "price_unit": "USD", "sid": message.sid,
        "status": message.status, "to": message.to, "uri": uri,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
    }


def _error(status: int, code: int | None, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None}


def _date_filter(value: str) -> datetime:
    pattern = "%Y-%m-%dT%H:%M:%SZ" if "T" in value else "%Y-%m-%d"
    return datetime.strptime(value, pattern).replace(tzinfo=UTC)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        match = self._authorised()
        if match is None:
            return
        if match.group(2):
            return self._answer(405, _error(405, 20004, "Method not allowed"))
        length = int(self.headers.get("Content-Length") or 0)
        raw = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        form = {name: values[-1] for name, values in raw.items()}
        fake = self.server.fake
        failure = fake._take_failure()
        if failure is not None:
            return self._answer(failure.status,
                                _error(failure.status, failure.code, failure.message))
        refusal = _refusal(form)
        if refusal is not None:
            return self._answer(400, refusal)
        message = ReceivedMessage(
            sid=_sid("SM"), to=form["To"], from_=form["From"], body=form["Body"],
            status_callback=form.get("StatusCallback"),
            date_created=datetime.now(UTC).replace(microsecond=0), form=form)
        fake._record(message)
        if fake.on_receive is not None:
            fake.on_receive(message)
        self._answer(201, _resource(fake, message))

    def do_GET(self) -> None:
        match = self._authorised()
        if match is None:
            return
        fake = self.server.fake
        if match.group(2):
            found = [item for item in fake.messages if item.sid == match.group(2)]
            if not found:
                return self._answer(404, _error(404, 20404, "The requested resource was "
                                                            "not found"))
            return self._answer(200, _resource(fake, found[0]))
        self._answer(200, _page(fake, self.path))

    def _authorised(self) -> re.Match[str] | None:
        match = MESSAGES.match(urlsplit(self.path).path)
        if match is None:
            self._answer(404, _error(404, 20404, "The requested resource was not found"))
            return None
        fake = self.server.fake
        expected = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
        if (self.headers.get("Authorization") != f"Basic {expected}"
                or match.group(1) != fake.account_sid):
            self._answer(401, _error(401, 20003, "Authenticate"))
            return None
        return match

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client died meanwhile
            pass


def _refusal(form: dict[str, str]) -> dict[str, Any] | None:
    """Twilio's 400 answers to a create it cannot take."""
    if not form.get("To"):
        return _error(400, 21604, "A 'To' phone number is required.")
    if not form.get("From"):
        return _error(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body"):
        return _error(400, 21602, "Message body is required.")
    if not E164.match(form["To"]):
        return _error(400, 21211, f"Invalid 'To' Phone Number: {form['To']}")
    return None


def _page(fake: TwilioServer, path: str) -> dict[str, Any]:
    parts = urlsplit(path)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    found = fake.messages
    if "To" in query:
        found = [item for item in found if item.to == query["To"]]
    if "From" in query:
        found = [item for item in found if item.from_ == query["From"]]
    if "DateSent>" in query:
        after = _date_filter(query["DateSent>"])
        found = [item for item in found if item.date_created >= after]
    found.sort(key=lambda item: item.date_created, reverse=True)
    size = min(int(query.get("PageSize", "50")), 1000)
    number = int(query.get("Page", "0"))
    chosen = found[number * size:(number + 1) * size]

    def uri(page: int) -> str:
        kept = {name: value for name, value in query.items() if name not in ("Page",
                                                                              "PageToken")}
        return f"{parts.path}?{urlencode({**kept, 'PageSize': size, 'Page': page})}"

    more = (number + 1) * size < len(found)
    return {"messages": [_resource(fake, item) for item in chosen],
            "first_page_uri": uri(0), "next_page_uri": uri(number + 1) if more else None,
            "previous_page_uri": uri(number - 1) if number else None, "page": number,
            "page_size": size, "start": number * size,
            "end": number * size + max(len(chosen) - 1, 0), "uri": uri(number)}


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: TwilioServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def running_twilio_server() -> Iterator[TwilioServer]:
    """A fresh Twilio Messages API on a free local port until the block ends."""
    fake = TwilioServer()
    http = _HttpServer(fake)
    fake.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                              name="twilio-server", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


@pytest.fixture
def twilio_server() -> Iterator[TwilioServer]:
    """A fresh Twilio Messages API on a free local port, for one test."""
    with running_twilio_server() as fake:
        yield fake
