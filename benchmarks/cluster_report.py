"""The "Scale-out on Redis" section of results.md: scenarios R, S and T.

Besides the tables, it works out from the measured costs what the machine
spent its cores on and what a bigger one should do: one Redis core at r µs
of CPU per message bounds the whole cluster at 1/r messages a second, and a
node's core at d µs per delivery delivers 1/d copies a second, so deliveries
grow with the nodes until Redis's bound.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from report import Table, _bounded, _fmt, trouble
from servers import ALL_SERVER_KINDS
from servers import TITLES as SERVER_TITLES

Row = dict[str, Any]


def _rows(meds: Sequence[Row], scenario: str) -> list[Row]:
    order = {k: i for i, k in enumerate(ALL_SERVER_KINDS)}
    return sorted((m for m in meds if m["scenario"] == scenario), key=lambda m: order[m["server"]])


def _cell(m: Row, key: str, spec: str) -> str:
    return _fmt(m.get(key), spec, _bounded(m, key))


def _pair(m: Row, keys: tuple[str, ...], spec: str = ".1f") -> str:
    return " / ".join(_cell(m, k, spec) for k in keys)


def _processes(m: Row) -> str:
    if "mode" not in m:
        return "1"
    spread = m.get("clients_per_process") or []
    how = {"workers": "--workers, one port", "nodes": "separate nodes, a port each",
           "node": "one node"}.get(m["mode"], m["mode"])
    pinned = ", pinned" if m.get("pinned") else ", not pinned"
    return (f"{m.get('processes', 1):.0f} ({how}{pinned}; clients "
            f"{'+'.join(str(n) for n in spread) or '?'})")


def fan_out_table(rows: Sequence[Row]) -> str:
    table = Table("server", "processes (clients each)", "deliveries/s", "messages/s",
                  "latency p50 / p99 (ms)", "all copies p99 (ms)", "server CPU %",
                  "server CPU µs/delivery", "server CPU µs/message", "Redis CPU %",
                  "Redis CPU µs/message", "loadgen CPU %", "runs", "errors")
    for m in rows:
        table.row(SERVER_TITLES[m["server"]], _processes(m), _cell(m, "deliveries_per_s", ",.0f"),
                  _cell(m, "messages_per_s", ",.0f"), _pair(m, ("lat_p50_ms", "lat_p99_ms")),
                  _cell(m, "all_p99_ms", ".1f"), _cell(m, "server_cpu_pct", ".0f"),
                  _cell(m, "cpu_us_per_delivery", ".2f"), _cell(m, "cpu_us_per_msg", ".1f"),
                  _cell(m, "redis_cpu_pct", ".0f"), _cell(m, "redis_us_per_msg", ".1f"),
                  _cell(m, "loadgen_cpu_pct", ".0f"), str(m["runs"]), trouble(m))
    return str(table)


def same_rate_table(rows: Sequence[Row]) -> str:
    table = Table("server", "paced rate (messages/s)", "deliveries/s", "latency p50 / p99 (ms)",
                  "all copies p99 (ms)", "server CPU µs/message", "server CPU µs/delivery",
                  "Redis CPU µs/message", "server + Redis µs/message", "runs", "errors")
    for m in rows:
        total = (None if m.get("cpu_us_per_msg") is None
                 else m["cpu_us_per_msg"] + (m.get("redis_us_per_msg") or 0.0))
        table.row(SERVER_TITLES[m["server"]], _fmt(m.get("rate"), ",.0f"),
                  _cell(m, "deliveries_per_s", ",.0f"), _pair(m, ("lat_p50_ms", "lat_p99_ms")),
                  _cell(m, "all_p99_ms", ".1f"), _cell(m, "cpu_us_per_msg", ".1f"),
                  _cell(m, "cpu_us_per_delivery", ".2f"), _cell(m, "redis_us_per_msg", ".1f"),
                  _fmt(total, ".1f"), str(m["runs"]), trouble(m))
    return str(table)


def stored_table(rows: Sequence[Row]) -> str:
    table = Table("server", "durability", "messages/s stored", "latency p50 / p99 (ms)",
                  "server CPU %", "server CPU µs/message", "Redis CPU %", "Redis CPU µs/message",
                  "runs", "errors")
    for m in rows:
        if m["server"] == "chattycat-sqlite":
            durability = "SQLite file, a transaction per batch"
        else:
            wanted = "always" if m["server"].endswith("always") else "everysec"
            durability = (f"--redis-durability {wanted}, appendfsync "
                          f"{m.get('redis_fsync') or '?'} ({m.get('aof_fs') or '?'})")
        table.row(SERVER_TITLES[m["server"]], durability, _cell(m, "messages_per_s", ",.0f"),
                  _pair(m, ("lat_p50_ms", "lat_p99_ms")), _cell(m, "server_cpu_pct", ".0f"),
                  _cell(m, "cpu_us_per_msg", ".1f"), _cell(m, "redis_cpu_pct", ".0f"),
                  _cell(m, "redis_us_per_msg", ".1f"), str(m["runs"]), trouble(m))
    return str(table)


def _find(rows: Sequence[Row], server: str) -> Row | None:
    return next((m for m in rows if m["server"] == server), None)


def round_trip(same_rate: Sequence[Row]) -> str:
    """What the Redis round trip adds per message, from T."""
    memory, redis = _find(same_rate, "chattycat"), _find(same_rate, "chattycat-redis")
    if not (memory and redis and memory.get("cpu_us_per_msg") and redis.get("cpu_us_per_msg")):
        return ""
    extra = redis["cpu_us_per_msg"] - memory["cpu_us_per_msg"]
    text = (f"At the same rate ({_fmt(redis.get('rate'), ',.0f')} messages/s) the `--redis` node "
            f"spent {redis['cpu_us_per_msg']:.1f} µs of CPU per message against "
            f"{memory['cpu_us_per_msg']:.1f} µs for `:memory:`: the Redis round trip costs the "
            f"node {extra:.1f} µs per message ({100 * extra / memory['cpu_us_per_msg']:+.0f}%)")
    if redis.get("redis_us_per_msg"):
        text += f", and Redis itself {redis['redis_us_per_msg']:.1f} µs per message"
    return text + "."


def bottleneck(fan_out: Sequence[Row]) -> str:
    """Where the machine's cores went in R's multi-process runs."""
    cores = os.cpu_count() or 1
    lines = []
    for m in fan_out:
        if m.get("mode") not in ("workers", "nodes") or m.get("server_cpu_pct") is None:
            continue
        used = [m.get("server_cpu_pct"), m.get("redis_cpu_pct"), m.get("loadgen_cpu_pct")]
        shown = [_fmt(u, ".0f") for u in used]
        total = sum(u for u in used if u)
        lines.append(f"- {SERVER_TITLES[m['server']]}: nodes {shown[0]}%, Redis {shown[1]}%, "
                     f"load generator {shown[2]}% of one core: {total:.0f}% of the "
                     f"{100 * cores}% this machine has.")
    return "\n".join(lines)


def follow_cost(fan_out: Sequence[Row], key: str) -> tuple[float, int] | None:
    """What each more process in the room adds to ``key`` (µs per message), from R.

    Every node with a member in a room reads each of its messages from the
    room's stream, decodes it and makes its own loop passes for it: from one
    process to N, the cost per message grows by about (N - 1) times this,
    for the nodes (``cpu_us_per_msg``) and for Redis (``redis_us_per_msg``).
    Returns (µs per added process, N).
    """
    one = _find(fan_out, "chattycat-redis-w1")
    many = [m for m in fan_out if m.get("mode") in ("workers", "nodes") and m.get(key)
            and (m.get("processes") or 1) > 1]
    if not one or not one.get(key) or not many:
        return None
    top = max(many, key=lambda m: m["processes"])
    return (top[key] - one[key]) / (top["processes"] - 1), int(top["processes"])


def scaling(fan_out: Sequence[Row], same_rate: Sequence[Row]) -> str:
    """The expected scaling on a bigger machine, from the measured per-message costs."""
    # At full load (R) a Redis pass and a node's pass carry many messages each,
    # as they would near any bound; a paced rate (T) costs more per message.
    node = _find(fan_out, "chattycat-redis") or _find(same_rate, "chattycat-redis")
    if not node or not node.get("redis_us_per_msg") or not node.get("cpu_us_per_delivery"):
        return ""
    redis_us, delivery_us = node["redis_us_per_msg"], node["cpu_us_per_delivery"]
    members = node.get("clients") or 100
    bound, per_core = 1e6 / redis_us, 1e6 / delivery_us
    text = [f"Expected scaling, from the per-message costs of one node at full load "
            f"({node['scenario']}): "
            f"Redis spends {redis_us:.1f} µs of its single core per message, which bounds the "
            f"whole cluster at about {bound:,.0f} messages/s, all rooms together, while each "
            "room's members are on one node. A node spends "
            f"{delivery_us:.2f} µs per delivery (its share of the message's own cost "
            f"included), so each core of nodes delivers about {per_core:,.0f} copies/s and "
            f"deliveries grow with the nodes up to Redis's bound: in rooms of {members:.0f}, "
            f"{bound:,.0f} messages/s are {bound * members:,.0f} deliveries/s, about "
            f"{bound * members / per_core:.0f} cores of nodes."]
    node_extra = follow_cost(fan_out, "cpu_us_per_msg")
    redis_extra = follow_cost(fan_out, "redis_us_per_msg")
    if node_extra is not None and redis_extra is not None:
        spread = node_extra[1]
        text.append(
            f"A room whose members are spread over K nodes costs more per message, since "
            f"every one of them reads each message: from 1 process to {spread} in R, node CPU "
            f"per message grew by {node_extra[0]:.1f} µs and Redis's by {redis_extra[0]:.1f} µs "
            "per added process (on this machine with more processes than cores, context "
            "switches included). So many rooms scale with the nodes; one busy room spread "
            "over every node is bounded by about 1 / (Redis per message + (K - 1) x "
            f"{redis_extra[0]:.1f} µs) and by each node's fixed cost per message.")
    return " ".join(text)


def scale_out(meds: Sequence[Row]) -> str:
    """The whole section (empty when no cluster scenario ran)."""
    fan_out, stored, same_rate = (_rows(meds, s) for s in ("R", "S", "T"))
    if not (fan_out or stored or same_rate):
        return ""
    parts = ["## Scale-out on Redis"]
    if fan_out:
        parts += ["### R: A's fan-out over Redis, by processes", fan_out_table(fan_out)]
        if text := bottleneck(fan_out):
            parts.append("Where the cores went in the multi-process runs:\n\n" + text)
    if same_rate:
        parts += ["### T: the Redis round trip's cost, at the same rate",
                  same_rate_table(same_rate)]
        if text := round_trip(same_rate):
            parts.append(text)
    if stored:
        parts += ["### S: messages stored per second", stored_table(stored)]
    if text := scaling(fan_out, same_rate):
        parts.append(text)
    notes = sorted({m["setup_note"] for m in (*fan_out, *stored, *same_rate)
                    if m.get("setup_note")})
    if notes:
        parts.append("Notes:\n\n" + "\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts)
