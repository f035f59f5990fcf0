"""The venue's FIX 4.4 data dictionary (fix_specs/FIX44-venue.xml) is consistent, carries the
messages, enumerations and custom tags the rules of engagement (fix_specs/README.md) promise, and
maps every engine order type, time in force, status and reason the way the README's tables say.

The mapping tables below mirror the README's; each row is also looked up in the README, so the
two cannot drift apart silently.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.types import CancelReason, OrderStatus, OrdType, RejectReason, StpMode, TimeInForce
from gateway.edge.refusals import FIX_REASONS as REJECT_REASONS
from gateway.fix.mapping import (
    CANCEL_REASONS,
    ORD_STATUS,
    ORD_TYPES,
    TIME_IN_FORCE,
)

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"
DICTIONARY = SPECS / "FIX44-venue.xml"
README = SPECS / "README.md"

SESSION_MESSAGES = {
    "Heartbeat": "0",
    "TestRequest": "1",
    "ResendRequest": "2",
    "Reject": "3",
    "SequenceReset": "4",
    "Logout": "5",
    "Logon": "A",
}
APPLICATION_MESSAGES = {
    "NewOrderSingle": "D",
    "OrderCancelRequest": "F",
    "OrderCancelReplaceRequest": "G",
    "OrderStatusRequest": "H",
    "ExecutionReport": "8",
    "OrderCancelReject": "9",
    "OrderMassCancelRequest": "q",
    "OrderMassCancelReport": "r",
    "OrderMassStatusRequest": "AF",
    "BusinessMessageReject": "j",
    "SecurityListRequest": "x",
    "SecurityList": "y",
    "MarketDataRequest": "V",
    "MarketDataSnapshotFullRefresh": "W",
    "MarketDataIncrementalRefresh": "X",
    "MarketDataRequestReject": "Y",
}
HEADER_REQUIRED = {8, 9, 35, 49, 56, 34, 52}
TRAILER_REQUIRED = {10}
FIX_TYPES = {
    "STRING", "CHAR", "INT", "LENGTH", "SEQNUM", "NUMINGROUP", "PRICE", "QTY", "AMT", "FLOAT",
    "BOOLEAN", "UTCTIMESTAMP", "UTCDATEONLY", "UTCTIMEONLY", "DATA", "CURRENCY",
    "MULTIPLEVALUESTRING",
}  # fmt: skip

#: Custom tags: number -> (name, type, enum values or None).
CUSTOM_TAGS: dict[int, tuple[str, str, dict[str, str] | None]] = {
    25001: (
        "SelfTradePreventionMode",
        "CHAR",
        {str(m.value): m.name for m in StpMode if m is not StpMode.DEFAULT},
    ),
    25002: ("TakeProfit", "BOOLEAN", {"N": "NO", "Y": "YES"}),
    25003: ("MinNotional", "AMT", None),
    25004: ("CancelOnDisconnect", "BOOLEAN", {"N": "NO", "Y": "YES"}),
    25005: ("VenueCancelReason", "INT", {str(r.value): r.name for r in CancelReason}),
    25006: (
        "VenueRejectReason",
        "INT",
        {str(r.value): r.name for r in RejectReason if r is not RejectReason.NONE},
    ),
}
#: Where each custom tag may appear: message name -> custom fields it carries.
CUSTOM_TAG_PLACES = {
    "NewOrderSingle": {"SelfTradePreventionMode", "TakeProfit"},
    "ExecutionReport": {
        "SelfTradePreventionMode",
        "TakeProfit",
        "VenueCancelReason",
        "VenueRejectReason",
    },
    "OrderCancelReject": {"VenueRejectReason"},
    "OrderMassCancelReport": {"VenueRejectReason"},
    "Logon": {"CancelOnDisconnect"},
    "SecurityList": {"MinNotional"},
}

# --- The README's mapping tables, as data -------------------------------------------------------

#: engine OrdType -> (OrdType 40, ExecInst 18 or "", TakeProfit 25002 or "").
# --- Reading and checking a dictionary ----------------------------------------------------------


def load() -> ET.Element:
    return ET.parse(DICTIONARY).getroot()


def fields_by_name(root: ET.Element) -> dict[str, ET.Element]:
    return {f.attrib["name"]: f for f in root.findall("./fields/field")}


def enum_values(root: ET.Element, name: str) -> dict[str, str]:
    field = fields_by_name(root)[name]
    return {v.attrib["enum"]: v.attrib["description"] for v in field.findall("value")}


def message(root: ET.Element, name: str) -> ET.Element:
    found = root.findall(f"./messages/message[@name='{name}']")
    assert len(found) == 1, f"message {name}: {len(found)} definitions"
    return found[0]


def flattened(root: ET.Element, element: ET.Element, into_groups: bool = False) -> dict[str, bool]:
    """The fields a message (or group) may carry, components expanded: name -> required.

    A field is required when it and every enclosing component are. Group contents are included
    only with ``into_groups`` (a group is otherwise one field, its NumInGroup counter).
    """
    components = {c.attrib["name"]: c for c in root.findall("./components/component")}
    out: dict[str, bool] = {}

    def walk(node: ET.Element, required: bool) -> None:
        for child in node:
            here = required and child.attrib.get("required") == "Y"
            if child.tag in ("field", "group"):
                out[child.attrib["name"]] = here
                if child.tag == "group" and into_groups:
                    walk(child, here)
            elif child.tag == "component":
                walk(components[child.attrib["name"]], here)

    walk(element, True)
    return out


def problems(root: ET.Element) -> list[str]:
    """Every inconsistency in a dictionary; an empty list means it is consistent."""
    found: list[str] = []
    if root.tag != "fix" or (
        root.attrib.get("type"),
        root.attrib.get("major"),
        root.attrib.get("minor"),
    ) != ("FIX", "4", "4"):
        found.append(f"root is not <fix type=FIX major=4 minor=4>: {root.tag} {root.attrib}")
    for part in ("header", "trailer", "messages", "components", "fields"):
        if root.find(part) is None:
            found.append(f"no <{part}>")

    names: dict[str, int] = {}
    numbers: dict[int, str] = {}
    types: dict[str, str] = {}
    for field in root.findall("./fields/field"):
        name, ftype = field.attrib["name"], field.attrib["type"]
        number = int(field.attrib["number"])
        if name in names:
            found.append(f"field name {name} defined twice ({names[name]}, {number})")
        if number in numbers:
            found.append(f"field number {number} defined twice ({numbers[number]}, {name})")
        names[name] = number
        numbers[number] = name
        types[name] = ftype
        if ftype not in FIX_TYPES:
            found.append(f"field {name}: unknown type {ftype}")
        enums = [v.attrib["enum"] for v in field.findall("value")]
        if len(enums) != len(set(enums)):
            found.append(f"field {name}: an enum value appears twice")
        if ftype == "BOOLEAN" and not set(enums) <= {"Y", "N"}:
            found.append(f"field {name}: BOOLEAN with values {enums}")
        if ftype == "NUMINGROUP" and enums:
            found.append(f"field {name}: NUMINGROUP with enum values")

    components = {c.attrib["name"] for c in root.findall("./components/component")}
    for section in (
        root.findall("header")
        + root.findall("trailer")
        + root.findall("./messages/message")
        + root.findall("./components/component")
    ):
        where = section.attrib.get("name", section.tag)
        for node in section.iter():
            if node is section:
                continue
            ref = node.attrib.get("name")
            if node.tag in ("field", "group") and ref not in names:
                found.append(f"{where}: field {ref} is not defined")
            if node.tag == "group" and ref in names:
                if types[ref] != "NUMINGROUP":
                    found.append(f"{where}: group {ref} is not a NUMINGROUP field")
                if len(node) == 0:
                    found.append(f"{where}: group {ref} is empty")
            if node.tag == "component" and ref not in components:
                found.append(f"{where}: component {ref} is not defined")
            flag = node.attrib.get("required")
            if node.tag in ("field", "group", "component") and flag not in ("Y", "N"):
                found.append(f"{where}: {ref} has required={flag!r}")

    header = root.find("header")
    trailer = root.find("trailer")
    if header is not None:
        required = {names.get(f.attrib["name"]) for f in header if f.attrib.get("required") == "Y"}
        if missing := HEADER_REQUIRED - required:
            found.append(f"header: tags {sorted(missing)} not required")
        if [f.attrib["name"] for f in header[:3]] != ["BeginString", "BodyLength", "MsgType"]:
            found.append("header does not start with BeginString, BodyLength, MsgType")
    if trailer is not None:
        required = {names.get(f.attrib["name"]) for f in trailer if f.attrib.get("required") == "Y"}
        if missing := TRAILER_REQUIRED - required:
            found.append(f"trailer: tags {sorted(missing)} not required")

    msg_types: dict[str, str] = {}
    for msg in root.findall("./messages/message"):
        name, msg_type, cat = msg.attrib["name"], msg.attrib["msgtype"], msg.attrib["msgcat"]
        if msg_type in msg_types:
            found.append(f"MsgType {msg_type} used by {msg_types[msg_type]} and {name}")
        msg_types[msg_type] = name
        expected_cat = "admin" if name in SESSION_MESSAGES else "app"
        if cat != expected_cat:
            found.append(f"message {name}: msgcat {cat}, expected {expected_cat}")
    wanted = SESSION_MESSAGES | APPLICATION_MESSAGES
    for name, msg_type in wanted.items():
        if msg_types.get(msg_type) != name:
            found.append(f"message {name} ({msg_type}) missing or misnamed")
    for msg_type, name in msg_types.items():
        if name not in wanted:
            found.append(f"message {name} ({msg_type}) is not one the venue supports")
    if "MsgType" in names:
        declared = set(enum_values(root, "MsgType"))
        if declared != set(msg_types):
            found.append(f"MsgType enum {sorted(declared)} != messages {sorted(msg_types)}")

    referenced = {
        node.attrib["name"]
        for section in [root.find("header"), root.find("trailer"), root.find("components"),
                        root.find("messages")]
        if section is not None
        for node in section.iter()
        if node.tag in ("field", "group")
    }  # fmt: skip
    if unused := set(names) - referenced:
        found.append(f"fields defined but never used: {sorted(unused)}")
    return found


# --- Tests --------------------------------------------------------------------------------------


def test_dictionary_is_consistent() -> None:
    assert problems(load()) == []


def _broken(edit: str) -> ET.Element:
    root = copy.deepcopy(load())
    fields = root.find("fields")
    assert fields is not None
    nos = message(root, "NewOrderSingle")
    if edit == "undefined field":
        nos.append(ET.Element("field", name="NoSuchField", required="N"))
    elif edit == "undefined component":
        nos.append(ET.Element("component", name="Parties", required="N"))
    elif edit == "duplicate number":
        fields.append(ET.Element("field", number="55", name="Symbol2", type="STRING"))
    elif edit == "duplicate name":
        fields.append(ET.Element("field", number="5055", name="Symbol", type="STRING"))
    elif edit == "header not required":
        header = root.find("header")
        assert header is not None
        header[5].attrib["required"] = "N"  # MsgSeqNum
    elif edit == "message missing":
        messages = root.find("messages")
        assert messages is not None
        messages.remove(message(root, "OrderMassStatusRequest"))
    elif edit == "unsupported message":
        messages = root.find("messages")
        assert messages is not None
        messages.append(ET.Element("message", name="News", msgtype="B", msgcat="app"))
    return root


@pytest.mark.parametrize(
    "edit",
    [
        "undefined field",
        "undefined component",
        "duplicate number",
        "duplicate name",
        "header not required",
        "message missing",
        "unsupported message",
    ],
)
def test_the_checker_finds_broken_dictionaries(edit: str) -> None:
    assert problems(_broken(edit)) != []


def test_header_and_trailer() -> None:
    root = load()
    names = fields_by_name(root)
    header = {int(names[f.attrib["name"]].attrib["number"]): f.attrib["required"]
              for f in root.findall("./header/field")}  # fmt: skip
    assert all(header[tag] == "Y" for tag in HEADER_REQUIRED)
    # What a resend carries must be definable.
    assert header[43] == "N" and header[122] == "N" and header[97] == "N"
    trailer = [f.attrib["name"] for f in root.findall("./trailer/field")]
    assert trailer == ["CheckSum"]


def test_required_fields_make_sense_for_the_venue() -> None:
    root = load()
    nos = flattened(root, message(root, "NewOrderSingle"))
    for name in ("ClOrdID", "Symbol", "Side", "TransactTime", "OrdType"):
        assert nos[name], name
    # OrderQty or CashOrderQty (market by quote amount): the gateway requires exactly one.
    assert not nos["OrderQty"] and not nos["CashOrderQty"]
    for name in ("Price", "StopPx", "TimeInForce", "ExpireTime", "ExecInst", "MaxFloor"):
        assert not nos[name], name
    cancel = flattened(root, message(root, "OrderCancelRequest"))
    assert cancel["OrigClOrdID"] and cancel["ClOrdID"] and cancel["Symbol"]
    assert not cancel["Side"] and not cancel["OrderQty"]
    report = flattened(root, message(root, "ExecutionReport"))
    for name in ("OrderID", "ExecID", "ExecType", "OrdStatus", "Symbol", "Side", "LeavesQty",
                 "CumQty", "AvgPx", "TransactTime"):  # fmt: skip
        assert report[name], name
    for name in ("OrdRejReason", "LastPx", "LastQty", "Commission", "CommCurrency", "Text"):
        assert not report[name], name
    logon = flattened(root, message(root, "Logon"))
    assert logon["EncryptMethod"] and logon["HeartBtInt"]
    for name in ("RawDataLength", "RawData", "Password", "Username", "ResetSeqNumFlag"):
        assert not logon[name], name
    names = fields_by_name(root)
    assert names["RawDataLength"].attrib["number"] == "95"
    assert names["RawData"].attrib["number"] == "96"
    assert names["RawData"].attrib["type"] == "DATA"
    assert names["Password"].attrib["number"] == "554"


def test_custom_tags() -> None:
    root = load()
    by_number = {int(f.attrib["number"]): f for f in root.findall("./fields/field")}
    custom = {n for n in by_number if n >= 5000}
    assert custom == set(CUSTOM_TAGS)
    for number, (name, ftype, enums) in CUSTOM_TAGS.items():
        field = by_number[number]
        assert (field.attrib["name"], field.attrib["type"]) == (name, ftype)
        if enums is not None:
            assert enum_values(root, name) == enums
    for msg_name, expected in CUSTOM_TAG_PLACES.items():
        names = fields_by_name(root)
        carried = {
            n
            for n in flattened(root, message(root, msg_name), into_groups=True)
            if int(names[n].attrib["number"]) >= 5000
        }
        assert carried == expected, msg_name
    readme = README.read_text(encoding="utf-8")
    for number, (name, _ftype, _enums) in CUSTOM_TAGS.items():
        assert f"| {number} | {name} |" in readme, f"custom tag {number} {name} not in README"


def test_order_types_and_time_in_force_cover_the_engine() -> None:
    root = load()
    assert set(ORD_TYPES) == set(OrdType)
    assert set(TIME_IN_FORCE) == set(TimeInForce)
    ord_types, exec_inst = enum_values(root, "OrdType"), enum_values(root, "ExecInst")
    take_profit = enum_values(root, "TakeProfit")
    assert {v[0] for v in ORD_TYPES.values()} == set(ord_types)
    assert {v[1] for v in ORD_TYPES.values() if v[1]} == set(exec_inst)
    assert {v[2] for v in ORD_TYPES.values() if v[2]} <= set(take_profit)
    assert len(set(ORD_TYPES.values())) == len(ORD_TYPES), "two engine types map to one"
    tifs = enum_values(root, "TimeInForce")
    assert set(TIME_IN_FORCE.values()) == set(tifs)
    assert len(set(TIME_IN_FORCE.values())) == len(TIME_IN_FORCE)
    assert enum_values(root, "SelfTradePreventionMode") == {
        str(m.value): m.name for m in StpMode if m is not StpMode.DEFAULT
    }


def test_statuses_and_reasons_cover_the_engine() -> None:
    root = load()
    assert set(ORD_STATUS) == set(OrderStatus)
    assert set(ORD_STATUS.values()) == set(enum_values(root, "OrdStatus"))
    assert set(CANCEL_REASONS) == set(CancelReason)
    exec_types = enum_values(root, "ExecType")
    assert set(CANCEL_REASONS.values()) <= set(exec_types)
    assert set(REJECT_REASONS) == set(RejectReason) - {RejectReason.NONE}
    ord_rej, cxl_rej = enum_values(root, "OrdRejReason"), enum_values(root, "CxlRejReason")
    assert {v[0] for v in REJECT_REASONS.values()} <= set(ord_rej)
    assert {v[1] for v in REJECT_REASONS.values()} <= set(cxl_rej)


def _readme_rows() -> list[str]:
    rows = [f"| `{t.name}` | {o} | {e or '-'} | {p or '-'} |" for t, (o, e, p) in ORD_TYPES.items()]
    rows += [f"| `{t.name}` | {v} |" for t, v in TIME_IN_FORCE.items()]
    rows += [f"| `{s.name}` | {v} |" for s, v in ORD_STATUS.items()]
    rows += [f"| {r.value} | `{r.name}` | {v} |" for r, v in CANCEL_REASONS.items()]
    rows += [f"| {r.value} | `{r.name}` | {o} | {c} |" for r, (o, c) in REJECT_REASONS.items()]
    return rows


def test_readme_tables_match_the_mappings() -> None:
    text = README.read_text(encoding="utf-8")
    lines = {line.strip() for line in text.splitlines()}
    missing = [row for row in _readme_rows() if row not in lines]
    assert missing == []


def test_readme_names_every_supported_message() -> None:
    text = README.read_text(encoding="utf-8")
    for name, msg_type in (SESSION_MESSAGES | APPLICATION_MESSAGES).items():
        assert f"{name} ({msg_type})" in text, name
