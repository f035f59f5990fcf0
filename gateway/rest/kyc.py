"""The KYC provider's webhook on the REST door: ``POST /webhooks/kyc``.

An identity-verification provider (Sumsub, Onfido style) calls it when it has reviewed an
account: the body is JSON ``{"reviewId": str, "accountId": int, "tier": "0".."3" |
"INSTITUTIONAL"}`` (other keys the provider sends are ignored), signed with the secret the venue
shares with it: header ``X-Signature: hex(HMAC-SHA256(secret, raw body))``. The signature is
checked on the raw bytes, in constant time, before the body is read.

- Every call counts one unit of its address's request weight (``[rest]``
  ``request_weight_per_minute``), as the door's other requests do: past it, 429 and then 418.
- No secret configured (``[kyc] webhook_secret_file``): 404 ``{"code", "msg"}`` "not configured".
- A missing or wrong signature: 401, nothing changes, and the refusal is reported to
  ``on_refused(actor, action, subject, ip, outcome)`` (the composition root records it in the
  audit chain).
- A malformed body (not UTF-8 JSON, not an object, a field missing or of the wrong form): 400
  with a message naming the field.
- Otherwise the door sequences ``SetKycTier(accountId, tier, reviewId)`` with the origin (door
  REST, principal ``kyc-webhook``, request id the review id, the peer's address) and answers 200
  ``{"reviewId", "accountId", "tier", "duplicate", "seq"}`` once it is durable. The core keeps
  the review ids it applied, so a review delivered twice (providers retry) changes the tier
  once: the second answer says ``"duplicate": true``.

The secret is never logged nor put in an answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from engine.commands import Origin, SetKycTier
from engine.events import ClearingReject, ClearingRejected, KycTierSet
from engine.types import Door, KycTier, kyc_tier_label, parse_kyc_tier
from gateway.rest.context import SERVED, WEIGHT_IP
from gateway.rest.errors import ApiError, compact

__all__ = [
    "MAX_BODY",
    "PATH",
    "PRINCIPAL",
    "KycReview",
    "KycSecretError",
    "OnRefused",
    "WebhookError",
    "add_kyc_webhook",
    "load_webhook_secret",
    "parse_review",
    "sign",
    "signature_ok",
]

log = logging.getLogger("gateway.rest.kyc")

PATH = "/webhooks/kyc"
#: The principal the webhook's commands are journaled under.
PRINCIPAL = "kyc-webhook"
#: The largest body taken (a review is a few hundred bytes).
MAX_BODY = 16 * 1024
#: The shortest secret taken, in bytes.
MIN_SECRET = 16
MAX_ACCOUNT = 2**63 - 1
#: A review id: printable ASCII without spaces, as providers' ids are.
REVIEW_ID = re.compile(r"[!-~]{1,128}")

#: ``on_refused(actor, action, subject, ip, outcome)``: a refused call, for the audit trail.
OnRefused = Callable[[str, str, str, str, str], None]

_NOT_CONFIGURED = -1000
_BAD_SIGNATURE = -1022  # Binance: "Signature for this request is not valid."
_BAD_BODY = -1130


class KycSecretError(ValueError):
    """The webhook's secret file cannot be used (one line, never the secret)."""


