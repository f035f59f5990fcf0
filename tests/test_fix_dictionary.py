"""The FIX data dictionary: loading QuickFIX XML (the standard fix_specs/FIX44.xml and the venue's
fix_specs/FIX44-venue.xml) and validating messages with QuickFIX's reasons, tags and order of
checks, including cases of QuickFIX's acceptance suite.

Messages are built from their fields directly (``FixMessage(fields, b"")``), so tags <= 0, empty
values and any order can be tried whatever the parser accepts.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gateway.fix.codec import Field, FixMessage
from gateway.fix.dictionary import (
    REJECT_TEXT,
    DataDictionary,
    DictionaryError,
    Rejection,
    SessionRejectReason,
    load_dictionary,
    reject_text,
)

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"
TS = b"20240315-12:34:56.789"
HEADER: tuple[Field, ...] = ((49, b"TW44"), (56, b"ISLD"), (34, b"2"), (52, TS))

R = SessionRejectReason


@pytest.fixture(scope="module")
def fix44() -> DataDictionary:
    return load_dictionary(SPECS / "FIX44.xml")


@pytest.fixture(scope="module")
def venue() -> DataDictionary:
    return load_dictionary(SPECS / "FIX44-venue.xml")


def raw(*fields: Field) -> FixMessage:
    """8, 9, then ``fields`` exactly as given (35 first), then 10."""
    return FixMessage([(8, b"FIX.4.4"), (9, b"0"), *fields, (10, b"000")], b"")


def message(msg_type: bytes, *body: Field, header: tuple[Field, ...] = HEADER) -> FixMessage:
    return raw((35, msg_type), *header, *body)


def heartbeat(*body: Field) -> FixMessage:
    return message(b"0", *body)


#: A valid NewOrderSingle for both dictionaries.
NOS: tuple[Field, ...] = (
    (11, b"ord-1"),
    (55, b"MSFT"),
    (54, b"1"),
    (60, TS),
    (38, b"200"),
    (40, b"2"),
    (44, b"10.5"),
)
NOS_TAGS = frozenset(tag for tag, _ in NOS)


def nos(*changes: Field, drop: tuple[int, ...] = ()) -> FixMessage:
    """NOS with ``drop`` removed and ``changes`` applied: a tag of NOS is replaced in place (the
    first time), any other field appended."""
    body = [f for f in NOS if f[0] not in drop]
    replaced: set[int] = set()
    for tag, value in changes:
        at = next((i for i, f in enumerate(body) if f[0] == tag), None)
        if at is None or tag in replaced or tag not in NOS_TAGS:
            body.append((tag, value))
        else:
            body[at] = (tag, value)
            replaced.add(tag)
    return message(b"D", *body)


def check(
    dd: DataDictionary, msg: FixMessage, reason: int, tag: int | None, text: str = ""
) -> None:
    rejection = dd.validate(msg)
    assert rejection == Rejection(reason, tag, text or reject_text(reason, tag)), msg.fields
    assert dd._validate_walk(msg, dd._messages.get(msg.msg_type)) == rejection


def valid(dd: DataDictionary, msg: FixMessage) -> None:
    assert dd.validate(msg) is None, msg.fields
    assert dd._validate_walk(msg, dd._messages.get(msg.msg_type)) is None


# -- loading and lookups ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["FIX44.xml", "FIX44-venue.xml"])
def test_both_dictionaries_load(name: str) -> None:
    dd = load_dictionary(str(SPECS / name))
    assert dd.begin_string == b"FIX.4.4"
    assert dd.has_message(b"D") and dd.has_message(b"0") and not dd.has_message(b"*")
    assert dd.is_admin(b"A") and dd.is_admin(b"0") and not dd.is_admin(b"D")
    assert not dd.is_admin(b"*")
    assert dd.message_name(b"D") == "NewOrderSingle"
    assert dd.field_name(38) == "OrderQty" and dd.field_number("OrderQty") == 38
    assert dd.field_name(99999) is None and dd.field_number("NoSuchField") is None
    assert dd.field_type(52) == "UTCTIMESTAMP"
    assert dd.enum_values(54) >= {b"1", b"2"} and dd.enum_values(58) == frozenset()
    assert dd.is_header_field(49) and dd.is_header_field(8) and not dd.is_header_field(11)
    assert dd.is_trailer_field(10) and not dd.is_trailer_field(11)
    # Every message type is among the values of MsgType (35), so 35 itself always validates.
    assert {t for t, _ in dd.iter_messages()} <= dd.enum_values(35)


def test_venue_dictionary_has_every_message_of_the_rules_of_engagement(
    venue: DataDictionary,
) -> None:
    session = {b"0", b"1", b"2", b"3", b"4", b"5", b"A"}
    application = {b"D", b"F", b"G", b"H", b"8", b"9", b"q", b"r", b"AF", b"j", b"x", b"y"}
    application |= {b"V", b"W", b"X", b"Y"}
    assert {t for t, _ in venue.iter_messages()} == session | application
    assert all(venue.is_admin(t) for t in session)
    assert not any(venue.is_admin(t) for t in application)


def test_group_layout_reads_groups_with_the_codec(fix44: DataDictionary) -> None:
    layout = fix44.group_layout(b"D", 386)
    assert layout == (336, frozenset({336, 625}))
    assert fix44.group_layout(b"D", 555) is None  # NoLegs is not in NewOrderSingle
    assert fix44.group_layout(b"*", 386) is None
    msg = nos((386, b"2"), (336, b"PRE-OPEN"), (625, b"A"), (336, b"AFTER-HOURS"))
    valid(fix44, msg)
    delimiter, members = layout
    entries = msg.group(386, delimiter, members)
    assert entries == [[(336, b"PRE-OPEN"), (625, b"A")], [(336, b"AFTER-HOURS")]]
    # A nested group's fields belong to the entry that holds them.
    delimiter, members = fix44.group_layout(b"AB", 555) or (0, frozenset())
    assert delimiter == 600 and {683, 688, 539, 524} <= members  # LegStipulations, NestedParties


def test_header_groups_are_header_fields(fix44: DataDictionary) -> None:
    assert fix44.is_header_field(627) and fix44.is_header_field(628)  # NoHops, HopCompID
    valid(fix44, message(b"0", header=(*HEADER, (627, b"1"), (628, b"HOP"))))
    check(fix44, message(b"0", header=(*HEADER, (627, b"2"), (628, b"HOP"))), R(16), 627)


def test_unusable_files_raise_a_one_line_dictionary_error(tmp_path: Path) -> None:
    def error(text: str | None) -> str:
        path = tmp_path / "dd.xml"
        if text is not None:
            path.write_text(text)
        with pytest.raises(DictionaryError) as info:
            load_dictionary(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        return message

    assert "cannot read" in error(None)
    assert "not well-formed" in error("<fix major='4' minor='4'><fields>")
    assert "not <fix>" in error("<fox/>")
    venue_xml = (SPECS / "FIX44-venue.xml").read_text()
    assert "NoSuchField" in error(
        venue_xml.replace('<field name="Text" required="N"/>', '<field name="NoSuchField"/>', 1)
    )
    assert "Parties" in error(
        venue_xml.replace('component name="OrderQtyData" required="Y"', 'component name="Parties"')
    )
    assert "defined twice" in error(
        venue_xml.replace('number="55" name="Symbol"', 'number="54" name="Symbol"')
    )
    assert "<header>" in error(
        venue_xml.replace("<header>", "<headers>").replace("</header>", "</headers>")
    )
    assert issubclass(DictionaryError, ValueError)


def test_reject_reasons_and_texts_are_fix44_and_quickfix() -> None:
    assert {r.name: r.value for r in R} == {
        "INVALID_TAG_NUMBER": 0,
        "REQUIRED_TAG_MISSING": 1,
        "TAG_NOT_DEFINED_FOR_MESSAGE_TYPE": 2,
        "UNDEFINED_TAG": 3,
        "TAG_SPECIFIED_WITHOUT_A_VALUE": 4,
        "VALUE_IS_INCORRECT": 5,
        "INCORRECT_DATA_FORMAT": 6,
        "DECRYPTION_PROBLEM": 7,
        "SIGNATURE_PROBLEM": 8,
        "COMPID_PROBLEM": 9,
        "SENDINGTIME_ACCURACY_PROBLEM": 10,
        "INVALID_MSGTYPE": 11,
        "XML_VALIDATION_ERROR": 12,
        "TAG_APPEARS_MORE_THAN_ONCE": 13,
        "TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER": 14,
        "REPEATING_GROUP_FIELDS_OUT_OF_ORDER": 15,
        "INCORRECT_NUMINGROUP_COUNT": 16,
        "NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER": 17,
        "OTHER": 99,
    }
    assert REJECT_TEXT == {
        0: "Invalid tag number",
        1: "Required tag missing",
        2: "Tag not defined for this message type",
        3: "Undefined Tag",
        4: "Tag specified without a value",
        5: "Value is incorrect (out of range) for this tag",
        6: "Incorrect data format for value",
        7: "Decryption problem",
        8: "Signature problem",
        9: "CompID problem",
        10: "SendingTime accuracy problem",
        11: "Invalid MsgType",
        13: "Tag appears more than once",
        14: "Tag specified out of required order",
        15: "Repeating group fields out of order",
        16: "Incorrect NumInGroup count for repeating group",
        17: "Non Data Value includes Field Delimiter (SOH character)",
        99: "Other",
    }


# -- QuickFIX acceptance cases (FIX44.xml) ------------------------------------------------------


@pytest.mark.parametrize("tag", [999, 0, -1, 5000])
def test_invalid_tag_number(fix44: DataDictionary, tag: int) -> None:
    check(fix44, heartbeat((tag, b"HI")), R.INVALID_TAG_NUMBER, tag)


def test_tag_specified_without_a_value(fix44: DataDictionary) -> None:
    msg = raw((35, b"0"), (49, b"TW44"), (56, b""), (34, b"2"), (52, TS))
    check(fix44, msg, R.TAG_SPECIFIED_WITHOUT_A_VALUE, 56)


def test_required_tag_missing_in_the_header(fix44: DataDictionary) -> None:
    msg = raw((35, b"0"), (49, b"TW44"), (34, b"2"), (52, TS))
    check(fix44, msg, R.REQUIRED_TAG_MISSING, 56)


def test_required_tag_missing_lowest_first(fix44: DataDictionary) -> None:
    msg = message(b"D", (40, b"1"), (60, TS), (54, b"1"), (21, b"3"))  # no 11, no 55
    check(fix44, msg, R.REQUIRED_TAG_MISSING, 11)


def test_tag_not_defined_for_message_type(fix44: DataDictionary) -> None:
    check(fix44, heartbeat((55, b"MSFT")), R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, 55)


def test_value_is_incorrect(fix44: DataDictionary) -> None:
    check(fix44, nos((21, b"4")), R.VALUE_IS_INCORRECT, 21)
    valid(fix44, nos((21, b"3")))
    check(fix44, nos((167, b"BOO")), R.VALUE_IS_INCORRECT, 167)
    valid(fix44, nos((167, b"CS")))


def test_incorrect_data_format(fix44: DataDictionary) -> None:
    check(fix44, nos((38, b"+200.00")), R.INCORRECT_DATA_FORMAT, 38)


def test_header_field_after_the_body(fix44: DataDictionary) -> None:
    msg = raw(
        (35, b"D"),
        (11, b"id"),
        (21, b"3"),
        (40, b"1"),
        (54, b"1"),
        (55, b"MSFT"),
        (60, TS),
        (34, b"2"),
        (49, b"TW44"),
        (52, TS),
        (56, b"ISLD"),
    )
    check(fix44, msg, R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 34)


def test_tag_appears_more_than_once(fix44: DataDictionary) -> None:
    msg = message(b"D", (11, b"id"), (21, b"3"), (40, b"1"), (40, b"2"), (54, b"1"), (60, TS))
    check(fix44, msg, R.TAG_APPEARS_MORE_THAN_ONCE, 40)


def test_incorrect_numingroup_count(fix44: DataDictionary) -> None:
    msg = nos((386, b"3"), (336, b"PRE-OPEN"), (336, b"AFTER-HOURS"))
    check(fix44, msg, R.INCORRECT_NUMINGROUP_COUNT, 386)


def test_security_definition_with_an_empty_group_is_valid(fix44: DataDictionary) -> None:
    msg = message(
        b"d",
        (320, b"1"),
        (322, b"1"),
        (323, b"1"),
        (55, b"MSFT"),
        (22, b"8"),
        (167, b"CS"),
        (454, b"0"),
        (336, b"PRE-OPEN"),
        (58, b"Text"),
    )
    valid(fix44, msg)


def test_invalid_msgtype(fix44: DataDictionary) -> None:
    check(fix44, message(b"*"), R.INVALID_MSGTYPE, None)


def test_execution_report_is_defined_in_the_standard_dictionary(fix44: DataDictionary) -> None:
    msg = message(
        b"8",
        (37, b"O1"),
        (17, b"E1"),
        (150, b"0"),
        (39, b"0"),
        (55, b"MSFT"),
        (54, b"1"),
        (151, b"200"),
        (14, b"0"),
        (6, b"0"),
    )
    valid(fix44, msg)
    check(fix44, message(b"8", *[f for f in msg.fields[7:-1] if f[0] != 17]), R(1), 17)


# -- unsupported message types -------------------------------------------------------------------


def test_fix_message_type_the_venue_does_not_support_is_a_business_reject(
    fix44: DataDictionary,
) -> None:
    standard = fix44.enum_values(35)
    venue = load_dictionary(SPECS / "FIX44-venue.xml", known_msg_types=standard)
    assert b"E" in standard and not venue.has_message(b"E")  # NewOrderList
    rejection = venue.validate(message(b"E", (66, b"L1")))
    assert rejection == Rejection(3, None, "Unsupported Message Type", business=True)
    check(venue, message(b"*"), R.INVALID_MSGTYPE, None)


def test_without_known_types_only_the_msgtype_enumeration_counts(
    venue: DataDictionary, tmp_path: Path
) -> None:
    # FIX44-venue.xml enumerates only the MsgTypes it defines: E is an invalid MsgType for it...
    check(venue, message(b"E", (66, b"L1")), R.INVALID_MSGTYPE, None)
    # ...unless the enumeration names it.
    path = tmp_path / "venue.xml"
    path.write_text(
        (SPECS / "FIX44-venue.xml")
        .read_text()
        .replace(
            '<value enum="AF" description="ORDER_MASS_STATUS_REQUEST"/>',
            '<value enum="AF" description="ORDER_MASS_STATUS_REQUEST"/>\n'
            '   <value enum="E" description="NEW_ORDER_LIST"/>',
        )
    )
    extended = load_dictionary(path)
    assert extended.validate(message(b"E", (66, b"L1"))) == Rejection(
        3, None, "Unsupported Message Type", business=True
    )


# -- order of the checks --------------------------------------------------------------------------


def test_field_after_a_trailer_field_is_out_of_order(fix44: DataDictionary) -> None:
    body = [(11, b"ord-1"), (54, b"1"), (60, TS), (40, b"1")]
    check(fix44, message(b"D", *body, (93, b"3"), (89, b"sig"), (58, b"x")), R(14), 58)
    check(fix44, message(b"D", *body, (93, b"3"), (89, b"sig"), (49, b"X")), R(14), 49)
    valid(fix44, message(b"D", *body, (93, b"3"), (89, b"sig")))


def test_structure_is_checked_before_the_message_type(fix44: DataDictionary) -> None:
    msg = raw((35, b"*"), (999, b"x"), *HEADER)
    check(fix44, msg, R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 49)


def test_message_type_is_checked_before_required_fields(fix44: DataDictionary) -> None:
    check(fix44, raw((35, b"*"), (49, b"TW44")), R.INVALID_MSGTYPE, None)


def test_required_fields_before_field_checks(fix44: DataDictionary) -> None:
    # 38 is malformed and 999 unknown, but the missing ClOrdID is reported first.
    check(fix44, nos((38, b"x"), (999, b"y"), drop=(11,)), R.REQUIRED_TAG_MISSING, 11)


def test_required_header_before_body_and_lowest_within_a_part(fix44: DataDictionary) -> None:
    msg = message(b"D", *NOS[1:])
    check(fix44, msg, R.REQUIRED_TAG_MISSING, 11)
    msg = raw((35, b"D"), (49, b"TW44"), (34, b"2"), (52, TS), *NOS[1:3])
    check(fix44, msg, R.REQUIRED_TAG_MISSING, 56)  # header first, though 11 is lower
    check(fix44, nos(drop=(54, 40)), R.REQUIRED_TAG_MISSING, 40)


def test_required_component(venue: DataDictionary, fix44: DataDictionary) -> None:
    # The venue's Instrument requires Symbol: required in NewOrderSingle (Instrument required)...
    check(venue, nos(drop=(55,)), R.REQUIRED_TAG_MISSING, 55)
    # ...not in OrderMassCancelRequest, where Instrument is optional.
    valid(venue, message(b"q", (11, b"c1"), (530, b"7"), (60, TS)))
    # FIX44.xml's Instrument requires nothing.
    valid(fix44, nos(drop=(55,)))


def test_required_group(venue: DataDictionary) -> None:
    md = ((262, b"r1"), (263, b"1"), (264, b"0"))
    check(venue, message(b"V", *md), R.REQUIRED_TAG_MISSING, 146)
    check(venue, message(b"V", *md, (146, b"1"), (55, b"BTC-USD")), R.REQUIRED_TAG_MISSING, 267)
    valid(venue, message(b"V", *md, (267, b"1"), (269, b"0"), (146, b"1"), (55, b"BTC-USD")))


def test_header_then_trailer_then_body(fix44: DataDictionary) -> None:
    bad_body = (38, b"abc")
    bad_trailer = ((93, b"x"), (89, b"sig"))
    check(fix44, nos(bad_body, *bad_trailer), R.INCORRECT_DATA_FORMAT, 93)
    msg = raw((35, b"D"), (49, b"TW44"), (56, b"ISLD"), (34, b"-"), (52, TS), *NOS, *bad_trailer)
    check(fix44, msg, R.INCORRECT_DATA_FORMAT, 34)


def test_per_field_order(fix44: DataDictionary) -> None:
    # repeated before empty
    check(fix44, nos((58, b"a"), (58, b"")), R.TAG_APPEARS_MORE_THAN_ONCE, 58)
    # empty before unknown
    check(fix44, nos((999, b"")), R.TAG_SPECIFIED_WITHOUT_A_VALUE, 999)
    # unknown before anything about its value
    check(fix44, nos((999, b"+1")), R.INVALID_TAG_NUMBER, 999)
    # format before enumeration
    check(fix44, nos((40, b"12")), R.INCORRECT_DATA_FORMAT, 40)
    # enumeration before "not in this message"
    check(fix44, heartbeat((54, b"Z")), R.VALUE_IS_INCORRECT, 54)
    check(fix44, heartbeat((38, b"1e5")), R.INCORRECT_DATA_FORMAT, 38)
    # "not in this message" before the group count, in wire order
    check(fix44, nos((386, b"2"), (336, b"A"), (112, b"T")), R.INCORRECT_NUMINGROUP_COUNT, 386)
    check(fix44, nos((112, b"T"), (386, b"2"), (336, b"A")), R(2), 112)
    # the first field in wire order wins (38 comes before 44 in NOS)
    check(fix44, nos((44, b"x"), (38, b"y")), R.INCORRECT_DATA_FORMAT, 38)
    check(fix44, nos((44, b"x"), (38, b"1")), R.INCORRECT_DATA_FORMAT, 44)


def test_header_fields_are_defined_for_every_message(fix44: DataDictionary) -> None:
    valid(fix44, message(b"0", header=(*HEADER, (50, b"SUB"), (43, b"Y"), (122, TS))))
    check(fix44, message(b"0", header=(*HEADER, (43, b"X"))), R.INCORRECT_DATA_FORMAT, 43)


def test_multiple_value_string(fix44: DataDictionary) -> None:
    valid(fix44, nos((18, b"1")))
    valid(fix44, nos((18, b"1 2 G")))
    check(fix44, nos((18, b"1 ZZ")), R.VALUE_IS_INCORRECT, 18)
    check(fix44, nos((18, b"1  2")), R.VALUE_IS_INCORRECT, 18)


# -- repeating groups -------------------------------------------------------------------------


def test_group_entries(fix44: DataDictionary) -> None:
    two = ((386, b"2"), (336, b"A"), (625, b"X"), (336, b"B"), (625, b"Y"))
    valid(fix44, nos(*two))
    check(fix44, nos((386, b"1"), (336, b"A"), (625, b"X"), (625, b"Y")), R(13), 625)
    delimiter_first = "The group 386 must set the delimiter field 336"
    check(fix44, nos((386, b"1"), (625, b"X"), (336, b"A")), R(15), 625, delimiter_first)
    check(fix44, nos((625, b"X")), R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, 625)
    # A member after the group has ended (another field came between).
    check(fix44, nos((386, b"1"), (336, b"A"), (58, b"t"), (625, b"X")), R(15), 625)


@pytest.mark.parametrize(
    ("count", "reason"),
    [(b"0", R.INCORRECT_NUMINGROUP_COUNT), (b"-1", R.INCORRECT_NUMINGROUP_COUNT),
     (b"x", R.INCORRECT_DATA_FORMAT), (b"2", R.INCORRECT_NUMINGROUP_COUNT)],
)  # fmt: skip
def test_group_counts(fix44: DataDictionary, count: bytes, reason: int) -> None:
    check(fix44, nos((386, count), (336, b"A")), reason, 386)


def test_group_count_zero(fix44: DataDictionary) -> None:
    valid(fix44, nos((386, b"0")))


CUSTOM = """<fix type="FIX" major="4" minor="4">
 <header>
  <field name="BeginString" required="Y"/>
  <field name="BodyLength" required="Y"/>
  <field name="MsgType" required="Y"/>
  <field name="SenderCompID" required="Y"/>
 </header>
 <trailer><field name="CheckSum" required="Y"/></trailer>
 <messages>
  <message name="Groups" msgtype="U2" msgcat="app">
   <field name="Id" required="Y"/>
   <component name="Optional" required="N"/>
   <component name="Mandatory" required="Y"/>
   <group name="NoOuter" required="N">
    <field name="OuterKey" required="Y"/>
    <field name="OuterReq" required="Y"/>
    <group name="NoInner" required="N">
     <field name="InnerKey" required="Y"/>
     <field name="InnerReq" required="Y"/>
    </group>
    <field name="OuterOpt" required="N"/>
   </group>
  </message>
  <message name="Types" msgtype="U1" msgcat="app">
   <field name="F_INT" required="N"/>
   <field name="F_FLOAT" required="N"/>
   <field name="F_CHAR" required="N"/>
   <field name="F_BOOLEAN" required="N"/>
   <field name="F_UTCTIMESTAMP" required="N"/>
   <field name="F_UTCTIMEONLY" required="N"/>
   <field name="F_UTCDATEONLY" required="N"/>
   <field name="F_MONTHYEAR" required="N"/>
   <field name="F_STRING" required="N"/>
   <field name="F_OTHER" required="N"/>
  </message>
 </messages>
 <components>
  <component name="Optional">
   <field name="OptA" required="Y"/>
   <component name="Sub2" required="Y"/>
  </component>
  <component name="Sub2"><field name="Sub2A" required="Y"/></component>
  <component name="Mandatory">
   <field name="ManA" required="Y"/>
   <component name="Sub" required="N"/>
  </component>
  <component name="Sub"><field name="SubA" required="Y"/></component>
 </components>
 <fields>
  <field number="8" name="BeginString" type="STRING"/>
  <field number="9" name="BodyLength" type="LENGTH"/>
  <field number="10" name="CheckSum" type="STRING"/>
  <field number="35" name="MsgType" type="STRING"/>
  <field number="49" name="SenderCompID" type="STRING"/>
  <field number="5000" name="Id" type="STRING"/>
  <field number="5001" name="OptA" type="STRING"/>
  <field number="5002" name="ManA" type="STRING"/>
  <field number="5003" name="SubA" type="STRING"/>
  <field number="5004" name="Sub2A" type="STRING"/>
  <field number="5010" name="NoOuter" type="NUMINGROUP"/>
  <field number="5011" name="OuterKey" type="STRING"/>
  <field number="5012" name="OuterReq" type="STRING"/>
  <field number="5013" name="OuterOpt" type="STRING"/>
  <field number="5020" name="NoInner" type="NUMINGROUP"/>
  <field number="5021" name="InnerKey" type="STRING"/>
  <field number="5022" name="InnerReq" type="STRING"/>
  <field number="6001" name="F_INT" type="INT"/>
  <field number="6002" name="F_FLOAT" type="PRICE"/>
  <field number="6003" name="F_CHAR" type="CHAR"/>
  <field number="6004" name="F_BOOLEAN" type="BOOLEAN"/>
  <field number="6005" name="F_UTCTIMESTAMP" type="UTCTIMESTAMP"/>
  <field number="6006" name="F_UTCTIMEONLY" type="UTCTIMEONLY"/>
  <field number="6007" name="F_UTCDATEONLY" type="UTCDATEONLY"/>
  <field number="6008" name="F_MONTHYEAR" type="MONTHYEAR"/>
  <field number="6009" name="F_STRING" type="STRING"/>
  <field number="6010" name="F_OTHER" type="SOMETHINGNEW"/>
 </fields>
