"""The one place a Twilio REST client is built; `TWILIO_API_BASE_URL` redirects it to a local fake."""

from __future__ import annotations

import re
from collections.abc import Mapping

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

# Every Twilio product host: api.twilio.com, messaging.twilio.com, api.dublin.ie1.twilio.com, ...
_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")
REST_TIMEOUT_SECONDS = 10


class RedirectingHttpClient(TwilioHttpClient):
    """Sends every request to `base_url` instead of Twilio, keeping the path (e.g. /2010-04-01/...)."""

    def __init__(self, base_url: str, timeout: float = REST_TIMEOUT_SECONDS):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        return super().request(method, api_url({"TWILIO_API_BASE_URL": self.base_url}, url), *args, **kwargs)


def api_url(config: Mapping, url: str) -> str:
    """A Twilio API URL (e.g. a recording's) as this deployment must fetch it: via TWILIO_API_BASE_URL if set."""
    base = (config.get("TWILIO_API_BASE_URL") or "").strip().rstrip("/")
    return _TWILIO_HOST.sub(base, url) if base else url


def rest_client(config: Mapping) -> Client:
    """A REST client for the configured account, honouring TWILIO_API_BASE_URL when it is set."""
    base_url = (config.get("TWILIO_API_BASE_URL") or "").strip()
    http_client = RedirectingHttpClient(base_url) if base_url else TwilioHttpClient(timeout=REST_TIMEOUT_SECONDS)
    return Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], http_client=http_client)
