"""Send rate limit: a token bucket of recipients per minute per client."""

from __future__ import annotations

import contextvars

import pytest

from fhir_server.errors import TooManyRequests
from fhir_server.messaging.send_throttle import SendThrottle, current_client, serve_client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_within_its_budget_passes() -> None:
    throttle = SendThrottle(60, clock=Clock())
    for _ in range(6):
        throttle.charge(10, "a")


def test_a_client_over_its_budget_is_told_when_to_retry() -> None:
    clock = Clock()
    throttle = SendThrottle(60, clock=clock)  # one recipient a second
    throttle.charge(50, "a")
    with pytest.raises(TooManyRequests) as caught:
        throttle.charge(20, "a")
    assert caught.value.status == 429
    assert caught.value.headers == {"Retry-After": "10"}
    assert caught.value.all_issues()[0].code == "throttled"
    assert "FHIR_SEND_RATE_LIMIT" in str(caught.value)
    clock.now += 10
    throttle.charge(20, "a")


def test_clients_have_their_own_budgets() -> None:
    throttle = SendThrottle(10, clock=Clock())
    throttle.charge(10, "a")
    throttle.charge(10, "b")
    with pytest.raises(TooManyRequests):
        throttle.charge(1, "a")


def test_a_request_larger_than_the_budget_waits_for_a_full_bucket_and_its_debt() -> None:
    clock = Clock()
    throttle = SendThrottle(60, clock=clock)
    throttle.charge(1, "a")
    with pytest.raises(TooManyRequests):
        throttle.charge(600, "a")  # needs the whole minute's budget
    clock.now += 1
    throttle.charge(600, "a")  # full again: passes, leaving 540 recipients of debt
    clock.now += 540
    with pytest.raises(TooManyRequests) as caught:
        throttle.charge(60, "a")
    assert caught.value.headers == {"Retry-After": "60"}
    clock.now += 60
    throttle.charge(60, "a")


def test_zero_turns_the_limit_off() -> None:
    throttle = SendThrottle(0, clock=Clock())
    throttle.charge(10**9, "a")


def test_the_client_defaults_to_the_request_being_served() -> None:
    throttle = SendThrottle(5, clock=Clock())
    throttle.charge(100)  # outside a request: nobody to charge

    def in_request() -> None:
        serve_client(lambda: "203.0.113.9")
        assert current_client() == "203.0.113.9"
        throttle.charge(5)
        with pytest.raises(TooManyRequests):
            throttle.charge(1)

    contextvars.copy_context().run(in_request)
    throttle.charge(1, "198.51.100.1")