class WebhookError(ValueError):
    """A body that is not a review; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class KycReview:
    review_id: str
    account: int
    tier: KycTier


def load_webhook_secret(path: Path) -> bytes:
    """The secret in ``path`` (its content without surrounding whitespace). ``KycSecretError``
    when others may read the file, or the secret is shorter than 16 bytes; ``OSError`` when it
    cannot be read."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KycSecretError(
            f"{path} has mode {mode:04o}; the KYC webhook secret must be readable by its owner "
            f"only: chmod 600 {path}"
        )
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET:
        raise KycSecretError(f"{path}: the KYC webhook secret must be {MIN_SECRET} bytes or more")
    return secret


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Signature`` of ``body``: lowercase hex of HMAC-SHA256 with ``secret``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the body's signature (hex, either case), compared in constant
    time."""
    if not header:
        return False
    given = header.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(sign(secret, body).encode("ascii"), given)


def parse_review(body: bytes) -> KycReview:
    """The review in a webhook's raw ``body``; ``WebhookError`` saying what is wrong."""
    if len(body) > MAX_BODY:
        raise WebhookError(f"The body is larger than {MAX_BODY} bytes.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError("The body is not UTF-8 text.") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookError("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise WebhookError("The body must be a JSON object.")
    review = data.get("reviewId")
    if not isinstance(review, str) or not REVIEW_ID.fullmatch(review):
        raise WebhookError(
            "Field 'reviewId' must be a string of 1 to 128 printable ASCII characters "
            "without spaces."
        )
    account = data.get("accountId")
    if isinstance(account, bool) or not isinstance(account, int):
        raise WebhookError("Field 'accountId' must be an integer.")
    if not 1 <= account <= MAX_ACCOUNT:
        raise WebhookError(f"Field 'accountId' must be between 1 and {MAX_ACCOUNT}.")
    try:
        tier = parse_kyc_tier(data.get("tier"))
    except ValueError:
        raise WebhookError(
            'Field \'tier\' must be "0", "1", "2", "3" or "INSTITUTIONAL" (a string).'
        ) from None
    return KycReview(review, account, tier)


def add_kyc_webhook(
    secret: bytes | None, on_refused: OnRefused | None = None
) -> Callable[[web.Application], None]:
    """The extension (``gateway.rest.app.Extension``) serving ``POST /webhooks/kyc`` with
    ``secret`` (None: answered 404, not configured); ``on_refused`` hears of every call refused
    for its signature."""

    async def webhook(request: web.Request) -> web.Response:
        served = request.app[SERVED]
        ip = request.remote or ""
        # counted like any request of the caller's address: a flood of forged calls is refused
        # (and stops filling the audit trail) once the address's request weight is spent
        verdict = served.limiter.check_request(ip, 1, served.venue.now_ms())
        request[WEIGHT_IP] = ip
        if not verdict.ok:
            headers = {"Retry-After": str(verdict.retry_after_s)}
            raise ApiError(verdict.code, verdict.msg, verdict.status, headers)
        if secret is None:
            raise ApiError(_NOT_CONFIGURED, "The KYC webhook is not configured on this venue.", 404)
        body = await request.read()
        header = request.headers.get("X-Signature")
        if not signature_ok(secret, body, header):
            outcome = "refused: no signature" if not header else "refused: bad signature"
            log.warning("KYC webhook from %s %s", ip or "?", outcome)
            if on_refused is not None:
                try:
                    on_refused(PRINCIPAL, "kyc_webhook", _claimed(body), ip, outcome)
                except Exception:
                    log.exception("the refused KYC webhook call could not be audited")
            raise ApiError(_BAD_SIGNATURE, "Signature for this request is not valid.", 401)
        try:
            review = parse_review(body)
        except WebhookError as exc:
            raise ApiError(_BAD_BODY, str(exc)) from None
        cmd = SetKycTier(review.account, review.tier, review.review_id)
        cmd.origin = Origin(Door.REST, PRINCIPAL, review.review_id, ip)
        events = await served.venue.submit(cmd)
        duplicate = False
        for event in events:
            if isinstance(event, ClearingRejected):
                if event.reason is not ClearingReject.DUPLICATE_REVIEW:
                    raise ApiError(_BAD_BODY, f"The review was refused: {event.detail}.")
                duplicate = True
        if not duplicate and not any(isinstance(e, KycTierSet) for e in events):
            raise ApiError(-1000, "The review was not applied.", 500)
        answer = {
            "reviewId": review.review_id,
            "accountId": review.account,
            "tier": kyc_tier_label(review.tier),
            "duplicate": duplicate,
            "seq": cmd.seq,
        }
        return web.json_response(answer, dumps=compact)

    def extension(app: web.Application) -> None:
        app.router.add_post(PATH, webhook)

    return extension


def _claimed(body: bytes) -> str:
    """What an unauthenticated call claims to be about, for the audit trail (bounded)."""
    try:
        review = parse_review(body)
    except WebhookError:
        return f"{len(body)}-byte body, not a review"
    return f"account {review.account} tier {kyc_tier_label(review.tier)} review {review.review_id}"
