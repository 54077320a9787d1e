"""EdgeIdentity: who may reach AnythingLLM through the ALB (OIDC or Cognito at the load balancer).

The AWS Load Balancer Controller (v3.5.0) turns `alb.ingress.kubernetes.io/auth-*` annotations
into an `authenticate-oidc` or `authenticate-cognito` action ahead of the forward on HTTPS
listeners (pkg/ingress/auth_config_builder.go, model_build_actions.go): every request without a
valid session cookie is sent to the identity provider before it reaches a pod, and WebSocket and
streamed answers ride on the same cookie (AnythingLLM's browser app calls its API on the same
origin). Paths that carry their own credentials (AnythingLLM API keys, the embed widget) are
routed ahead of it by a second Ingress of the same IngressGroup (see anythingllm.py).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .ingress import ANNOTATION_PREFIX, SERVICE_ACCOUNT
from .ingress import NAMESPACE as CONTROLLER_NAMESPACE
from .options import named
from .settings.edge_auth import EdgeAuthSettings

OIDC_SECRET = "alb-oidc-client"  # keys `clientID` and `clientSecret` (auth_config_builder.go)
OIDC_SECRET_READER = "aws-load-balancer-controller-oidc"  # the Role (and binding) that reads it


def auth_annotations(auth: EdgeAuthSettings, *,
                     idp: pulumi.Input[str] | None) -> dict[str, pulumi.Input[str]]:
    """The `auth-*` annotations of the browser Ingress; `idp` is the `auth-idp-oidc` or
    `auth-idp-cognito` JSON (None with type none)."""
    if not auth.enabled:
        return {f"{ANNOTATION_PREFIX}auth-type": "none"}
    annotations: dict[str, pulumi.Input[str]] = {
        "auth-type": auth.type,
        f"auth-idp-{auth.type}": idp,
        "auth-scope": auth.scope,
        "auth-session-cookie": auth.session_cookie,
        "auth-session-timeout": str(auth.session_timeout_seconds),
        # Browsers are sent to sign in; the paths that answer API clients are public routes.
        "auth-on-unauthenticated-request": "authenticate",
    }
    return {f"{ANNOTATION_PREFIX}{key}": value for key, value in annotations.items()}


def oidc_idp(auth: EdgeAuthSettings) -> str:
    oidc = auth.oidc
    assert oidc is not None
    return json.dumps({"issuer": oidc.issuer, "authorizationEndpoint": oidc.authorization_endpoint,
                       "tokenEndpoint": oidc.token_endpoint, "userInfoEndpoint": oidc.user_info_endpoint,
                       "secretName": OIDC_SECRET}, separators=(",", ":"))


def cognito_idp(*, user_pool_arn: str, client_id: str, domain_prefix: str) -> str:
    # userPoolDomain is the prefix, not the URL (auth_config_builder.go AuthIDPConfigCognito).
    return json.dumps({"userPoolARN": user_pool_arn, "userPoolClientID": client_id,
                       "userPoolDomain": domain_prefix}, separators=(",", ":"))


def callback_url(host: str) -> str:
    """Where the identity provider returns to: the ALB's fixed path on the name users browse."""
    return f"https://{host}/oauth2/idpresponse"