</fix>
"""


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> DataDictionary:
    path = tmp_path_factory.mktemp("dd") / "custom.xml"
    path.write_text(CUSTOM)
    return load_dictionary(path)


def groups_msg(*body: Field) -> FixMessage:
    return raw((35, b"U2"), (49, b"S"), (5000, b"id"), (5002, b"m"), *body)


def test_components_required_only_when_every_enclosing_one_is(custom: DataDictionary) -> None:
    # Not required: OptA (in an optional component), Sub2A (in a required component inside an
    # optional one), SubA (in an optional component inside a required one).
    valid(custom, groups_msg())
    valid(custom, groups_msg((5001, b"a"), (5004, b"b"), (5003, b"c")))
    check(custom, raw((35, b"U2"), (49, b"S"), (5000, b"id")), R(1), 5002)


def test_nested_groups(custom: DataDictionary) -> None:
    entry: tuple[Field, ...] = ((5011, b"k1"), (5012, b"r"), (5020, b"2"), (5021, b"i1"))
    entry += ((5022, b"r"),)
    entry += ((5021, b"i2"), (5022, b"r"), (5013, b"o"))
    valid(custom, groups_msg((5010, b"2"), *entry, (5011, b"k2"), (5012, b"r")))
    assert custom.group_layout(b"U2", 5010) == (
        5011,
        frozenset({5011, 5012, 5013, 5020, 5021, 5022}),
    )
    assert custom.group_layout(b"U2", 5020) == (5021, frozenset({5021, 5022}))
    # Inner count wrong.
    bad: tuple[Field, ...] = ((5011, b"k1"), (5012, b"r"), (5020, b"3"), (5021, b"i1"))
    bad += ((5022, b"r"),)
    check(custom, groups_msg((5010, b"1"), *bad), R.INCORRECT_NUMINGROUP_COUNT, 5020)
    # An inner field after the outer entry resumed is out of order.
    bad = ((5011, b"k1"), (5012, b"r"), (5020, b"1"), (5021, b"i1"), (5022, b"r"), (5013, b"o"))
    bad += ((5022, b"r"),)
    check(custom, groups_msg((5010, b"1"), *bad), R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, 5022)


def test_required_fields_of_each_group_entry(custom: DataDictionary) -> None:
    # The second outer entry lacks OuterReq.
    body: tuple[Field, ...] = ((5010, b"2"), (5011, b"k1"), (5012, b"r"), (5011, b"k2"))
    body += ((5013, b"o"),)
    check(custom, groups_msg(*body), R.REQUIRED_TAG_MISSING, 5012)
    # An inner entry lacks InnerReq.
    body = ((5010, b"1"), (5011, b"k1"), (5012, b"r"), (5020, b"1"), (5021, b"i1"))
    check(custom, groups_msg(*body), R.REQUIRED_TAG_MISSING, 5022)
    # Top-level required fields come before those of entries.
    body = ((5010, b"1"), (5011, b"k1"))
    check(custom, raw((35, b"U2"), (49, b"S"), (5002, b"m"), *body), R(1), 5000)


FORMATS: list[tuple[int, list[bytes], list[bytes]]] = [
    (6001, [b"0", b"42", b"-7", b"007"], [b"+1", b"1.0", b"-", b"1 ", b"a", b"\xd9\xa3"]),
    (
        6002,
        [b"1", b"-1", b"1.5", b"1.", b".5", b"-0.25", b"200.00"],
        [b"+200.00", b"1e5", b"1.2.3", b".", b"-", b"--1", b"1,5", b" 1", b"inf", b"NaN"],
    ),
    (6003, [b"a", b"1", b" "], [b"ab", b"10"]),
    (6004, [b"Y", b"N"], [b"y", b"YES", b"1"]),
    (
        6005,
        [b"20240315-12:34:56", b"20240229-12:34:56.789123", TS, b"20241231-23:59:60.123456789"],
        [
            # what the parser refuses (gateway.fix.timestamps): the dictionary refuses it too
            b"20240315-12:34:56.7",
            b"20240315-12:34:56.1234",
            b"20240230-12:34:56",
            b"20230229-12:34:56",
            b"19691231-23:59:59",
            b"20240315-12:34",
            b"20241315-12:34:56",
            b"20240300-12:34:56",
            b"20240332-12:34:56",
            b"20240315-24:00:00",
            b"20240315-12:60:00",
            b"20240315-12:34:61",
            b"20240315-12:34:56.",
            b"20240315-12:34:56.1234567890",
            b"20240315T12:34:56",
            b"2024031-12:34:56",
        ],
    ),
    (6006, [b"12:34:56", b"00:00:00.000", b"23:59:60"], [b"24:00:00", b"12:34", b"1:02:03"]),
    (6007, [b"20240315", b"20241231"], [b"2024031", b"20240015", b"20240230x", b"2024-03-15"]),
    (6008, [b"202403", b"20240315", b"202403w2"], [b"2024", b"202413", b"202403w9", b"20240332"]),
    (6009, [b"anything at all", b"+1e5"], []),
    (6010, [b"whatever"], []),
]


@pytest.mark.parametrize(("tag", "good", "bad"), FORMATS)
def test_formats(custom: DataDictionary, tag: int, good: list[bytes], bad: list[bytes]) -> None:
    for value in good:
        valid(custom, raw((35, b"U1"), (49, b"S"), (tag, value)))
    for value in bad:
        check(custom, raw((35, b"U1"), (49, b"S"), (tag, value)), R.INCORRECT_DATA_FORMAT, tag)


# -- the fast path agrees with the detailed walk --------------------------------------------------


def test_fast_path_agrees_with_the_walk_on_mutated_messages(
    fix44: DataDictionary, venue: DataDictionary
) -> None:
    """Random edits of valid messages (drop, repeat, move, empty, corrupt, add fields): whatever
    the answer, the fast path and the detailed walk give the same one."""
    rng = random.Random(44)
    bases = [list(nos().fields[2:-1]), list(heartbeat((112, b"T1")).fields[2:-1])]
    extra: list[Field] = [(999, b"x"), (58, b"t"), (386, b"1"), (336, b"A"), (49, b"X"), (93, b"3")]
    seen: set[int | None] = set()
    for _ in range(3000):
        body = list(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(1, len(body))
            edit = rng.randrange(6)
            if edit == 0:
                del body[i]
            elif edit == 1:
                body.insert(rng.randrange(1, len(body) + 1), body[i])
            elif edit == 2:
                body.insert(rng.randrange(1, len(body) + 1), body.pop(i))
            elif edit == 3:
                body[i] = (body[i][0], b"")
            elif edit == 4:
                body[i] = (body[i][0], body[i][1] + b"Z")
            else:
                body.insert(i, rng.choice(extra))
            if len(body) < 2:
                body = list(rng.choice(bases))
        msg = raw(*body)
        for dd in (fix44, venue):
            fast = dd.validate(msg)
            assert fast == dd._validate_walk(msg, dd._messages.get(msg.msg_type)), msg
            seen.add(None if fast is None else fast.reason)
    assert {None, 0, 1, 2, 4, 5, 6, 13, 14} <= seen
