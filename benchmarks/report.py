"""Medians of the runs, the JSON file with every run, and the markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from scenarios import TITLES
from servers import ALL_SERVER_KINDS, SERVER_KINDS
from servers import TITLES as SERVER_TITLES

NOT_AVERAGED = {"scenario", "server", "run", "traced", "tls", "send_calls", "lower_bound",
                "errors", "closed", "undelivered", "failed", "complaints", "server_errors",
                "server_said"}
# Counts of trouble, summed over the runs; server_errors: ERROR lines the server logged.
SUMMED = ("errors", "closed", "undelivered", "failed", "server_errors")
# How a run's server was set up (cluster.py): the same in every run, kept as it is.
SETUP = ("mode", "pinned", "redis_fsync", "aof_fs", "clients_per_process", "setup_note")


def medians(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, server): the median of each figure over its runs.

    Send calls come from the traced run alone; counts of trouble are summed; a
    figure is a lower bound when any run's load generator was over 80%.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["server"]), []).append(row)
    out = []
    for (scenario, server), group in groups.items():
        runs = [r for r in group if not r["traced"]]
        traced = [r for r in group if r["traced"]]
        merged: dict[str, Any] = {"scenario": scenario, "server": server, "runs": len(runs),
                                  "tls": group[0]["tls"]}
        for key in runs[0] if runs else ():
            if key in SETUP:
                merged[key] = runs[0][key]
                continue
            if key in NOT_AVERAGED:
                continue
            values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
            merged[key] = statistics.median(values) if values else None
        for key in SUMMED:
            merged[key] = sum(r.get(key) or 0 for r in runs)
        merged["lower_bound"] = any(r["lower_bound"] for r in runs)
        merged["frames_per_send"] = traced[0]["frames_per_send"] if traced else None
        merged["send_calls"] = traced[0]["send_calls"] if traced else None
        out.append(merged)
    return out


# With the load generator over 80% of its core, a rate may be higher and a time
# or latency lower than measured: these figures carry the bound's sign.
BOUND_SIGN = {"deliveries_per_s": "≥ ", "messages_per_s": "≥ ", "storm_ready_s": "≤ ",
              "storm_notices_s": "≤ ", "all_p99_ms": "≤ ", "lat_p50_ms": "≤ ",
              "lat_p99_ms": "≤ ", "lat_max_ms": "≤ "}


def _fmt(value: Any, spec: str, sign: str = "") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return sign + format(value, spec)


def _bounded(row: dict[str, Any] | None, key: str) -> str:
    """The sign a figure carries when its load generator was the possible limit."""
    return BOUND_SIGN.get(key, "") if row and row.get("lower_bound") else ""


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


class Table:
    """Markdown table builder."""

    def __init__(self, *headers: str) -> None:
        self.lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]

    def row(self, *cells: str) -> None:
        self.lines.append("| " + " | ".join(cells) + " |")

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _get(by: dict[tuple[str, str], dict[str, Any]], scenario: str, server: str,
         key: str) -> Any:
    row = by.get((scenario, server))
    return None if row is None else row.get(key)


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _verdict(by: dict[tuple[str, str], dict[str, Any]], scenario: str) -> str:
    """Whether chattycat :memory: meets the issue's target in ``scenario`` (SQLite for F)."""

    def cc(key: str, scen: str = scenario, kind: str = "chattycat") -> Any:
        return _get(by, scen, kind, key)

    ratio_a = _div(cc("deliveries_per_s"), _get(by, scenario, "ngircd", "deliveries_per_s"))
    checks: dict[str, Callable[[], bool | None]] = {
        "A": lambda: None if ratio_a is None else ratio_a >= 1.25,
        "B": lambda: None if ratio_a is None else ratio_a >= 1.25,
        "C": lambda: (None if cc("held") is None or cc("rss_kib_per_conn") is None
                      else cc("held") == cc("clients") and cc("rss_kib_per_conn") <= 3.0),
        "D": lambda: None if cc("storm_ready_s") is None else cc("storm_ready_s") < 5.0,
        "E": lambda: None if cc("all_p99_ms") is None else cc("all_p99_ms") < 10.0,
        "F": lambda: _at_least(_div(cc("deliveries_per_s", "A", "chattycat-sqlite"),
                                    cc("deliveries_per_s", "A")), 0.8),
        "G": lambda: _at_least(_div(cc("deliveries_per_s"), cc("deliveries_per_s", "A")), 0.5),
    }
    met = checks[scenario]()
    return "-" if met is None else ("yes" if met else "no")


def _at_least(value: float | None, bound: float) -> bool | None:
    return None if value is None else value >= bound


