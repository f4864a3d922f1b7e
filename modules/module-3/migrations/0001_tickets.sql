-- The ticket drop's state, shared by every execution environment.
-- Portable SQL: the same file runs on SQLite and on PostgreSQL.

CREATE TABLE events (
    event_id    TEXT PRIMARY KEY,
    seats_total BIGINT NOT NULL CHECK (seats_total >= 0),
    -- The database refuses a negative stock, whatever the code does.
    seats_left  BIGINT NOT NULL CHECK (seats_left >= 0 AND seats_left <= seats_total)
);

CREATE TABLE reservations (
    reservation_id TEXT PRIMARY KEY,
    event_id       TEXT NOT NULL REFERENCES events (event_id),
    customer_id    TEXT NOT NULL,
    quantity       BIGINT NOT NULL CHECK (quantity > 0),
    first_seat     BIGINT NOT NULL,
    -- Seats left for the event right after this reservation.
    seats_left     BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    idempotency_key TEXT PRIMARY KEY,
    -- What the first request asked for: a retry must ask for the same.
    request         TEXT NOT NULL,
    reservation_id  TEXT NOT NULL REFERENCES reservations (reservation_id)
);
