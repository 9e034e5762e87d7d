"""Graph client settings: which cloud, which credentials, which limits.

A frozen dataclass so one validated value can be shared by threads and passed around; `from_env` reads
the `TENANTATLAS_*` variables documented in docs/graph-client.md. The client secret is excluded from the
repr, and no method of this module ever formats it into text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ErrorCode
from .errors import GraphError


@dataclass(frozen=True)
class Cloud:
    """A national cloud: where tokens come from and where Graph lives (tokens do not cross clouds)."""

    name: str
    authority_host: str
    graph_url: str


CLOUDS: dict[str, Cloud] = {
    c.name: c
    for c in (
        Cloud("global", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
        Cloud("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        Cloud("usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        Cloud("china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
    )
}

# Authority hosts MSAL may validate through Microsoft's instance discovery. For any other host
# (the emulator, a test double, an on-premises proxy) discovery would call login.microsoftonline.com
# about a host it cannot know, so it is turned off.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login-us.microsoftonline.com",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)

ENV_PREFIX = "TENANTATLAS_"
_NUMERIC_ENV: dict[str, tuple[str, type]] = {
    "connect_timeout": ("GRAPH_CONNECT_TIMEOUT", float),
    "read_timeout": ("GRAPH_READ_TIMEOUT", float),
    "max_attempts": ("GRAPH_MAX_ATTEMPTS", int),
    "retry_budget_s": ("GRAPH_RETRY_BUDGET_S", float),
    "backoff_base_s": ("GRAPH_BACKOFF_BASE_S", float),
    "backoff_cap_s": ("GRAPH_BACKOFF_CAP_S", float),
    "per_tenant_concurrency": ("GRAPH_PER_TENANT_CONCURRENCY", int),
    "global_concurrency": ("GLOBAL_CONCURRENCY", int),
}


def _config_error(message: str) -> GraphError:
    return GraphError(ErrorCode.CONFIG_INVALID, message)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class GraphSettings:
    """Everything the Graph client needs; validated on construction so mistakes surface at start-up."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: Path | None = None
    certificate_thumbprint: str | None = None
    cloud: str = "global"
    authority_host: str = ""  # "" = the cloud's
    graph_url: str = ""  # "" = the cloud's
    ca_bundle: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 8
    retry_budget_s: float = 120.0  # total seconds of waiting (sleeps) allowed per request
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    per_tenant_concurrency: int = 4
    # Graph requests in flight at once in this process, all tenants together (a shared client's bound).
    global_concurrency: int = 16

    def __post_init__(self) -> None:
        if self.cloud not in CLOUDS:
            raise _config_error(f"unknown cloud {self.cloud!r}; known clouds: {', '.join(CLOUDS)}")
        cloud = CLOUDS[self.cloud]
        object.__setattr__(self, "authority_host", (self.authority_host or cloud.authority_host).rstrip("/"))
        object.__setattr__(self, "graph_url", (self.graph_url or cloud.graph_url).rstrip("/"))
        for name in ("authority_host", "graph_url"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme != "https" or not parts.hostname:
                raise _config_error(f"{name} must be an https URL with a host (MSAL requires https)")
        for name in ("certificate_path", "ca_bundle"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if not self.client_id:
            raise GraphError(
                ErrorCode.AUTH_MISSING_CREDENTIALS,
                "no client id: set TENANTATLAS_CLIENT_ID to the app registration's application id",
            )
        if not self.client_secret and self.certificate_path is None:
            raise GraphError(
                ErrorCode.AUTH_MISSING_CREDENTIALS,
                "no client credential: set TENANTATLAS_CLIENT_SECRET or TENANTATLAS_CLIENT_CERTIFICATE "
                "(a PEM file with the private key and the certificate)",
            )
        if self.client_secret and self.certificate_path is not None:
            raise _config_error(
                "both a client secret and a client certificate are configured; set only one so it is "
                "clear which credential is in use"
            )
        for name in ("certificate_path", "ca_bundle"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise _config_error(f"{name} {str(path)!r} is not a readable file")
        positive = (
            "connect_timeout",
            "read_timeout",
            "max_attempts",
            "per_tenant_concurrency",
            "global_concurrency",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise _config_error(f"{name} must be positive")
        for name in ("retry_budget_s", "backoff_base_s", "backoff_cap_s"):
            if not getattr(self, name) >= 0:
                raise _config_error(f"{name} must not be negative")

    @property
    def scope(self) -> str:
        """The client-credentials scope: the Graph host's own `.default` (tokens do not cross clouds)."""
        return f"{_origin(self.graph_url)}/.default"

    @property
    def instance_discovery(self) -> bool:
        """Whether MSAL may run Microsoft's instance discovery (only for Microsoft's own hosts)."""
        return (urlsplit(self.authority_host).hostname or "").lower() in MICROSOFT_AUTHORITY_HOSTS

    def authority(self, tenant_id: str) -> str:
        """The tenant's authority URL, `{authority_host}/{tenant_id}`."""
        return f"{self.authority_host}/{tenant_id}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GraphSettings:
        """Settings from `TENANTATLAS_*` variables (see docs/graph-client.md); `environ` for tests."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name, "").strip()
            return value or None

        numbers: dict[str, float | int] = {}
        for attr, (name, kind) in _NUMERIC_ENV.items():
            raw = get(name)
            if raw is not None:
                try:
                    numbers[attr] = kind(raw)
                except ValueError:
                    raise _config_error(f"{ENV_PREFIX}{name} must be a number, got {raw!r}") from None
        certificate = get("CLIENT_CERTIFICATE")
        ca_bundle = get("CA_BUNDLE")
        return cls(
            client_id=get("CLIENT_ID") or "",
            client_secret=get("CLIENT_SECRET"),
            certificate_path=Path(certificate) if certificate else None,
            certificate_thumbprint=get("CLIENT_CERTIFICATE_THUMBPRINT"),
            cloud=(get("CLOUD") or "global").lower(),
            authority_host=get("AUTHORITY_HOST") or "",
            graph_url=get("GRAPH_URL") or "",
            ca_bundle=Path(ca_bundle) if ca_bundle else None,
            **numbers,  # type: ignore[arg-type]
        )
