"""echlab_data: load the files an ``echlab run`` wrote into pandas.

The notebooks in this folder only read what the Go code measured; this
module finds the run's output folder, loads each file into a DataFrame with
stable column names, and checks the schema so that a missing or renamed
field fails with a message that names the file, the line and the field.

Where the data comes from (first match wins):

* the ``data`` argument of each function,
* the ``ECHLAB_DATA`` environment variable,
* ``notebooks/sample/`` next to this file.

Plots go to ``ECHLAB_PLOTS`` (default ``<data>/plots/``); see ``save_fig``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DATA_ENV = "ECHLAB_DATA"
PLOTS_ENV = "ECHLAB_PLOTS"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"

# DNS transports in the order the lab reports them (lab.AllTransports).
TRANSPORTS = ["do53", "dot", "doh", "doh3", "doq"]

# ECH states of a flow (lab/observe/flow.go), plus "none" for no extension; "esni"
# marks a draft ESNI extension (the esni scenario), not ECH.
ECH_NONE, ECH_OUTER, ECH_REAL, ECH_GREASE = "none", "ech-outer", "real", "grease-or-unknown-key"
ECH_ESNI = "esni"

# Fields each file must carry (schema 1 of the lab's output).
CASE_FIELDS = ["scenario", "transport", "repeat", "outcome", "start", "end"]
RESULT_FIELDS = ["ech", "dns_ns", "connect_ns", "handshake_ns", "total_ns"]
FLOW_FIELDS = ["id", "scenario", "start", "client", "server", "transport"]
ROW_FIELDS = ["scenario", "transport", "cases", "ok", "skipped", "observer_sni", "ech", "inner_sni_with_keys",
              "dns_names", "names", "leaked", "handshake_ms", "client_hello_bytes", "verdict"]
QUERY_FIELDS = ["time", "transport", "qname", "qtype"]
# grid.json of `echlab run --adversary` (lab.GridResult, schema 1).
GRID_FIELDS = ["rows", "columns", "cells", "deviations"]
GRID_ROW_FIELDS = ["name", "client", "dns"]
GRID_CELL_FIELDS = ["row", "column", "outcome", "duration_ns", "as_expected"]

# Outcomes of a grid cell (lab/grid.go), in the order the notebooks list them;
# the control column (no adversary) and the GREASE client kind.
GRID_OUTCOMES = ["ech", "ech-retried", "clear", "grease", "failed"]
GRID_CONTROL = "none"
GRID_GREASE_CLIENT = "echlab-grease"
# Where the adversary can see the true name in the clear: in the SNI, in a Do53 query.
GRID_LEAKS = ["sni", "dns"]
GRID_FILES = ["grid.json", "grid/grid.json"]

# Integer columns of a flow (absent means "not seen", kept as <NA>).
FLOW_INTS = ["id", "ech_config_id", "ech_kdf", "ech_aead", "ech_enc_len", "ech_payload_len",
             "server_version", "server_cipher", "server_group", "client_hello_len", "record_len"]


class SchemaError(ValueError):
    """The output folder lacks a file or a file lacks a field the notebooks need."""


def data_dir(data: str | os.PathLike | None = None) -> Path:
    """Return the run's output folder: data, $ECHLAB_DATA or the shipped sample."""
    d = Path(data or os.environ.get(DATA_ENV) or SAMPLE_DIR)
    if not d.is_dir():
        raise SchemaError(f"echlab_data: data folder {d} does not exist "
                          f"(set {DATA_ENV} to the --out folder of `echlab run`)")
    return d


def plots_dir(data: str | os.PathLike | None = None) -> Path:
    """Return (and create) the folder PNGs go to: $ECHLAB_PLOTS or <data>/plots."""
    p = Path(os.environ.get(PLOTS_ENV) or data_dir(data) / "plots")
    p.mkdir(parents=True, exist_ok=True)
    return p


