"""A case as a suspicious transaction and order report (STOR), laid out as the template in the
Annex of Commission Delegated Regulation (EU) 2016/957: JSON (``build_stor``) and a plain
printable HTML page with no external resource (``stor_html``).

The template's sections, each a key of the JSON with its number and heading:

1. ``submitter``: identity of the entity/person submitting the STOR (the venue, from
   ``[surveillance_store]``; the operator who exports it; acting capacity: operating a trading
   venue);
2. ``transactionsAndOrders``: the instruments, the period, and each order and transaction of
   the alerts' evidence (date and time, price, quantity, buy/sell, order type, account, the
   venue where it was placed or executed);
3. ``suspicion``: description of the nature of the suspicion (the kinds of behaviour the alerts
   name) and the reasons for it (each alert's summary and score, the case's comments and its
   closing reason);
4. ``personsInvolved``: identity of the persons whose orders or transactions are suspicious (the
   accounts, grouped by owner as the venue groups them);
5. ``additionalInformation``: the case (title, state, disposition, history) and its alerts;
6. ``documentationAttached``: the case's attachments (name, type, size, SHA-256).

Evidence items are read as the detectors write them (``surveillance.alerts``: JSON objects with
decimals as strings); a field a detector did not give is left empty, never invented.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Entity", "build_stor", "iso_ms", "stor_html"]

TEMPLATE = "Commission Delegated Regulation (EU) 2016/957, Annex (STOR template)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: What each kind of alert suspects, in the words of a report.
NATURE: dict[str, str] = {
    "WASH_TRADE": "Wash trades: transactions between accounts of one beneficial owner, with no "
    "change in ownership, which may give false or misleading signals as to supply, demand or "
    "price (market manipulation).",
    "SPOOFING": "Spoofing: orders placed and cancelled before execution, which may give a false "
    "impression of supply or demand (market manipulation).",
    "LAYERING": "Layering: several orders at different prices on one side of the book, cancelled "
    "once the other side trades, which may give a false impression of depth (market "
    "manipulation).",
    "OTR_BREACH": "An order-to-trade ratio beyond the venue's limit: a flow of orders that may "
    "disrupt or delay the order book or make it harder to read (market manipulation).",
    "AML_VELOCITY": "Funds moved in and out unusually fast (possible money laundering).",
    "AML_STRUCTURING": "Amounts split to stay below reporting thresholds (possible money "
    "laundering).",
    "AML_IN_OUT": "Deposits withdrawn with little or no trading (possible money laundering).",
}
_ORDER_TYPES = ("type", "orderType", "ordType")
_TIMES = ("time", "timeMs", "ts", "transactTime", "tradeTime")
_QUANTITIES = ("qty", "quantity", "origQty", "executedQty", "lastQty")


class Entity:
    """The reporting entity (section 1)."""

    def __init__(
        self, name: str = "venue", lei: str = "", address: str = "", contact: str = ""
    ) -> None:
        self.name = name or "venue"
        self.lei = lei
        self.address = address
        self.contact = contact


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds (``2026-01-02T03:04:05.006Z``)."""
    if ms is None:
        return None
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _first(item: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in item and item[name] not in (None, ""):
            return item[name]
    return None


def _time_ms(item: Mapping[str, Any]) -> int | None:
    value = _first(item, _TIMES)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _row(alert: Mapping[str, Any], item: Any, kind: str, venue: str) -> dict[str, Any]:
    item = item if isinstance(item, Mapping) else {"value": item}
    at = _time_ms(item)
    accounts = [
        item[name]
        for name in ("account", "buyer", "seller", "buyAccount", "sellAccount")
        if name in item
    ]
    return {
        "alertId": alert["alertId"],
        "kind": kind,
        "id": _text(_first(item, ("orderId", "tradeId", "id", "clOrdId"))),
        "instrument": _text(_first(item, ("symbol", "instrument"))) or alert["symbol"] or None,
        "time": iso_ms(at),
        "timeMs": at,
        "side": _text(_first(item, ("side",))),
        "price": _text(_first(item, ("price", "lastPx", "px"))),
        "quantity": _text(_first(item, _QUANTITIES)),
        "orderType": _text(_first(item, _ORDER_TYPES)),
        "status": _text(_first(item, ("status", "execType", "event"))),
        "accounts": accounts,
        "venue": venue,
        "details": dict(item),
    }


def build_stor(
    case: Mapping[str, Any],
    entity: Entity,
    owners: Mapping[int, int],
    *,
    by: str,
    now_ms: int,
) -> dict[str, Any]:
    """The STOR of ``case`` (``AlertStore.case``'s shape), exported by ``by`` at ``now_ms``;
    ``owners``: each account's owner group (an account missing is its own)."""
    alerts: list[Mapping[str, Any]] = list(case["alerts"])
    orders: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    for alert in alerts:
        evidence = alert.get("evidence") or {}
        if not isinstance(evidence, Mapping):
            continue
        for item in evidence.get("orders") or []:
            orders.append(_row(alert, item, "order", entity.name))
        for item in evidence.get("trades") or []:
            trades.append(_row(alert, item, "transaction", entity.name))
    by_time = lambda r: (r["timeMs"] is None, r["timeMs"] or 0)  # noqa: E731
    orders.sort(key=by_time)
    trades.sort(key=by_time)
    symbols = sorted({a["symbol"] for a in alerts if a["symbol"]})
    accounts = sorted({int(x) for a in alerts for x in a["accounts"]})
    groups: dict[int, list[int]] = {}
    for account in accounts:
        groups.setdefault(int(owners.get(account, account)), []).append(account)
    starts = [a["fromTime"] for a in alerts]
    ends = [a["toTime"] for a in alerts]
    kinds = sorted({a["type"] for a in alerts})
    reasons = [
        {
            "alertId": a["alertId"],
            "type": a["type"],
            "score": a["score"],
            "count": a["count"],
            "summary": a["summary"],
        }
        for a in alerts
    ]
    return {
        "report": "Suspicious transaction and order report (STOR)",
        "template": TEMPLATE,
        "caseId": case["caseId"],
        "generatedAt": iso_ms(now_ms),
        "generatedBy": by,
        "submitter": {
            "section": 1,
            "title": "Identity of entity/person submitting the STOR",
            "naturalPerson": by,
            "positionWithinEntity": "compliance (surveillance) staff",
            "entityName": entity.name,
            "lei": entity.lei or None,
            "address": entity.address or None,
            "actingCapacity": "operating a trading venue",
            "tradingActivity": "operator of a spot trading venue for crypto-assets",
            "relationshipWithPersons": "participants (account holders) of the trading venue",
            "contact": entity.contact or None,
        },
        "transactionsAndOrders": {
            "section": 2,
            "title": "Transaction/order",
            "instruments": [
                {"instrument": s, "description": _describe(s), "identifier": s} for s in symbols
            ],
            "venue": entity.name,
            "from": iso_ms(min(starts)) if starts else None,
            "to": iso_ms(max(ends)) if ends else None,
            "orders": orders,
            "transactions": trades,
        },
        "suspicion": {
            "section": 3,
            "title": "Description of the nature of the suspicion",
            "nature": [
                {"type": k, "description": NATURE.get(k, k.replace("_", " ").lower())}
                for k in kinds
            ],
            "reasons": reasons,
            "analysis": [
                {"time": iso_ms(c["time"]), "author": c["author"], "text": c["text"]}
                for c in case.get("comments", [])
            ],
            "conclusion": case.get("reason") or None,
        },
        "personsInvolved": {
            "section": 4,
            "title": "Identity of the person whose orders/transactions are suspicious",
            "accounts": accounts,
            "ownerGroups": [
                {"owner": owner, "accounts": members} for owner, members in sorted(groups.items())
            ],
        },
        "additionalInformation": {
            "section": 5,
            "title": "Additional information",
            "case": {
                "title": case["title"],
                "state": case["state"],
                "operator": case.get("operator"),
                "disposition": case.get("disposition"),
                "openedBy": case.get("createdBy"),
                "openedAt": iso_ms(case.get("createdAt")),
                "closedAt": iso_ms(case.get("closedAt")),
            },
            "alerts": [
                {
                    "alertId": a["alertId"],
                    "type": a["type"],
                    "symbol": a["symbol"],
                    "accounts": a["accounts"],
                    "from": iso_ms(a["fromTime"]),
                    "to": iso_ms(a["toTime"]),
                    "firstSeq": a["firstSeq"],
                    "lastSeq": a["lastSeq"],
                    "score": a["score"],
                    "count": a["count"],
                }
                for a in alerts
            ],
            "history": [
                {
                    "time": iso_ms(h["time"]),
                    "actor": h["actor"],
                    "action": h["action"],
                    "detail": h["detail"],
                }
                for h in case.get("history", [])
            ],
        },
        "documentationAttached": {
            "section": 6,
            "title": "Documentation attached",
            "attachments": [
                {
                    "attachmentId": a["attachmentId"],
                    "name": a["name"],
                    "contentType": a["contentType"],
                    "size": a["size"],
                    "sha256": a["sha256"],
                }
                for a in case.get("attachments", [])
            ],
        },
    }


def _describe(symbol: str) -> str:
    base, sep, quote = symbol.partition("-")
    if not sep:
        return f"crypto-asset instrument {symbol}"
    return f"spot crypto-asset pair: {base} against {quote}"


_CSS = """
body { font: 11pt/1.4 sans-serif; margin: 2em; color: #000; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 1.6em; border-bottom: 1px solid #000; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border: 1px solid #666; padding: 2px 4px; text-align: left; vertical-align: top; }
th { background: #eee; } dl { display: grid; grid-template-columns: 16em 1fr; gap: 2px 1em; }
dt { font-weight: bold; } @media print { body { margin: 0; } h2 { break-after: avoid; } }
"""


def _e(value: Any) -> str:
    if value is None or value == "":
        return "&mdash;"
    if isinstance(value, list):
        return html.escape(", ".join(str(v) for v in value))
    return html.escape(str(value))


def _fields(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs)
    return f"<dl>{rows}</dl>"


def _table(columns: list[tuple[str, str]], rows: list[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(row.get(key))}</td>" for key, _ in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _heading(section: Mapping[str, Any]) -> str:
    return f"<h2>Section {section['section']} &mdash; {html.escape(section['title'])}</h2>"


def stor_html(stor: Mapping[str, Any]) -> str:
    """``stor`` (``build_stor``'s) as one printable HTML page: inline style, no script, no
    external resource; every value escaped."""
    s1, s2, s3 = stor["submitter"], stor["transactionsAndOrders"], stor["suspicion"]
    s4, s5, s6 = (
        stor["personsInvolved"],
        stor["additionalInformation"],
        stor["documentationAttached"],
    )
    dealings = [
        ("kind", "Order/transaction"),
        ("time", "Date and time (UTC)"),
        ("instrument", "Instrument"),
        ("side", "Buy/sell"),
        ("price", "Price"),
        ("quantity", "Quantity"),
        ("orderType", "Order type"),
        ("status", "Status"),
        ("accounts", "Accounts"),
        ("id", "Reference"),
        ("venue", "Venue"),
        ("alertId", "Alert"),
    ]
    case = s5["case"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>STOR: case {_e(stor['caseId'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(stor['report'])}: case {_e(stor['caseId'])}</h1>",
        f"<p>Following the template of {_e(stor['template'])}. Generated "
        f"{_e(stor['generatedAt'])} by {_e(stor['generatedBy'])}.</p>",
        _heading(s1),
        _fields(
            [
                ("Name of the natural person", s1["naturalPerson"]),
                ("Position within the reporting entity", s1["positionWithinEntity"]),
                ("Name of the reporting entity", s1["entityName"]),
                ("LEI", s1["lei"]),
                ("Address of the reporting entity", s1["address"]),
                ("Acting capacity", s1["actingCapacity"]),
                ("Type of trading activity", s1["tradingActivity"]),
                ("Relationship with the persons", s1["relationshipWithPersons"]),
                ("Contact for additional information", s1["contact"]),
            ]
        ),
        _heading(s2),
        _table(
            [("instrument", "Instrument"), ("description", "Description"), ("identifier", "Code")],
            s2["instruments"],
        ),
        _fields([("Venue", s2["venue"]), ("From", s2["from"]), ("To", s2["to"])]),
        "<h3>Orders</h3>",
        _table(dealings, s2["orders"]),
        "<h3>Transactions</h3>",
        _table(dealings, s2["transactions"]),
        _heading(s3),
        "<h3>Nature of the suspicion</h3>",
        _table([("type", "Alert type"), ("description", "Nature")], s3["nature"]),
        "<h3>Reasons for the suspicion</h3>",
        _table(
            [
                ("alertId", "Alert"),
                ("type", "Type"),
                ("score", "Score"),
                ("count", "Times seen"),
                ("summary", "Summary"),
            ],
            s3["reasons"],
        ),
        _table([("time", "Time"), ("author", "Analyst"), ("text", "Analysis")], s3["analysis"]),
        _fields([("Conclusion", s3["conclusion"])]),
        _heading(s4),
        _fields([("Accounts", s4["accounts"])]),
        _table([("owner", "Owner group"), ("accounts", "Accounts")], s4["ownerGroups"]),
        _heading(s5),
        _fields(
            [
                ("Case", case["title"]),
                ("State", case["state"]),
                ("Assigned to", case["operator"]),
                ("Disposition", case["disposition"]),
                ("Opened", f"{case['openedAt']} by {case['openedBy']}"),
                ("Closed", case["closedAt"]),
            ]
        ),
        _table(
            [
                ("alertId", "Alert"),
                ("type", "Type"),
                ("symbol", "Instrument"),
                ("accounts", "Accounts"),
                ("from", "From"),
                ("to", "To"),
                ("firstSeq", "First seq"),
                ("lastSeq", "Last seq"),
            ],
            s5["alerts"],
        ),
        _table(
            [("time", "Time"), ("actor", "By"), ("action", "Step"), ("detail", "Detail")],
            s5["history"],
        ),
        _heading(s6),
        _table(
            [
                ("name", "Name"),
                ("contentType", "Type"),
                ("size", "Bytes"),
                ("sha256", "SHA-256"),
            ],
            s6["attachments"],
        ),
        "</body></html>",
    ]
    return "\n".join(parts)
