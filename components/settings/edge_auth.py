"""Settings of authentication at the ALB (`ingress.auth`): OIDC or Cognito, or a recorded opt-out.

The ALB authenticates every browser request before it reaches a pod (AWS Load Balancer
Controller `alb.ingress.kubernetes.io/auth-*` annotations); the paths that carry their own
credentials (`publicPaths`) are routed ahead of it without. See components/edge_identity.py.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import ConfigProblem, _Model, raise_all

HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d{1,5})?(/[\w.~%!$&'()*+,;=:@/-]*)?$")
# Cognito domain prefixes: lowercase letters, digits and hyphens, 1-63 characters, and not
# containing "aws", "amazon" or "cognito" (CreateUserPoolDomain).
COGNITO_DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
COGNITO_USER_POOL_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:cognito-idp:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:userpool/[\w-]+_[0-9a-zA-Z]+$")
COGNITO_CLIENT_ID = re.compile(r"^[a-z0-9]{1,128}$")
# The scopes a Cognito app client may ask for without a resource server.
COGNITO_SCOPES = ("openid", "email", "profile", "phone", "aws.cognito.signin.user.admin")
COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")

# The paths AnythingLLM serves to clients that bring their own credentials or none a browser
# session could give (AnythingLLM pg-1.16.0, server/endpoints): routed without ALB
# authentication when listed in `publicPaths`.
PUBLIC_PATHS: dict[str, list[tuple[str, str]]] = {
    # Developer and OpenAI-compatible API: `Authorization: Bearer <API key>`, 403 without
    # (server/utils/middleware/validApiKey.js).
    "api": [("/api/v1", "Prefix")],
    # The chat widget on third-party sites: cross-origin, its embed id and origin allowlist
    # (server/endpoints/embed, embedMiddleware.js), and its two static files.
    "embed": [("/embed/anythingllm-chat-widget.min.js", "Exact"),
              ("/embed/anythingllm-chat-widget.min.css", "Exact"), ("/api/embed", "Prefix")],
    # External uptime monitors (the ALB's own health checks never pass listener rules).
    "ping": [("/api/ping", "Exact")],
    # The mobile app and the browser extension: their own bearer tokens.
    "mobile": [("/api/mobile", "Prefix")],
    "browserExtension": [("/api/browser-extension", "Prefix")],
}


class OidcSettings(_Model):
    """An OpenID Connect identity provider (its client secret: the secret `oidcClientSecret`)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    user_info_endpoint: str
    client_id: str = Field(min_length=1, max_length=256)

    @field_validator("issuer", "authorization_endpoint", "token_endpoint", "user_info_endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        # ALB's authenticate-oidc action takes HTTPS endpoints only.
        if not HTTPS_URL.match(value):
            raise ConfigProblem("", f"{value!r} is not an https:// URL")
        return value


class CognitoSettings(_Model):
    """A Cognito user pool: created by the stack (`domainPrefix`), or an existing one."""

    domain_prefix: str | None = None
    user_pool_arn: str | None = None
    user_pool_client_id: str | None = None
    user_pool_domain: str | None = None
    # Users sign in with a second factor (TOTP); `optional` lets each user choose.
    mfa: Literal["on", "optional"] = "on"

    @field_validator("domain_prefix", "user_pool_domain")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and (not COGNITO_DOMAIN_PREFIX.match(value)
                                  or any(word in value for word in ("aws", "amazon", "cognito"))):
            raise ConfigProblem("", f"{value!r} is not a Cognito domain prefix (1-63 lowercase "
                                    "letters, digits and '-', without aws, amazon or cognito)")
        return value

    @field_validator("user_pool_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not COGNITO_USER_POOL_ARN.match(value):
            raise ConfigProblem("", f"{value!r} is not a Cognito user pool ARN "
                                    "(arn:aws:cognito-idp:<region>:<account>:userpool/<id>)")
        return value

    @field_validator("user_pool_client_id")
    @classmethod
    def _client(cls, value: str | None) -> str | None:
        if value is not None and not COGNITO_CLIENT_ID.match(value):
            raise ConfigProblem("", f"{value!r} is not a Cognito app client id")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CognitoSettings:
        existing = (self.user_pool_arn, self.user_pool_client_id, self.user_pool_domain)
        if self.domain_prefix is not None and any(v is not None for v in existing):
            raise ConfigProblem("domainPrefix", "creates a user pool: it cannot be combined with "
                                                "userPoolArn, userPoolClientId and userPoolDomain")
        if self.domain_prefix is None and not all(v is not None for v in existing):
            raise ConfigProblem("", "set domainPrefix (the stack creates the user pool, its app "
                                    "client and domain), or all of userPoolArn, userPoolClientId "
                                    "and userPoolDomain (an existing pool)")
        return self

    @property
    def created(self) -> bool:
        return self.domain_prefix is not None


class EdgeAuthSettings(_Model):
    """Who may reach AnythingLLM through the ALB."""

    type: Literal["oidc", "cognito", "none"]
    oidc: OidcSettings | None = None
    cognito: CognitoSettings | None = None
    # Why a stack goes without (`type: none`), e.g. an internal ALB behind a corporate proxy.
    reason: str | None = None
    scope: str = "openid email"
    session_cookie: str = "AWSELBAuthSessionCookie"
    # A working day: the ALB asks the identity provider again after 12 hours (ALB allows 7 days).
    session_timeout_seconds: int = Field(default=43200, ge=60, le=604800)
    public_paths: list[Literal["api", "embed", "ping", "mobile", "browserExtension"]] = Field(
        default_factory=lambda: ["api"])

    @field_validator("session_cookie")
    @classmethod
    def _cookie(cls, value: str) -> str:
        if not COOKIE_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not a cookie name")
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        scopes = value.split(" ")
        if "openid" not in scopes or any(not scope for scope in scopes):
            raise ConfigProblem("", f"{value!r}: scopes are separated by one space and include openid")
        return value

    @model_validator(mode="after")
    def _provider(self) -> EdgeAuthSettings:
        problems = []
        for kind in ("oidc", "cognito"):
            given = getattr(self, kind) is not None
            if kind == self.type and not given:
                problems.append(ConfigProblem(kind, f"is required with type {kind!r}"))
            elif kind != self.type and given:
                problems.append(ConfigProblem(kind, f"is set, but type is {self.type!r}"))
        if self.type == "none" and not (self.reason or "").strip():
            problems.append(ConfigProblem("reason", "is required with type 'none': say why this "
                                                    "ALB needs no authentication"))
        if self.type != "none" and self.reason is not None:
            problems.append(ConfigProblem("reason", "only goes with type 'none'"))
        if self.type == "cognito":
            unknown = [scope for scope in self.scope.split(" ") if scope not in COGNITO_SCOPES]
            if unknown:
                problems.append(ConfigProblem("scope", f"{unknown} are not Cognito scopes "
                                                       f"({', '.join(COGNITO_SCOPES)})"))
        if len(set(self.public_paths)) != len(self.public_paths):
            problems.append(ConfigProblem("publicPaths", f"{self.public_paths} lists a path set twice"))
        raise_all(problems)
        return self

    @property
    def enabled(self) -> bool:
        return self.type != "none"

    def public_routes(self) -> list[tuple[str, str]]:
        """(path, pathType) of the routes that skip ALB authentication, in `PUBLIC_PATHS` order."""
        return [route for name, routes in PUBLIC_PATHS.items() if name in self.public_paths
                for route in routes] if self.enabled else []
