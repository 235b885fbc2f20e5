#!/usr/bin/python3
"""3. An external projector for order_summary, as a client application
would write one: it reads batches of events over its connection, in
(ordering_key, global_position) order below the safe key, sends for each
event the statements the example's handler (examples/ecommerce/handlers.sql)
runs, with the payload values as parameters, and saves its checkpoint in the
transaction of each batch.

Statements are prepared once on the server (PREPARE/EXECUTE), the most
favourable way to send them; the connection is the server's Unix socket, so
each statement costs a local round trip and no network latency.

Prints one JSON line: events applied, statements sent, batches, seconds.
"""
import argparse
import json
import sys
import time
from decimal import Decimal

import psycopg2
import psycopg2.extras

# The handler's statements, one list per event type: (prepared name, SQL,
# payload keys sent as parameters, in order).  Values are sent as text and
# cast by the statement the way the handler casts e.data->>'key'.
# Keep in step with ecommerce.order_summary_apply.
STATEMENTS = {
    "OrderCreated": [(
        "order_created",
        "INSERT INTO ecommerce.order_summary"
        " (order_id, customer_id, status, total_amount, item_count, created_at, updated_at)"
        " VALUES ($1, $2, 'pending', 0, 0, $3::timestamptz, $4::timestamptz)",
        ["order_id", "customer_id", "created_at", "@recorded_at"])],
    "OrderItemAdded": [(
        "order_item_added",
        "UPDATE ecommerce.order_summary"
        " SET total_amount = total_amount + $2::numeric * $3::numeric,"
        " item_count = item_count + 1, updated_at = $4::timestamptz"
        " WHERE order_id = $1",
        ["order_id", "price", "quantity", "@recorded_at"])],
    "OrderItemRemoved": [(
        "order_item_removed",
        "UPDATE ecommerce.order_summary"
        " SET total_amount = total_amount - $2::numeric * $3::numeric,"
        " item_count = item_count - 1, updated_at = $4::timestamptz"
        " WHERE order_id = $1",
        ["order_id", "price", "quantity", "@recorded_at"])],
    "OrderShipped": [(
        "order_shipped",
        "UPDATE ecommerce.order_summary"
        " SET status = 'shipped', shipped_at = $2::timestamptz, updated_at = $3::timestamptz"
        " WHERE order_id = $1",
        ["order_id", "shipped_at", "@recorded_at"])],
    "OrderCompleted": [(
        "order_completed",
        "UPDATE ecommerce.order_summary"
        " SET status = 'completed', completed_at = $2::timestamptz, updated_at = $3::timestamptz"
        " WHERE order_id = $1",
        ["order_id", "completed_at", "@recorded_at"])],
    "OrderCancelled": [(
        "order_cancelled",
        "UPDATE ecommerce.order_summary"
        " SET status = 'cancelled', cancelled_at = $2::timestamptz,"
        " cancellation_reason = $3, updated_at = $4::timestamptz"
        " WHERE order_id = $1",
        ["order_id", "cancelled_at", "reason", "@recorded_at"])],
}

FETCH = (
    "SELECT e.ordering_key, e.global_position, e.event_type, e.data::text,"
    " e.recorded_at::text, e.stream_id, e.stream_version"
    " FROM projections.events e"
    " WHERE (e.ordering_key, e.global_position) > (%s, %s)"
    " AND e.ordering_key < (SELECT projections._safe_key())"
    " AND (%s::text[] IS NULL OR e.event_type = ANY (%s::text[]))"
    " ORDER BY e.ordering_key, e.global_position LIMIT %s")


def as_text(value):
    """A JSON value as the text e.data->>'key' gives (None for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--dbname", required=True)
    ap.add_argument("--types", default="null", help="JSON array of event types, or null")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--name", default="external_projector")
    a = ap.parse_args()
    types = json.loads(a.types)

    t0 = time.monotonic()
    conn = psycopg2.connect(host=a.host, port=a.port, user="postgres", dbname=a.dbname,
                            application_name="projections-bench projector")
    cur = conn.cursor()
    for stmts in STATEMENTS.values():
        for name, sql, keys in stmts:
            cur.execute(f"PREPARE {name} AS {sql}")
    cur.execute("INSERT INTO bench.checkpoint (name, ordering_key, global_position)"
                " VALUES (%s, 0, 0) ON CONFLICT (name) DO UPDATE"
                " SET ordering_key = 0, global_position = 0, applied = 0", (a.name,))
    conn.commit()

    key, pos = 0, 0
    events = statements = batches = 0
    while True:
        cur.execute(FETCH, (key, pos, types, types, a.batch))
        rows = cur.fetchall()
        for k, p, etype, data, recorded_at, stream_id, version in rows:
            payload = json.loads(data, parse_float=Decimal)
            for name, sql, keys in STATEMENTS.get(etype, ()):
                params = [recorded_at if k_ == "@recorded_at" else as_text(payload.get(k_))
                          for k_ in keys]
                cur.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)
                statements += 1
            key, pos = k, p
            events += 1
        if rows:
            cur.execute("UPDATE bench.checkpoint SET ordering_key = %s, global_position = %s,"
                        " applied = applied + %s WHERE name = %s", (key, pos, len(rows), a.name))
        conn.commit()
        batches += 1
        if len(rows) < a.batch:
            break
    dt = time.monotonic() - t0
    conn.close()
    print(json.dumps({"events": events, "statements": statements, "batches": batches,
                      "seconds": dt}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