def save_fig(fig, name: str, data=None) -> Path:
    """Save a matplotlib figure as <plots>/<name>.png and return the path."""
    path = plots_dir(data) / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _file(data, name: str, required: bool = True) -> Path | None:
    path = data_dir(data) / name
    if not path.is_file():
        if required:
            raise SchemaError(f"echlab_data: {path} is missing (not an `echlab run` output folder?)")
        return None
    return path


def _check(obj: dict, fields: list[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise SchemaError(f"echlab_data: {where}: want a JSON object, got {type(obj).__name__}")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise SchemaError(f"echlab_data: {where}: missing field(s) {', '.join(missing)}")


def read_jsonl(path: Path, fields: list[str]) -> list[dict]:
    """Read a JSON-lines file, checking that every line has the given fields."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise SchemaError(f"echlab_data: {path.name} line {n}: not JSON: {e}") from None
            _check(obj, fields, f"{path.name} line {n}")
            out.append(obj)
    if not out:
        raise SchemaError(f"echlab_data: {path.name} is empty")
    return out


def row_scenario(scenario: str, padding: str | None) -> str:
    """Name a case's scenario as the lab's reports do (padding-sweep split by padding)."""
    if scenario == "padding-sweep" and padding:
        return f"{scenario}-{padding}"
    return scenario


def _ms(ns) -> float:
    return float(ns) / 1e6 if ns is not None else float("nan")


def load_cases(data=None) -> pd.DataFrame:
    """Load client.jsonl: one row per case, client-measured times in ms.

    Columns: scenario, row (report scenario, e.g. padding-sweep-none),
    dns_transport, repeat, inner_name, padding, outcome, detail, start, end,
    ech, outer_sni, inner_sni, config_id, retried, handshake_complete,
    remote_port, group, http_proto, dns_ms, connect_ms, handshake_ms,
    ttfb_ms, total_ms, note.
    """
    path = _file(data, "client.jsonl")
    rows = []
    for n, c in enumerate(read_jsonl(path, CASE_FIELDS), 1):
        r = c.get("result")
        if r is not None:
            _check(r, RESULT_FIELDS, f"{path.name} line {n} result")
        r = r or {}
        remote = r.get("remote_addr") or ""
        rows.append({
            "scenario": c["scenario"], "row": row_scenario(c["scenario"], c.get("padding")),
            "dns_transport": c["transport"], "repeat": c["repeat"],
            "inner_name": c.get("inner_name") or "", "padding": c.get("padding") or "",
            "outcome": c["outcome"], "detail": c.get("detail", ""), "start": c["start"], "end": c["end"],
            "ech": r.get("ech", ""), "outer_sni": r.get("outer_sni", ""), "inner_sni": r.get("inner_sni", ""),
            "config_id": r.get("config_id"), "retried": bool(r.get("retried", False)),
            "handshake_complete": bool(r.get("handshake_complete", False)),
            "remote_port": int(remote.rsplit(":", 1)[1]) if ":" in remote else None,
            "group": r.get("group", ""), "http_proto": r.get("http_proto", ""),
            "dns_ms": _ms(r.get("dns_ns")), "connect_ms": _ms(r.get("connect_ns")),
            "handshake_ms": _ms(r.get("handshake_ns")), "ttfb_ms": _ms(r.get("ttfb_ns")),
            "total_ms": _ms(r.get("total_ns")), "note": r.get("note", ""),
        })
    df = pd.DataFrame(rows)
    df["start"] = pd.to_datetime(df["start"], utc=True)
    df["end"] = pd.to_datetime(df["end"], utc=True)
    df["remote_port"] = df["remote_port"].astype("Int64")
    df["config_id"] = df["config_id"].astype("Int64")
    return df


def _split_label(label: str) -> tuple[str, str]:
    """Split a flow's scenario label "ech-shared/doh" into (row, dns_transport)."""
    row, _, tr = str(label).rpartition("/")
    if tr in TRANSPORTS:
        return row, tr
    return str(label), ""  # not matched to a case: "h2/8443"


def _flows_from_json(path: Path, records: list[dict]) -> pd.DataFrame:
    for i, f in enumerate(records):
        _check(f, FLOW_FIELDS, f"{path.name} flow {i + 1}")
    rows = []
    for f in records:
        r = dict(f)
        r["alpn"] = ";".join(f.get("alpn") or [])
        r["inner_alpn"] = ";".join(f.get("inner_alpn") or [])
        msgs = f.get("dns") or []
        r["dns_queries"] = [m.get("qname", "").rstrip(".") for m in msgs if not m.get("response")]
        r["dns_qtypes"] = [m.get("qtype", "") for m in msgs if not m.get("response")]
        r["dns_has_ech"] = any(m.get("has_ech") for m in msgs if m.get("response"))
        r["warnings"] = "; ".join(f.get("warnings") or [])
        r.pop("dns", None)
        rows.append(r)
    return pd.DataFrame(rows)


def _flows_from_csv(path: Path) -> pd.DataFrame:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in FLOW_FIELDS if c not in (reader.fieldnames or [])]
        if missing:
            raise SchemaError(f"echlab_data: {path.name}: missing column(s) {', '.join(missing)}")
        records = list(reader)
    rows = []
    for f in records:
        r = {k: (v if v != "" else None) for k, v in f.items()}
        parts = [p.split(" ") for p in (f.get("dns") or "").split("; ") if p]
        r["dns_queries"] = [p[1].rstrip(".") for p in parts if p[0] == "Q" and len(p) > 1]
        r["dns_qtypes"] = [p[2] for p in parts if p[0] == "Q" and len(p) > 2]
        r["dns_has_ech"] = any(p[0] == "R" and p[-1] == "ech=" for p in parts)
        r["hrr"] = f.get("hrr") == "true"
        r["keylog"] = f.get("keylog") == "true"
        r["ech_accepted"] = {"yes": True, "no": False}.get(f.get("ech_accepted") or "")
        for k in ("ech_kdf", "ech_aead"):
            if r.get(k):
                r[k] = int(r[k], 16)
        for k in ("server_version", "server_cipher", "server_group"):
            r[k] = None  # the CSV writes names, not numbers; the JSON has numbers
        r["alpn"], r["inner_alpn"] = f.get("alpn") or "", f.get("inner_alpn") or ""
        r["warnings"] = f.get("warnings") or ""
        r.pop("dns", None)
        rows.append(r)
    return pd.DataFrame(rows)


def load_flows(data=None) -> pd.DataFrame:
    """Load the observer's flows from flows.jsonl, flows.json or flows.csv.

    One row per flow as observe.Compare (lab/observe) saw it. Columns are the flow's JSON
    fields (alpn joined with ";"), plus: row and dns_transport (from the
    scenario label), ech ("none" when absent), dns_queries (list of names
    asked in plain DNS), dns_qtypes, dns_has_ech.
    """
    if (p := _file(data, "flows.jsonl", required=False)) is not None:
        df = _flows_from_json(p, read_jsonl(p, FLOW_FIELDS))
    elif (p := _file(data, "flows.json", required=False)) is not None:
        with open(p, encoding="utf-8") as f:
            doc = json.load(f)
        _check(doc, ["flows"], p.name)
        df = _flows_from_json(p, doc["flows"] or [])
    elif (p := _file(data, "flows.csv", required=False)) is not None:
        df = _flows_from_csv(p)
    else:
        raise SchemaError(f"echlab_data: no flows.jsonl, flows.json or flows.csv in {data_dir(data)}")
    if df.empty:
        raise SchemaError(f"echlab_data: {p.name} has no flows")
    for col in FLOW_INTS:
        if col not in df:
            df[col] = None
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    for col in ("sni", "inner_sni", "ja4", "service", "ech", "alpn", "quic_version"):
        df[col] = df[col].fillna("") if col in df else ""
    for col in ("hrr", "keylog"):
        df[col] = df[col].fillna(False).astype(bool) if col in df else False
    if "ech_accepted" not in df:
        df["ech_accepted"] = None
    df["ech"] = df["ech"].replace("", ECH_NONE)
    df["start"] = pd.to_datetime(df["start"], utc=True)
    df[["row", "dns_transport"]] = [list(_split_label(s)) for s in df["scenario"]]
    df["server_port"] = [int(str(s).rsplit(":", 1)[1]) for s in df["server"]]
    return df


def service_flows(flows: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Keep the flows with a ClientHello to the HTTPS servers the cases fetched
    from (not the resolver's DoT/DoH/DoQ connections)."""
    ports = set(cases["remote_port"].dropna().astype(int))
    keep = flows["server_port"].isin(ports) & flows["client_hello_len"].notna()
    return flows[keep].copy()


def load_summary(data=None) -> pd.DataFrame:
    """Load summary.json: one row per scenario × DNS transport (lab.Row)."""
    path = _file(data, "summary.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    _check(doc, ["schema", "rows"], path.name)
    if doc["schema"] != 1:
        raise SchemaError(f"echlab_data: {path.name}: schema {doc['schema']}, this loader reads schema 1")
    for i, r in enumerate(doc["rows"] or []):
        _check(r, ROW_FIELDS, f"{path.name} row {i + 1}")
    df = pd.DataFrame(doc["rows"] or [])
    if df.empty:
        raise SchemaError(f"echlab_data: {path.name} has no rows")
    df = df.rename(columns={"transport": "dns_transport"})
    df.attrs["capture"] = doc.get("capture", "")
    return df


def load_queries(data=None) -> pd.DataFrame | None:
    """Load queries.jsonl (the resolver's own log), or None if the folder has none."""
    path = _file(data, "queries.jsonl", required=False)
    if path is None:
        return None
    df = pd.DataFrame(read_jsonl(path, QUERY_FIELDS))
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["qname"] = df["qname"].str.rstrip(".")
    for col in ("size", "latency_us"):
        if col in df:
            df[col] = pd.to_numeric(df[col]).astype("Int64")
    return df


def grid_file(data=None) -> Path | None:
    """Return <data>/grid.json, else <data>/grid/grid.json, else None."""
    for name in GRID_FILES:
        if (p := data_dir(data) / name).is_file():
            return p
    return None


@dataclass
class Grid:
    """An adversary grid (grid.json of `echlab run --adversary`).

    rows: one per client row (name, client, dns, about), in the run's order.
    columns: the adversary columns' specs in order; "none" is the control.
    cells: one per row × column: row, column, client, dns, outcome,
    error_class and error ("" when none), duration_ns, duration_s, leaks
    (list, "sni" first), leak_text ("sni+dns", "" when nothing leaked),
    expected (list), why, as_expected, counts (dict), saw.
    """

    path: Path
    out_dir: str
    rows: pd.DataFrame
    columns: list[str]
    cells: pd.DataFrame
    deviations: int


def load_grid(data=None) -> Grid:
    """Load grid.json (or grid/grid.json) of the data folder into a Grid."""
    path = grid_file(data)
    if path is None:
        raise SchemaError(f"echlab_data: no {' or '.join(GRID_FILES)} in {data_dir(data)} "
                          f"(make one with `echlab run --adversary all --out DIR`)")
    where = path.relative_to(data_dir(data)).as_posix()
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise SchemaError(f"echlab_data: {where}: not JSON: {e}") from None
    _check(doc, ["schema", "grid"], where)
    if doc["schema"] != 1:
        raise SchemaError(f"echlab_data: {where}: schema {doc['schema']}, this loader reads schema 1")
    g = doc["grid"]
    _check(g, GRID_FIELDS, f"{where} grid")
    rows = g["rows"] or []
    for i, r in enumerate(rows):
        _check(r, GRID_ROW_FIELDS, f"{where} row {i + 1}")
    names = [r["name"] for r in rows]
    columns = g["columns"] or []
    if not names or not columns:
        raise SchemaError(f"echlab_data: {where}: the grid has no rows or no columns")
    if not all(isinstance(c, str) for c in columns):
        raise SchemaError(f"echlab_data: {where}: columns: want a list of policy specs (strings)")
    by_name = {r["name"]: r for r in rows}
    out, seen = [], set()
    for i, c in enumerate(g["cells"] or []):
        at = f"{where} cell {i + 1}"
        _check(c, GRID_CELL_FIELDS, at)
        if c["row"] not in by_name:
            raise SchemaError(f"echlab_data: {at}: row {c['row']!r} is not one of the grid's rows")
        if c["column"] not in columns:
            raise SchemaError(f"echlab_data: {at}: column {c['column']!r} is not one of the grid's columns")
        if c["outcome"] not in GRID_OUTCOMES:
            raise SchemaError(f"echlab_data: {at}: outcome {c['outcome']!r} is not one of {', '.join(GRID_OUTCOMES)}")
        if isinstance(c["duration_ns"], bool) or not isinstance(c["duration_ns"], int) or c["duration_ns"] < 0:
            raise SchemaError(f"echlab_data: {at}: duration_ns {c['duration_ns']!r} is not a count of nanoseconds")
        if not isinstance(c["as_expected"], bool):
            raise SchemaError(f"echlab_data: {at}: as_expected {c['as_expected']!r} is not true or false")
        if not isinstance(c.get("leaks") or [], list):
            raise SchemaError(f"echlab_data: {at}: leaks {c['leaks']!r} is not a list")
        if (c["row"], c["column"]) in seen:
            raise SchemaError(f"echlab_data: {at}: a second cell for {c['row']} × {c['column']}")
        seen.add((c["row"], c["column"]))
        leaks = list(c.get("leaks") or [])
        leaks.sort(key=lambda l: (GRID_LEAKS.index(l) if l in GRID_LEAKS else len(GRID_LEAKS), l))
        row = by_name[c["row"]]
        out.append({
            "row": c["row"], "column": c["column"], "client": row["client"], "dns": row["dns"],
            "outcome": c["outcome"], "error_class": c.get("error_class") or "", "error": c.get("error") or "",
            "duration_ns": int(c["duration_ns"]), "duration_s": float(c["duration_ns"]) / 1e9,
            "leaks": leaks, "leak_text": "+".join(leaks), "expected": list(c.get("expected") or []),
            "why": c.get("why") or "", "as_expected": bool(c["as_expected"]), "counts": dict(c.get("counts") or {}),
            "saw": c.get("saw") or "",
        })
    if not out:
        raise SchemaError(f"echlab_data: {where} has no cells")
    rows_df = pd.DataFrame([{"name": r["name"], "client": r["client"], "dns": r["dns"], "about": r.get("about", "")}
                            for r in rows])
    return Grid(path=path, out_dir=g.get("out_dir", ""), rows=rows_df, columns=list(columns),
                cells=pd.DataFrame(out), deviations=int(g["deviations"]))


def load_manifest(data=None) -> dict:
    """Load manifest.json (versions, capture kind, scenarios, files)."""
    path = _file(data, "manifest.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    _check(doc, ["schema", "capture", "cases"], path.name)
    return doc


def describe(data=None) -> str:
    """One line naming the data folder and the run that made it."""
    m = load_manifest(data)
    return (f"data: {data_dir(data)} — {m.get('tool', 'echlab run')}, {m['cases']} cases, "
            f"{m['capture']} capture, repeat {m.get('repeat', 1)}, {m.get('created', '')}")