class EdgeIdentity(pulumi.ComponentResource):
    """Authentication at the ALB for the AnythingLLM Ingress.

    Creates, by `ingress.auth.type`:
      - cognito with `domainPrefix`: a user pool (administrators create users, no self sign-up;
        TOTP second factor by `mfa`; 12+ character passwords; deletion protection in prod), its
        app client for the ALB (a client secret, authorization-code flow, the callback
        `https://<ingress.dns.name>/oauth2/idpresponse`, no user-existence errors) and its
        hosted sign-in domain; with an existing pool, nothing.
      - oidc: the Secret `alb-oidc-client` (clientID, clientSecret) in AnythingLLM's namespace,
        and a Role and RoleBinding that let the controller read that one Secret (chart 3.5.0
        grants no Secret access by default: clusterSecretsPermissions.allowAllSecrets false).
      - none: nothing (the stack file records why).

    Args:
        name: logical name prefix.
        auth: the `ingress.auth` settings.
        cluster_name: the stack's cluster name (names the user pool: one per stack).
        host: `ingress.dns.name` (the callback's host), or None.
        namespace: AnythingLLM's namespace (the Ingress's; the OIDC Secret must be there).
        provider: the cluster's Kubernetes provider.
        oidc_client_secret: the secret `oidcClientSecret` (type oidc).
        retain: protect the user pool (prod).
        protect: `protect` the user pool and turn on its deletion protection; `retain` unless the
            stack's allowReplacement names `edgeIdentity` (README, "Replacements").
        tags: common tags.

    Attributes:
        annotations: the `auth-*` annotations of the browser Ingress.
        prerequisites: what the Ingress must wait for (the client, domain, Secret and its Role).
        user_pool_id: the created user pool's id (Output), else None.
        user_pool_arn: the user pool's ARN (created or existing) with Cognito, else None.
    """

    def __init__(self, name: str, auth: EdgeAuthSettings, *, cluster_name: str, host: str | None,
                 namespace: pulumi.Input[str], provider: k8s.Provider,
                 oidc_client_secret: pulumi.Output[str] | None, retain: bool,
                 tags: dict[str, str], protect: bool | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:ingress:EdgeIdentity", name, None, opts)
        self.prerequisites: list[pulumi.Resource] = []
        self.user_pool_id: pulumi.Output[str] | None = None
        self.user_pool_arn: pulumi.Input[str] | None = None
        idp: pulumi.Input[str] | None = None
        if auth.type == "cognito":
            idp = self._cognito(name, auth, pool_name=f"{cluster_name}-users", host=host,
                                protect=retain if protect is None else protect, tags=tags)
        elif auth.type == "oidc":
            assert oidc_client_secret is not None
            self._oidc_secret(name, auth, namespace=namespace, provider=provider,
                              client_secret=oidc_client_secret)
            idp = oidc_idp(auth)
        self.annotations = auth_annotations(auth, idp=idp)
        self.register_outputs({})

    def _cognito(self, name: str, auth: EdgeAuthSettings, *, pool_name: str, host: str | None,
                 protect: bool, tags: dict[str, str]) -> pulumi.Input[str]:
        cognito = auth.cognito
        assert cognito is not None
        if not cognito.created:
            self.user_pool_arn = cognito.user_pool_arn
            return cognito_idp(user_pool_arn=cognito.user_pool_arn, client_id=cognito.user_pool_client_id,
                               domain_prefix=cognito.user_pool_domain)
        assert host is not None and cognito.domain_prefix is not None
        pool = aws.cognito.UserPool(
            f"{name}-users",
            name=pool_name,
            # Users are invited by an administrator; nobody signs themselves up.
            admin_create_user_config={"allow_admin_create_user_only": True},
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            account_recovery_setting={"recovery_mechanisms": [{"name": "verified_email", "priority": 1}]},
            password_policy={"minimum_length": 12, "require_lowercase": True, "require_uppercase": True,
                             "require_numbers": True, "require_symbols": True,
                             "temporary_password_validity_days": 3},
            mfa_configuration="ON" if cognito.mfa == "on" else "OPTIONAL",
            software_token_mfa_configuration={"enabled": True},
            # Cognito refuses to delete a pool with deletion protection, which a reviewed
            # replacement does first: both follow `protect`.
            deletion_protection="ACTIVE" if protect else "INACTIVE",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        client = aws.cognito.UserPoolClient(
            f"{name}-alb",
            name=f"{pool_name}-alb",
            user_pool_id=pool.id,
            # The ALB authenticates as a confidential client (authorization-code flow).
            generate_secret=True,
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],
            allowed_oauth_scopes=auth.scope.split(" "),
            callback_urls=[callback_url(host)],
            supported_identity_providers=["COGNITO"],
            prevent_user_existence_errors="ENABLED",
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        domain = aws.cognito.UserPoolDomain(
            f"{name}-login", domain=cognito.domain_prefix, user_pool_id=pool.id,
            opts=named(parent=self))
        self.prerequisites += [client, domain]
        self.user_pool_id = pool.id
        self.user_pool_arn = pool.arn
        return pulumi.Output.all(pool.arn, client.id).apply(lambda values: cognito_idp(
            user_pool_arn=values[0], client_id=values[1], domain_prefix=cognito.domain_prefix))

    def _oidc_secret(self, name: str, auth: EdgeAuthSettings, *, namespace: pulumi.Input[str],
                     provider: k8s.Provider, client_secret: pulumi.Output[str]) -> None:
        assert auth.oidc is not None
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        secret = k8s.core.v1.Secret(
            f"{name}-oidc-client",
            metadata={"name": OIDC_SECRET, "namespace": namespace},
            type="Opaque",
            string_data={"clientID": auth.oidc.client_id,
                         "clientSecret": pulumi.Output.secret(client_secret)},
            opts=in_cluster,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-oidc-client-reader",
            metadata={"name": OIDC_SECRET_READER, "namespace": namespace},
            # The controller gets the Secret, then watches it (one object: resourceNames).
            rules=[{"api_groups": [""], "resources": ["secrets"], "resource_names": [OIDC_SECRET],
                    "verbs": ["get", "list", "watch"]}],
            opts=in_cluster,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-oidc-client-reader",
            metadata={"name": OIDC_SECRET_READER, "namespace": namespace},
            role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role",
                      "name": OIDC_SECRET_READER},
            subjects=[{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                       "namespace": CONTROLLER_NAMESPACE}],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[role]),
        )
        self.prerequisites += [secret, binding]
