"""The CRM client: customers from an HTTP JSON API (a source of the telemetry mart), paged,
with retries.

- Authentication: ``Authorization: Bearer $PIPELINE_CRM_TOKEN`` when a token is set; the token
  is never logged or put in an error message.
- Timeouts on every request (``PIPELINE_CRM_TIMEOUT_S``).
- Connection errors, timeouts and 5xx answers are retried with exponential backoff
  (``PIPELINE_CRM_MAX_ATTEMPTS`` attempts, ``PIPELINE_CRM_BACKOFF_S`` doubled each time);
  a 429 waits for its ``Retry-After`` (capped) and counts as an attempt.
- A response that is not the contract (not JSON, no ``data`` list, a record with a missing field
  or a field of the wrong type) raises ``CrmError`` naming the page, the record and the field —
  never a value, since values are personal data.

The contract is the one ``demo.crm_service`` serves (see there).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from config.settings import CrmSettings, load_settings
from pipeline.systems import http
from pipeline.systems.http import RetryPolicy

log = logging.getLogger(__name__)
MAX_RETRY_AFTER_S = 120.0
MAX_PAGES = 100_000


class CrmError(RuntimeError):
    """The CRM could not be read; the message says where and why (no personal data)."""


@dataclass(frozen=True)
class Customer:
    user_id: int
    prosthesis_id: str | None
    order_date: dt.date | None
    status: str
    # Personal data: kept out of repr, so a logged or printed customer shows none of it.
    email: str = field(repr=False)
    first_name: str = field(repr=False)
    last_name: str = field(repr=False)


def _text(record: dict[str, Any], key: str, where: str, optional: bool = False) -> str | None:
    value = record.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        kind = "missing" if key not in record else f"a {type(value).__name__}, not a string"
        raise CrmError(f"{where}: field {key!r} is {kind}")
    return value


def parse_customer(record: Any, where: str) -> Customer:
    if not isinstance(record, dict):
        raise CrmError(f"{where}: a record must be an object, got {type(record).__name__}")
    user_id = record.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise CrmError(f"{where}: field 'user_id' must be a positive integer")
    where = f"{where} (user_id {user_id})"
    order_text = _text(record, "order_date", where, optional=True)
    try:
        order_date = dt.date.fromisoformat(order_text) if order_text else None
    except ValueError:
        raise CrmError(f"{where}: field 'order_date' is not a YYYY-MM-DD date") from None
    return Customer(
        user_id=user_id,
        prosthesis_id=_text(record, "prosthesis_id", where, optional=True),
        order_date=order_date,
        status=_text(record, "status", where, optional=True) or "",
        email=_text(record, "email", where) or "",
        first_name=_text(record, "first_name", where) or "",
        last_name=_text(record, "last_name", where) or "",
    )


class CrmClient:
    def __init__(
        self,
        settings: CrmSettings | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or load_settings().crm
        self.session = session or requests.Session()
        if self.settings.token:
            self.session.headers["Authorization"] = f"Bearer {self.settings.token}"
        self.session.headers["Accept"] = "application/json"
        self.sleep = sleep
        self.base = self.settings.url.rstrip("/")

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base}{path}"
        where = f"CRM {url} page {params.get('page')}"
        policy = RetryPolicy(
            attempts=self.settings.max_attempts,
            backoff_s=self.settings.backoff_s,
            max_retry_after_s=MAX_RETRY_AFTER_S,
        )
        try:
            response = http.request(
                lambda: self.session.get(url, params=params, timeout=self.settings.timeout_s),
                where,
                policy,
                retry_after=lambda r: _retry_after(r.headers.get("Retry-After")),
                sleep=self.sleep,
            )
        except http.GaveUp as exc:
            raise CrmError(f"{where}: {exc}") from None
        if response.status_code != 200:  # 4xx: asking again will not help
            raise CrmError(f"{where}: HTTP {response.status_code}: {_reason(response)}")
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise CrmError(f"{where}: the response is not JSON ({kind})") from None

    def customers(self) -> Iterator[Customer]:
        """Every customer, page by page."""
        page, pages = 1, 1
        while page <= pages:
            payload = self._get(
                "/api/v1/customers", {"page": page, "per_page": self.settings.page_size}
            )
            where = f"CRM {self.base}/api/v1/customers page {page}"
            if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
                raise CrmError(f"{where}: the response has no 'data' list")
            reported = payload.get("pages")
            if isinstance(reported, bool) or not isinstance(reported, int) or reported < 0:
                raise CrmError(f"{where}: field 'pages' must be a non-negative integer")
            pages = min(reported, MAX_PAGES)
            for index, record in enumerate(payload["data"]):
                yield parse_customer(record, f"{where} record {index}")
            page += 1


def _retry_after(header: str | None) -> float | None:
    """The seconds a 429's Retry-After asks for (None: not given, so the policy's backoff)."""
    try:
        return float(header or "")
    except ValueError:
        return None


def _reason(response: requests.Response) -> str:
    try:
        payload = response.json()
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            return payload["error"][:200]
    except ValueError:
        pass
    return response.reason or ""
