"""The lab's flash sale, as a Locust scenario against a real API.

Each request is the one the lab's `flash-sale` scenario sends
(lab/src/scenario.rs, RESERVE): a fan asks for one seat of the drop,

    POST /events/midnight-tour/reservations
    content-type: application/json
    {"customer_id": "fan-<n>", "quantity": 1}

with a new fan every time. The traffic has the lab's shape: a steady
baseline, a sudden jump when the sale opens, then the baseline again
(FLASH_* below; the defaults are the lab's 50 -> 800 -> 50 requests a
second over 20 seconds).

    locust -f infra/load/locustfile.py --headless --host https://API-ID.execute-api.REGION.amazonaws.com

README.md beside this file says how to run it, on one machine or many, and
what it costs.

Locust is closed-loop: a user waits for each answer before it sends again.
Here every user sends at most one request a second (constant_throughput),
so the shape's user count is the request rate as long as answers take less
than a second; when they take longer, the rate drops below the plan, which
the lab's open-loop generator never does. Compare "RPS" in Locust's output
with the plan.
"""

import itertools
import json
import logging
import os
import uuid
from collections import Counter

from locust import LoadTestShape, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser


def _number(name, default):
    """A positive number from the environment, or the default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number")
    if value < 0:
        raise SystemExit(f"{name}={raw!r} must not be negative")
    return value


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


# The spike, as in the lab's flash-sale scenario: spike_plan(50, 800, 5, 10, 20).
BASE_RPS = _number("FLASH_BASE_RPS", 50)  # fans a second before and after
PEAK_RPS = _number("FLASH_PEAK_RPS", 800)  # fans a second while the sale opens
SPIKE_AT = _number("FLASH_SPIKE_AT", 5)  # seconds from the start
SPIKE_LENGTH = _number("FLASH_SPIKE_LENGTH", 10)  # seconds
DURATION = _number("FLASH_DURATION", 20)  # seconds in all
# The event on sale; the stack's Events parameter must have it.
EVENT_ID = os.environ.get("FLASH_EVENT", "midnight-tour")
# The lab sends no Idempotency-Key. Set FLASH_IDEMPOTENCY_KEY=1 to send a new
# one with every request, as a shop that retries safely would; the store then
# also writes the key (one more row per reservation).
IDEMPOTENCY_KEY = _flag("FLASH_IDEMPOTENCY_KEY")

RESERVATIONS = f"/events/{EVENT_ID}/reservations"

# Fans are numbered per process; the prefix keeps the workers of a
# distributed run (and runs one after another) from reusing a customer id,
# which MAX_PER_CUSTOMER would soon refuse.
RUN = uuid.uuid4().hex[:8]
_fans = itertools.count(1)

log = logging.getLogger("flash-sale")


class Fan(FastHttpUser):
    """One fan a second per user: the shape's user count is the target rate."""

    wait_time = constant_throughput(1)

    def on_start(self):
        # The stack's ApiUrl output ends with a slash; the paths start with one.
        self.path = RESERVATIONS[1:] if (self.host or "").endswith("/") else RESERVATIONS

    @task
    def reserve(self):
        n = next(_fans)
        body = json.dumps({"customer_id": f"fan-{RUN}-{n}", "quantity": 1})
        headers = {"content-type": "application/json", "accept": "application/json"}
        if IDEMPOTENCY_KEY:
            headers["idempotency-key"] = f"flash-{RUN}-{n}"
        with self.client.post(
            self.path,
            data=body,
            headers=headers,
            name=f"POST /events/{EVENT_ID}/reservations",
            catch_response=True,
        ) as response:
            status = response.status_code
            if status in (200, 201):
                response.success()  # a seat (200: an idempotent replay)
            elif status == 409:
                # Sold out, or the customer's limit: the drop working as
                # designed once the seats are gone, not a failure.
                response.success()
            elif status == 429:
                response.failure("429: throttled by API Gateway (stage or account limit)")
            elif status >= 500:
                response.failure(
                    f"{status}: the API could not get an answer from the function "
                    "(a Lambda throttle, a timeout or an error: see CloudWatch)"
                )
            elif status == 0:
                response.failure(f"no answer: {response.error}")
            else:
                response.failure(f"{status}: unexpected for a reservation")


class FlashSale(LoadTestShape):
    """Baseline, a sudden jump for SPIKE_LENGTH seconds, baseline again."""

    def tick(self):
        t = self.get_run_time()
        if t >= DURATION:
            return None
        in_spike = SPIKE_AT <= t < SPIKE_AT + SPIKE_LENGTH
        users = round(max(PEAK_RPS, BASE_RPS) if in_spike else BASE_RPS)
        # Start (or stop) the whole difference within about a second: a jump,
        # not a ramp.
        spawn_rate = max(abs(PEAK_RPS - BASE_RPS), BASE_RPS, 1)
        return users, spawn_rate


# Answers by status, across every worker: what the lab's report calls
# "status", printed once at the end.
_statuses = Counter()


@events.request.add_listener
def _count_status(response=None, exception=None, **_kwargs):
    status = getattr(response, "status_code", None)
    if status:
        _statuses[str(status)] += 1
    else:
        _statuses["no answer"] += 1


@events.report_to_master.add_listener
def _send_statuses(client_id, data):
    data["flash_statuses"] = dict(_statuses)
    _statuses.clear()


@events.worker_report.add_listener
def _receive_statuses(client_id, data):
    _statuses.update(data.get("flash_statuses", {}))


@events.quitting.add_listener
def _print_statuses(environment, **_kwargs):
    from locust.runners import WorkerRunner

    if isinstance(environment.runner, WorkerRunner):
        return
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(_statuses.items()))
    log.info("flash sale answers by status: %s", counts or "none")


@events.test_start.add_listener
def _print_plan(environment, **_kwargs):
    from locust.runners import WorkerRunner

    if isinstance(environment.runner, WorkerRunner):
        return
    planned = BASE_RPS * (DURATION - min(SPIKE_LENGTH, max(DURATION - SPIKE_AT, 0))) + max(
        PEAK_RPS, BASE_RPS
    ) * min(SPIKE_LENGTH, max(DURATION - SPIKE_AT, 0))
    log.info(
        "flash sale: %g/s, %g/s from %gs for %gs, %gs in all (about %d requests planned) "
        "against %s%s",
        BASE_RPS,
        PEAK_RPS,
        SPIKE_AT,
        SPIKE_LENGTH,
        DURATION,
        planned,
        environment.host,
        RESERVATIONS,
    )