HEADLINES = (  # scenario, figure, key, format, target (None: shown for comparison only)
    ("A", "deliveries/s", "deliveries_per_s", ",.0f", "≥ 1.25x ngIRCd"),
    ("A", "server CPU µs/delivery", "cpu_us_per_delivery", ".2f", None),
    ("B", "deliveries/s", "deliveries_per_s", ",.0f", "≥ 1.25x ngIRCd"),
    ("B", "server CPU µs/delivery", "cpu_us_per_delivery", ".2f", None),
    ("C", "held / server KiB per conn", "rss_kib_per_conn", ".2f", "all held, ≤ 3 KiB/conn"),
    ("D", "all ready (s)", "storm_ready_s", ".2f", "< 5 s"),
    ("E", "p99 send → every copy (ms)", "all_p99_ms", ".2f", "< 10 ms"),
    ("F", "SQLite ÷ :memory: deliveries/s in A", "", "", "≥ 0.80x (within 20%)"),
    ("G", "deliveries/s (÷ same server in A)", "deliveries_per_s", ",.0f", "≥ 0.5x plain TCP"),
)


def _headline(by: dict[tuple[str, str], dict[str, Any]], scenario: str, kind: str, key: str,
              spec: str) -> str:
    """One server's cell in the side-by-side table."""
    if scenario == "F":
        if kind != "chattycat-sqlite":
            return "-"
        return _ratio(_get(by, "A", kind, "deliveries_per_s"),
                      _get(by, "A", "chattycat", "deliveries_per_s"))
    if (scenario, kind) not in by:
        return "-"
    value = _fmt(_get(by, scenario, kind, key), spec, _bounded(by.get((scenario, kind)), key))
    if scenario == "C":
        held, clients = _get(by, "C", kind, "held"), _get(by, "C", kind, "clients")
        return f"{_fmt(held, ',.0f')} of {_fmt(clients, ',.0f')} / {value}"
    if scenario == "G":
        return f"{value} ({_ratio(_get(by, 'G', kind, key), _get(by, 'A', kind, key))})"
    return value


def summary(meds: Sequence[dict[str, Any]], kinds: Sequence[str]) -> str:
    """The headline figure of each scenario, every server side by side, and the ratios."""
    by = {(m["scenario"], m["server"]): m for m in meds}
    shown = [k for k in SERVER_KINDS if k in kinds]
    table = Table("scenario", "figure", *(SERVER_TITLES[k] for k in shown),
                  "chattycat ÷ ngIRCd", "target (chattycat)", "met")
    for scenario, figure, key, spec, target in HEADLINES:
        source = "A" if scenario == "F" else scenario
        if not any((source, k) in by for k in shown):
            continue
        cells = [_headline(by, scenario, k, key, spec) for k in shown]
        ratio = "-" if scenario == "F" else _ratio(_get(by, scenario, "chattycat", key),
                                                   _get(by, scenario, "ngircd", key))
        table.row(f"{scenario}: {TITLES[scenario]}", figure, *cells, ratio, target or "-",
                  _verdict(by, scenario) if target else "-")
    return str(table)


DETAIL = (
    ("deliveries/s", "deliveries_per_s", ",.0f"),
    ("messages/s", "messages_per_s", ",.0f"),
    ("latency p50 / p99 / max (ms)", ("lat_p50_ms", "lat_p99_ms", "lat_max_ms"), ".1f"),
    ("all copies p99 (ms)", "all_p99_ms", ".1f"),
    ("server CPU %", "server_cpu_pct", ".0f"),
    ("server CPU µs/delivery", "cpu_us_per_delivery", ".2f"),
    ("server RSS KiB/conn", "rss_kib_per_conn", ".2f"),
    ("server RSS after setup (MiB)", "rss_after_mib", ".1f"),
    ("frames per send call", "frames_per_send", ".1f"),
    ("setup (s)", "setup_s", ".2f"),
    ("loadgen CPU %", "loadgen_cpu_pct", ".0f"),
)


def details(meds: Sequence[dict[str, Any]]) -> str:
    """Every figure of every (scenario, server), medians of the runs."""
    order = {s: i for i, s in enumerate("ABCDEFGRST")}
    kinds = {k: i for i, k in enumerate(ALL_SERVER_KINDS)}
    table = Table("scenario", "server", "clients", *(name for name, *_ in DETAIL),
                  "held", "storm ready / all notices (s)", "runs", "errors")
    for m in sorted(meds, key=lambda m: (order[m["scenario"]], kinds[m["server"]])):
        cells = []
        for _, keys, spec in DETAIL:
            parts = [keys] if isinstance(keys, str) else list(keys)
            cells.append(" / ".join(_fmt(m.get(k), spec, _bounded(m, k)) for k in parts))
        table.row(m["scenario"], SERVER_TITLES[m["server"]] + (" (TLS)" if m["tls"] else ""),
                  _fmt(m.get("clients"), ",.0f"), *cells,
                  _fmt(m.get("held"), ",.0f") if m["scenario"] == "C" else "-",
                  " / ".join(_fmt(m.get(k), ".2f", _bounded(m, k))
                             for k in ("storm_ready_s", "storm_notices_s"))
                  if m["scenario"] == "D" else "-",
                  str(m["runs"]), trouble(m))
    return str(table)


def trouble(m: dict[str, Any]) -> str:
    """A row's counts of trouble over its runs ("0" if none)."""
    found = {k.replace("_", " "): m[k] for k in SUMMED if m.get(k)}
    return ", ".join(f"{k} {v}" for k, v in found.items()) or "0"
