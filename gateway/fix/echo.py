"""The echo application of the conformance profile (``config/conformance.toml``).

It is what QuickFIX's acceptance scripts expect behind the session layer: a NewOrderSingle comes
back as a NewOrderSingle with the same body fields (dropped when it is a PossResend of a ClOrdID
already seen), a SecurityDefinition comes back as it is, and every other application message is
answered with BusinessMessageReject 380=3. It proves the session layer in isolation; it never
reaches the matching engine.
"""

from __future__ import annotations

from gateway.fix.codec import FixMessage
from gateway.fix.session import BusinessRejectReason, Session

__all__ = ["EchoApplication"]


class EchoApplication:
    """Echoes NewOrderSingle and SecurityDefinition; rejects the rest."""

    def __init__(self) -> None:
        self._seen: dict[str, set[bytes]] = {}

    def on_logon(self, session: Session, logon: FixMessage) -> str | None:
        if logon.get(141) == b"Y" or session.next_target_seq == 1:
            self._seen.pop(session.config.key, None)
        return None

    def on_logout(self, session: Session) -> None:
        return None

    def from_app(self, session: Session, msg: FixMessage) -> None:
        msg_type = msg.msg_type
        if msg_type == b"D":
            seen = self._seen.setdefault(session.config.key, set())
            cl_ord_id = msg.get(11) or b""
            if msg.get(97) == b"Y" and cl_ord_id in seen:
                return
            seen.add(cl_ord_id)
            poss_resend = b"97=Y\x01" if msg.get(97) == b"Y" else b""
            session.send(b"D", self._body(session, msg), msg, header=poss_resend)
        elif msg_type == b"d":
            session.send(b"d", self._body(session, msg), msg)
        else:
            session.business_reject(
                msg, BusinessRejectReason.UNSUPPORTED_MESSAGE_TYPE, "Unsupported Message Type"
            )

    @staticmethod
    def _body(session: Session, msg: FixMessage) -> bytes:
        is_header = session.dictionary.is_header_field
        fields = [f for f in msg.fields[2:-1] if not is_header(f[0])]
        if len({tag for tag, _ in fields}) == len(fields):
            fields.sort()  # QuickFIX writes body fields in tag order when there are no groups
        return b"".join(b"%d=%b\x01" % f for f in fields)
