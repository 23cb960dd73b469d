"""Every Prometheus metric of the services, defined once so names stay consistent.

Labels never carry personal data: only event types, routes, outcomes, activity kinds.
Each service runs in its own process, so the default registry is per service.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "lob_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "lob_http_request_duration_seconds", "HTTP request duration", ["method", "route"]
)
HTTP_REJECTED = Counter(
    "lob_http_rejected_total",
    "Requests refused before any work (too_large, chunked_body, rate_limited)",
    ["reason"],
)
EVENTS_PUBLISHED = Counter(
    "lob_events_published_total", "Events published from the outbox to the broker", ["event_type"]
)
OUTBOX_PENDING = Gauge("lob_outbox_pending", "Outbox messages not yet published")
OUTBOX_OLDEST_SECONDS = Gauge(
    "lob_outbox_oldest_pending_seconds", "Age of the oldest unpublished outbox message"
)
OUTBOX_PUBLISH_ERRORS = Counter(
    "lob_outbox_publish_errors_total", "Failed attempts to publish from the outbox"
)
EVENTS_CONSUMED = Counter(
    "lob_events_consumed_total",
    "Events received by a handler, by outcome (processed, duplicate, retried, dead_lettered)",
    ["event_type", "handler", "outcome"],
)
DEAD_LETTERS = Gauge(
    "lob_dead_letters", "Messages parked in a dead-letter queue of this service", ["queue"]
)
SIGN_UPS = Counter("lob_sign_ups_total", "Accepted sign-ups", ["activity_kind", "role"])
NOTIFICATIONS = Counter(
    "lob_notifications_total",
    "Notifications by final status (sent, failed)",
    ["template", "status"],
)
NOTIFICATIONS_SENDING = Gauge(
    "lob_notifications_sending", "Messages claimed for sending and not yet recorded as sent"
)
NOTIFICATIONS_SENDING_OLDEST_SECONDS = Gauge(
    "lob_notifications_sending_oldest_seconds",
    "Age of the oldest claim of a message still in 'sending' (0 when none)",
)
NOTIFICATIONS_RECLAIMED = Counter(
    "lob_notifications_reclaimed_total",
    "Messages whose claim had expired (its process died) and were taken over",
)
SCHEDULE_RUNS = Counter("lob_schedule_runs_total", "Schedule runs", ["activity_kind"])
SCHEDULE_SECONDS = Histogram(
    "lob_schedule_duration_seconds",
    "Time to compute a plan",
    ["activity_kind"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
