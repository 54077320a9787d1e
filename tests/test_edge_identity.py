"""Identity at the edge: OIDC or Cognito at the ALB, public routes ahead of it, prod closed.

Expectations come from the AWS Load Balancer Controller at v3.5.0 (the pinned chart 3.5.0):
pkg/ingress/auth_config_builder.go (annotations and their JSON), model_build_actions.go (the
authenticate action on HTTPS listeners), group_loader.go sortGroupMembers (members ordered by
group.order, then namespace/name) and model_build_listener_rules.go (priorities in that order;
inside an Ingress Exact paths first, then Prefix paths longest first), and from AnythingLLM
pg-1.16.0 for which paths carry their own credentials (components/settings/edge_auth.py).
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from components.ingress import LOAD_BALANCER_ANNOTATIONS
from tests.conftest import (
    CERTIFICATE_ARN,
    ROOT,
    base_config,
    expect_settings_error,
    settings_from,
)
from tools.engine import Plan, read_stack_config, run_stack

INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
PREFIX = "alb.ingress.kubernetes.io/"
OIDC = {"issuer": "https://login.example.com", "authorizationEndpoint": "https://login.example.com/authorize",
        "tokenEndpoint": "https://login.example.com/token",
        "userInfoEndpoint": "https://login.example.com/userinfo", "clientId": "anythingllm"}


def listener_rules(plan: Plan) -> list[tuple[str, str, str, str]]:
    """(ingress, path, pathType, auth-type) of the HTTPS listener's rules in priority order, as
    the controller builds them: members by (group.order, namespace/name), each member's paths
    Exact first, then Prefix longest first (a stable sort), priorities counting from 1."""
    members = sorted(plan.of_type(INGRESS), key=lambda i: (
        int(i.inputs["metadata"]["annotations"].get(PREFIX + "group.order", "0")),
        f"{i.inputs['metadata']['namespace']}/{i.inputs['metadata']['name']}"))
    rules = []
    for member in members:
        paths = member.inputs["spec"]["rules"][0]["http"]["paths"]
        exact = [p for p in paths if p["pathType"] == "Exact"]
        prefix = sorted((p for p in paths if p["pathType"] == "Prefix"), key=lambda p: -len(p["path"]))
        auth = member.inputs["metadata"]["annotations"].get(PREFIX + "auth-type", "none")
        rules += [(member.inputs["metadata"]["name"], p["path"], p["pathType"], auth) for p in exact + prefix]
    return rules


def _plan(auth: dict | None, *, stack: str = "prod", canary: dict | None = None,
          secret: bool = False) -> Plan:
    config = copy.deepcopy(read_stack_config(ROOT, stack))
    if auth is None:
        config["anythingllm:ingress"].pop("auth", None)
    else:
        config["anythingllm:ingress"]["auth"] = auth
    if canary is not None:
        config["anythingllm:app"]["canary"] = canary
    if secret:
        config["anythingllm:oidcClientSecret"] = {"secure": "v1:ciphertext"}
    return run_stack(ROOT, stack, config=config)


# ---------------------------------------------------------------------------------- settings

def test_prod_requires_edge_authentication_or_a_reason():
    config = base_config("prod")
    config["ingress"].pop("auth")
    expect_settings_error(config, "ingress.auth", "is required in prod")
    config["ingress"]["auth"] = {"type": "none"}
    expect_settings_error(config, "ingress.auth.reason", "is required with type 'none'")
    config["ingress"]["auth"] = {"type": "none", "reason": "internal ALB behind the corporate SSO proxy"}
    assert settings_from(config).ingress.auth.public_routes() == []


@pytest.mark.parametrize("auth, key, reason", [
    ({"type": "oidc"}, "ingress.auth.oidc", "is required with type 'oidc'"),
    ({"type": "cognito"}, "ingress.auth.cognito", "is required with type 'cognito'"),
    ({"type": "cognito", "cognito": {"domainPrefix": "chat"}, "oidc": OIDC}, "ingress.auth.oidc",
     "is set, but type is 'cognito'"),
    ({"type": "oidc", "oidc": {**OIDC, "issuer": "http://login.example.com"}}, "ingress.auth.oidc.issuer",
     "is not an https:// URL"),
    ({"type": "cognito", "cognito": {"domainPrefix": "my-cognito-login"}},
     "ingress.auth.cognito.domainPrefix", "without aws, amazon or cognito"),
    ({"type": "cognito", "cognito": {"userPoolArn": "arn:aws:cognito-idp:eu-west-1:111122223333:userpool/x"}},
     "ingress.auth.cognito.userPoolArn", "is not a Cognito user pool ARN"),
    ({"type": "cognito", "cognito": {"domainPrefix": "chat", "userPoolDomain": "chat"}},
     "ingress.auth.cognito.domainPrefix", "cannot be combined"),
    ({"type": "cognito", "cognito": {"domainPrefix": "chat"}, "scope": "openid groups"},
     "ingress.auth.scope", "are not Cognito scopes"),
    ({"type": "cognito", "cognito": {"domainPrefix": "chat"}, "scope": "email"},
     "ingress.auth.scope", "include openid"),
    ({"type": "cognito", "cognito": {"domainPrefix": "chat"}, "reason": "x"},
     "ingress.auth.reason", "only goes with type 'none'"),
    ({"type": "cognito", "cognito": {"domainPrefix": "chat"}, "publicPaths": ["admin"]},
     "ingress.auth.publicPaths[0]", "Input should be"),
    ({"type": "cognito", "cognito": {"domainPrefix": "chat"}, "sessionTimeoutSeconds": 604801},
     "ingress.auth.sessionTimeoutSeconds", "less than or equal to 604800"),
])
def test_bad_auth_settings_name_the_key(auth, key, reason):
    config = base_config("prod")
    config["ingress"]["auth"] = auth
    config["ingress"]["dns"] = {"hostedZoneId": "Z0123456789ABC", "name": "chat.example.com"}
    expect_settings_error(config, key, reason)


def test_authentication_needs_https_and_a_created_pool_needs_the_dns_name():
    config = base_config()  # dev: plain HTTP
    config["ingress"]["auth"] = {"type": "cognito", "cognito": {"domainPrefix": "chat-login"}}
    expect_settings_error(config, "ingress.auth", "the ALB authenticates on HTTPS listeners only")
    expect_settings_error(config, "ingress.auth.cognito.domainPrefix", "needs ingress.dns")
    config["ingress"]["certificateArn"] = CERTIFICATE_ARN
    config["ingress"]["dns"] = {"hostedZoneId": "Z0123456789ABC", "name": "chat.example.com"}
    assert settings_from(config).ingress.auth.cognito.created


def test_the_oidc_client_secret_is_a_secret_and_only_with_oidc():
    config = base_config("prod")
    config["ingress"]["auth"] = {"type": "oidc", "oidc": OIDC}
    expect_settings_error(config, "oidcClientSecret", "is required with ingress.auth type oidc")
    config["oidcClientSecret"] = "s3cr3t"
    expect_settings_error(config, "oidcClientSecret", "must be a secret")
    config["ingress"]["auth"] = {"type": "none", "reason": "behind the proxy"}
    expect_settings_error(config, "oidcClientSecret", "must be a secret")


# ------------------------------------------------------------------------------ the program

@pytest.fixture(scope="module")
def prod_plan(stack_plans) -> Plan:
    return stack_plans["prod"]


def test_prod_authenticates_every_browser_path_with_its_cognito_pool(prod_plan):
    pool = prod_plan.one("aws:cognito/userPool:UserPool")
    assert pool.protect and pool.inputs["deletionProtection"] == "ACTIVE"
    assert pool.inputs["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}
    assert pool.inputs["mfaConfiguration"] == "ON"
    assert pool.inputs["passwordPolicy"]["minimumLength"] == 12
    client = prod_plan.one("aws:cognito/userPoolClient:UserPoolClient")
    assert client.inputs["generateSecret"] is True
    assert client.inputs["allowedOauthFlows"] == ["code"]
    assert client.inputs["callbackUrls"] == ["https://chat.example.com/oauth2/idpresponse"]
    assert client.inputs["allowedOauthScopes"] == ["openid", "email"]
    domain = prod_plan.one("aws:cognito/userPoolDomain:UserPoolDomain")
    assert domain.inputs["domain"] == "example-chat-login"

    browser = prod_plan.one(INGRESS, "anythingllm-ingress")
    annotations = browser.inputs["metadata"]["annotations"]
    auth = {key[len(PREFIX):]: value for key, value in annotations.items()
            if key.startswith(PREFIX + "auth-")}
    idp = json.loads(auth.pop("auth-idp-cognito"))
    assert auth == {"auth-type": "cognito", "auth-scope": "openid email",
                    "auth-session-cookie": "AWSELBAuthSessionCookie", "auth-session-timeout": "43200",
                    "auth-on-unauthenticated-request": "authenticate"}
    # The pool's ARN and the client's id as created (the offline cloud's, of their real form);
    # the domain is the prefix, not a URL.
    assert re.fullmatch(r"arn:aws:cognito-idp:us-east-1:\d{12}:userpool/us-east-1_\w{9}", idp["userPoolARN"])
    assert re.fullmatch(r"[a-z0-9]{26}", idp["userPoolClientID"])
    assert idp["userPoolDomain"] == "example-chat-login"
    # The authenticate action exists on HTTPS listeners only: port 80 must only redirect.
    assert annotations[PREFIX + "ssl-redirect"] == "443"
    assert prod_plan.waits_for(browser, client) and prod_plan.waits_for(browser, domain)


def test_public_routes_come_first_and_browsers_authenticate_after(prod_plan):
    assert listener_rules(prod_plan) == [
        ("anythingllm-public", "/api/v1", "Prefix", "none"),
        ("anythingllm", "/", "Prefix", "cognito"),
    ]
    public = prod_plan.one(INGRESS, "anythingllm-public-ingress")
    browser = prod_plan.one(INGRESS, "anythingllm-ingress")
    public_annotations = dict(public.inputs["metadata"]["annotations"])
    browser_annotations = dict(browser.inputs["metadata"]["annotations"])
    # One ALB: the same group; the same target-group, health-check, listener and canary
    # annotations; the ALB's own settings on the browser member only (a member being deleted
    # that states deletion protection would stop the controller building the group:
    # pkg/ingress/model_builder.go).
    assert public_annotations.pop(PREFIX + "group.order") == "-10"
    assert browser_annotations.pop(PREFIX + "group.order") == "10"
    assert public_annotations.pop(PREFIX + "auth-type") == "none"
    assert not set(public_annotations) & LOAD_BALANCER_ANNOTATIONS
    assert LOAD_BALANCER_ANNOTATIONS - {PREFIX + "wafv2-acl-arn"} <= set(browser_annotations)
    browser_only = ({k for k in browser_annotations if k.startswith(PREFIX + "auth-")}
                    | LOAD_BALANCER_ANNOTATIONS)
    assert {k: v for k, v in browser_annotations.items() if k not in browser_only} == public_annotations
    assert public_annotations[PREFIX + "group.name"] == "anythingllm-prod"
    assert public_annotations[PREFIX + "certificate-arn"] == browser_annotations[
        PREFIX + "certificate-arn"]


def test_every_public_path_set_and_the_canary_on_both(prod_plan):
    plan = _plan({"type": "cognito", "cognito": {"domainPrefix": "example-chat-login"},
                  "publicPaths": ["api", "embed", "ping"]},
                 canary={"imageTag": "pg-1.16.0", "weight": 10, "isolation": "shared",
                         "header": {"name": "X-Canary", "value": "always"}})
    rules = listener_rules(plan)
    # Exact paths first, then Prefix longest first, each with the header rule before the
    # weighted one (a stable sort keeps their order).
    assert [(name, path) for name, path, _, _ in rules] == [
        ("anythingllm-public", "/embed/anythingllm-chat-widget.min.js"),
        ("anythingllm-public", "/embed/anythingllm-chat-widget.min.js"),
        ("anythingllm-public", "/embed/anythingllm-chat-widget.min.css"),
        ("anythingllm-public", "/embed/anythingllm-chat-widget.min.css"),
        ("anythingllm-public", "/api/ping"), ("anythingllm-public", "/api/ping"),
        ("anythingllm-public", "/api/embed"), ("anythingllm-public", "/api/embed"),
        ("anythingllm-public", "/api/v1"), ("anythingllm-public", "/api/v1"),
        ("anythingllm", "/"), ("anythingllm", "/"),
    ]
    public = plan.one(INGRESS, "anythingllm-public-ingress")
    backends = [p["backend"]["service"]["name"] for p in public.inputs["spec"]["rules"][0]["http"]["paths"]]
    assert backends == ["canary-by-header", "weighted-release"] * 5
    assert PREFIX + "actions.weighted-release" in public.inputs["metadata"]["annotations"]


def test_oidc_gives_the_controller_one_secret_to_read():
    plan = _plan({"type": "oidc", "oidc": OIDC}, secret=True)
    secret = plan.one("kubernetes:core/v1:Secret", "edge-identity-oidc-client")
    assert secret.inputs["metadata"] == {"name": "alb-oidc-client", "namespace": "anythingllm"}
    assert set(secret.raw_inputs["stringData"]) == {"clientID", "clientSecret"}
    assert secret.raw_inputs["stringData"]["clientID"] == "anythingllm"
    assert any(path.startswith("stringData") for path in secret.secret_paths)  # never in the plan
    role = plan.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "edge-identity-oidc-client-reader")
    assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                     "resourceNames": ["alb-oidc-client"], "verbs": ["get", "list", "watch"]}]
    binding = plan.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                       "edge-identity-oidc-client-reader")
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "aws-load-balancer-controller",
                                           "namespace": "kube-system"}]
    browser = plan.one(INGRESS, "anythingllm-ingress")
    annotations = browser.inputs["metadata"]["annotations"]
    assert annotations[PREFIX + "auth-type"] == "oidc"
    assert json.loads(annotations[PREFIX + "auth-idp-oidc"]) == {
        "issuer": OIDC["issuer"], "authorizationEndpoint": OIDC["authorizationEndpoint"],
        "tokenEndpoint": OIDC["tokenEndpoint"], "userInfoEndpoint": OIDC["userInfoEndpoint"],
        "secretName": "alb-oidc-client"}
    assert plan.waits_for(browser, secret) and plan.waits_for(browser, binding)
    assert plan.of_type("aws:cognito/userPool:UserPool") == []


def test_an_existing_pool_creates_nothing_and_an_opt_out_is_one_ingress():
    existing = {"type": "cognito", "cognito": {
        "userPoolArn": "arn:aws:cognito-idp:us-east-1:111122223333:userpool/us-east-1_AbC123",
        "userPoolClientId": "1example23456789abcdefghij", "userPoolDomain": "corp-login"}}
    plan = _plan(existing)
    assert plan.of_type("aws:cognito/userPool:UserPool") == []
    idp = json.loads(plan.one(INGRESS, "anythingllm-ingress").inputs["metadata"]["annotations"][
        PREFIX + "auth-idp-cognito"])
    assert idp == {"userPoolARN": existing["cognito"]["userPoolArn"],
                   "userPoolClientID": "1example23456789abcdefghij", "userPoolDomain": "corp-login"}
    opted_out = _plan({"type": "none", "reason": "internal ALB behind the corporate SSO proxy"})
    assert listener_rules(opted_out) == [("anythingllm", "/", "Prefix", "none")]


def test_only_anythingllms_namespace_may_use_the_alb_class(prod_plan):
    """An Ingress elsewhere could join the group and put rules ahead of the sign-in: the
    IngressClassParams admit one namespace, and the class annotation cannot get around it
    (chart 3.5.0 values ingressClassParams.spec, disableIngressClassAnnotation)."""
    release = next(r for r in prod_plan.of_type("kubernetes:helm.sh/v3:Release")
                   if r.inputs["name"] == "aws-load-balancer-controller")
    values = release.raw_inputs["values"]
    assert values["ingressClassParams"] == {"create": True, "spec": {"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": "anythingllm"}}}}
    assert values["disableIngressClassAnnotation"] is True
    # WAFv2 only (the web ACL annotation); no Shield or WAF Classic calls.
    assert (values["enableShield"], values["enableWaf"]) == (False, False) and "enableWafv2" not in values
    assert {i.inputs["metadata"]["namespace"] for i in prod_plan.of_type(INGRESS)} == {"anythingllm"}
