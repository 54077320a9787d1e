"""Ingress: the AWS Load Balancer Controller, and the ALB annotations built from settings."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws

from . import iam
from .alb_controller_policy import controller_policy
from .cluster import Cluster
from .helm import pinned_release
from .namespaces import APP
from .node_group import system_labels
from .options import named
from .pod_identity import pod_identity_association, pod_identity_role
from .settings import AccessLogSettings, CanarySettings, IngressSettings
from .versions import AWS_LOAD_BALANCER_CONTROLLER

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
INGRESS_CLASS = "alb"
ANNOTATION_PREFIX = "alb.ingress.kubernetes.io/"
# AnythingLLM answers `{"online":true}` here without touching the database; every unknown
# path returns the SPA with 200, so this is the only meaningful health check.
HEALTH_CHECK_PATH = "/api/ping"
IAM_POLICY_FILE = Path(__file__).parent / "data" / "aws-load-balancer-controller-iam-policy.json"
# Ingress backends that name an `actions.<name>` annotation instead of a Service.
WEIGHTED_ACTION = "weighted-release"
CANARY_HEADER_ACTION = "canary-by-header"
USE_ANNOTATION = "use-annotation"
# The two Ingresses of AnythingLLM share one ALB as an IngressGroup. The controller orders the
# members' rules by `group.order`, then by name (pkg/ingress/group_loader.go), and within one
# Ingress Exact paths first, then Prefix paths longest first (model_build_listener_rules.go):
# the public routes (own credentials, no ALB authentication) come before the browser's "/".
PUBLIC_ROUTES_ORDER = -10
BROWSER_ORDER = 10


# What only one member of the group states: the ALB's own settings ("exclusive" annotations,
# docs/guide/ingress/annotations.md). A member that states them and is being deleted with
# deletion protection on stops the controller building the whole group
# (pkg/ingress/model_builder.go), so the public member leaves them to the browser member.
LOAD_BALANCER_ANNOTATIONS = frozenset(f"{ANNOTATION_PREFIX}{key}" for key in (
    "load-balancer-name", "scheme", "security-groups", "load-balancer-attributes", "wafv2-acl-arn",
    "ssl-policy", "ssl-redirect"))


def member_annotations(annotations: dict[str, str]) -> dict[str, str]:
    """`annotations` without the ALB's own settings: for the group's other member."""
    return {key: value for key, value in annotations.items() if key not in LOAD_BALANCER_ANNOTATIONS}


def group_annotations(group: str, *, order: int) -> dict[str, str]:
    """`group.name` (the ALB's name, one per stack) and this member's `group.order`."""
    return {f"{ANNOTATION_PREFIX}group.name": group, f"{ANNOTATION_PREFIX}group.order": str(order)}


def upstream_iam_policy() -> dict:
    """The upstream IAM policy of the pinned controller version (see components/data/README.md),
    which `alb_controller_policy.controller_policy` scopes to the stack."""
    return json.loads(IAM_POLICY_FILE.read_text())


def _attributes(pairs: list[tuple[str, object]]) -> str:
    # The controller's stringMap syntax: k=v pairs joined by commas, booleans lowercase.
    def text(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)
    return ",".join(f"{key}={text(value)}" for key, value in pairs)


def alb_annotations(settings: IngressSettings, *, load_balancer_name: str) -> dict[str, str]:
    """The `alb.ingress.kubernetes.io/*` annotations of the AnythingLLM Ingress.

    - `target-type: ip`: pods are targets, which sticky sessions and pod readiness gates need.
    - Target group: `lb_cookie` stickiness (embedding progress, agent attachments and their
      SSE/WebSocket live in one pod's memory), least outstanding requests (answers take
      seconds to minutes, round robin would pile streams on one pod), and the deregistration
      delay in-flight streams get when a pod leaves.
    - Who may connect: the stack's own security group (`Ingress.security_group`, added by the
      component), so `inbound-cidrs` is not used; see `Ingress` for why.
    - Load balancer: the idle timeout (>= 300 s for the agent WebSocket), dropping invalid
      header fields, deletion protection, optional access logs.
    - HTTPS with the ACM certificate and a redirect from HTTP when a certificate is set.
    The stack's tags reach the ALB through the controller's `defaultTags`.
    """
    health = settings.health_check
    target_group = _attributes([
        ("stickiness.enabled", True),
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", settings.sticky_session_seconds),
        ("load_balancing.algorithm.type", "least_outstanding_requests"),
        ("deregistration_delay.timeout_seconds", settings.deregistration_delay_seconds),
    ])
    load_balancer_pairs: list[tuple[str, object]] = [
        ("idle_timeout.timeout_seconds", settings.idle_timeout_seconds),
        ("routing.http.drop_invalid_header_fields.enabled", True),
        ("deletion_protection.enabled", settings.deletion_protection),
    ]
    if settings.access_logs is not None:
        load_balancer_pairs += [("access_logs.s3.enabled", True),
                                ("access_logs.s3.bucket", settings.access_logs.create_bucket)]
        if settings.access_logs.prefix:
            load_balancer_pairs.append(("access_logs.s3.prefix", settings.access_logs.prefix))
    annotations = {
        "load-balancer-name": load_balancer_name,
        "scheme": settings.scheme,
        "target-type": "ip",
        "healthcheck-protocol": "HTTP",
        "healthcheck-port": "traffic-port",
        "healthcheck-path": HEALTH_CHECK_PATH,
        "healthcheck-interval-seconds": str(health.interval_seconds),
        "healthcheck-timeout-seconds": str(health.timeout_seconds),
        "healthy-threshold-count": str(health.healthy_threshold),
        "unhealthy-threshold-count": str(health.unhealthy_threshold),
        "success-codes": health.success_codes,
        "target-group-attributes": target_group,
        "load-balancer-attributes": _attributes(load_balancer_pairs),
    }
    if settings.https:
        annotations.update({
            "listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
            "certificate-arn": settings.certificate_arn,
            "ssl-policy": settings.ssl_policy,
            "ssl-redirect": "443",
        })
    else:
        annotations["listen-ports"] = json.dumps([{"HTTP": 80}])
    # `wafAclArn: none` takes a web ACL off (pkg/ingress/model_build_load_balancer_addons.go,
    # wafv2ACLARNNone). Without the key the controller leaves whatever is attached alone, which
    # may be a Firewall Manager ACL that must stay.
    if settings.waf_acl_arn is not None:
        annotations["wafv2-acl-arn"] = settings.waf_acl_arn
    return {f"{ANNOTATION_PREFIX}{key}": value for key, value in annotations.items()}


def _forward(targets: list[tuple[str, int | None]], *, sticky_seconds: int | None) -> str:
    forward: dict = {"targetGroups": [
        {"serviceName": service, "servicePort": "http", **({"weight": weight} if weight is not None else {})}
        for service, weight in targets
    ]}
    if sticky_seconds is not None:
        forward["targetGroupStickinessConfig"] = {"enabled": True, "durationSeconds": sticky_seconds}
    return json.dumps({"type": "forward", "forwardConfig": forward}, separators=(",", ":"))


def target_group_resource_id(*, namespace: str, ingress: str, service: str, port: str) -> str:
    """The `ingress.k8s.aws/resource` tag the controller puts on the target group of an Ingress
    backend (`<namespace>/<ingress>-<service>:<port>`, pkg/ingress/model_build_target_group.go;
    Argo Rollouts finds canary target groups by the same tag). Target group names are generated,
    so alarms find their group by this tag."""
    return f"{namespace}/{ingress}-{service}:{port}"


def canary_routing(settings: IngressSettings, canary: CanarySettings, *, stable_service: str,
                   canary_service: str) -> tuple[dict[str, str], list[str]]:
    """The canary's listener rules: annotations, and the Ingress backends in rule order.

    - `actions.weighted-release` forwards to both target groups, `100 - weight` to stable and
      `weight` to the canary. Both always stay in the action, so weight 0 stops new sessions
      reaching the canary without deleting its target group (and weight 100 drains stable).
      Rule-level `targetGroupStickinessConfig` keeps a client on the variant it first got
      for the sticky duration; ALB refuses weighted target groups with target-group
      stickiness unless the rule has it too. Inside each variant the `lb_cookie` of the
      target group keeps the client on one pod.
    - With a header, `actions.canary-by-header` plus `conditions.canary-by-header` send every
      request carrying `name: value` to the canary. Its rule comes first: the controller gives
      rules priorities in the order of the Ingress paths.
    """
    annotations = {
        f"actions.{WEIGHTED_ACTION}": _forward(
            [(stable_service, 100 - canary.weight), (canary_service, canary.weight)],
            sticky_seconds=settings.sticky_session_seconds),
    }
    backends = [WEIGHTED_ACTION]
    if canary.header is not None:
        annotations[f"actions.{CANARY_HEADER_ACTION}"] = _forward([(canary_service, None)],
                                                                  sticky_seconds=None)
        annotations[f"conditions.{CANARY_HEADER_ACTION}"] = json.dumps(
            [{"field": "http-header", "httpHeaderConfig": {"httpHeaderName": canary.header.name,
                                                           "values": [canary.header.value]}}],
            separators=(",", ":"))
        backends.insert(0, CANARY_HEADER_ACTION)
    return {f"{ANNOTATION_PREFIX}{key}": value for key, value in annotations.items()}, backends


def controller_values(*, cluster_name: str, region: str, vpc_id: str, tags: dict[str, str]) -> dict:
    """Helm values of the controller release."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": 2,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        # Reuse the webhook certificate the chart generated on install; otherwise every
        # `pulumi up` re-renders a new CA and restarts the controller.
        "keepTLSSecret": True,
        "ingressClass": INGRESS_CLASS,
        "createIngressClassResource": True,
        # Only AnythingLLM's namespace may use the class: an Ingress elsewhere cannot join the
        # ALB's group and put rules ahead of the sign-in (IngressClassParams namespaceSelector),
        # and the old class annotation cannot get around it.
        "ingressClassParams": {"create": True, "spec": {"namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": APP.name}}}},
        "disableIngressClassAnnotation": True,
        # Only the WAFv2 add-on is used (`wafv2-acl-arn`): without these the controller would ask
        # Shield for its subscription state on every reconcile and reconcile WAF Classic too
        # (chart 3.5.0 values enableShield/enableWaf -> --enable-shield/--enable-waf).
        "enableShield": False,
        "enableWaf": False,
        # The ALB's security group and the rule that admits it to the pods are the stack's
        # (Ingress.security_group), and the controller manages no rules on the nodes' group.
        # enableBackendSecurityGroup keeps its default (true) on purpose: with `security-groups`
        # set it only makes the controller look up, and release, the shared backend group an
        # earlier setup created (pkg/networking/backend_sg_provider.go), which an existing
        # stack must delete before its VPC can go. Chart 3.5.0 passes the flags only when the
        # values are booleans (templates/deployment.yaml: --enable-backend-security-group,
        # --enable-manage-backend-security-group-rules), so the off switch is stated.
        "enableManageBackendSecurityGroupRules": False,
        # Only the Ingresses of this stack: Services of type LoadBalancer keep their default
        # (and a controller outage cannot block Service creation cluster-wide).
        "enableServiceMutatorWebhook": False,
        # Every ALB and target group it creates carries the stack's tags.
        "defaultTags": tags,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "nodeSelector": system_labels(),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "500m", "memory": "512Mi"}},
        "securityContext": {"readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "podSecurityContext": {"fsGroup": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
    }


class Ingress(pulumi.ComponentResource):
    """The AWS Load Balancer Controller and the annotations of the ALB it builds.

    Creates: a Pod Identity role trusted only by kube-system/aws-load-balancer-controller of
    this cluster, with the upstream IAM policy scoped to this cluster, VPC and ALB inline
    (alb_controller_policy.py); its Pod Identity association;
    and the controller's Helm release (chart pinned in versions.py, two replicas on the
    system nodes, webhook certificate kept across upgrades, the `alb` IngressClass, the
    stack's tags on every AWS resource it creates); with `accessLogs`, the access-log bucket
    (SSE-S3, public access blocked, owner-enforced objects, expiry after `retentionDays`, the
    ELB log-delivery policy, TLS only).

    The Ingress object itself belongs to the workload it routes to (AnythingLlm); it must
    depend on `release`, so that `pulumi destroy` deletes the Ingress, and with it the ALB and
    target groups (and any security group an earlier setup let the controller create), while
    the controller still runs. An Ingress left behind keeps the controller's finalizer and the
    VPC cannot be deleted.

    Args:
        name: logical name prefix.
        settings: the stack's `ingress` settings.
        cluster: the Cluster component (cluster name, provider, compute to wait for).
        cluster_name: physical EKS cluster name.
        load_balancer_name: the ALB's name (<= 32 characters, see naming.load_balancer_name).
        vpc_id: the VPC the controller manages load balancers in.
        region: AWS region.
        tags: common tags.
        retain: protect the access-log bucket and never force-delete its logs (prod).
        protect: `protect` the bucket; `retain` unless the stack's allowReplacement names
            `accessLogs` (README, "Replacements").
        user_pool_arn: the Cognito user pool of the edge sign-in, if any (EdgeIdentity).

    Attributes:
        release: the controller's Helm release.
        load_balancer_prerequisites: what the ALB needs first (the access-log bucket policy).
        annotations: the Ingress annotations (`alb_annotations`).
        group: the IngressGroup of the stack's Ingresses (`group_annotations`).
        ingress_class: the IngressClass name to put in `spec.ingressClassName`.
    """

    def __init__(self, name: str, settings: IngressSettings, *, cluster: Cluster, cluster_name: str,
                 load_balancer_name: str, vpc_id: pulumi.Input[str], region: str,
                 tags: dict[str, str], retain: bool = False, protect: bool | None = None,
                 user_pool_arn: pulumi.Input[str] | None = None, target_port: int,
                 authenticates: bool = False,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:ingress:Ingress", name, None, opts)
        account_id = aws.get_caller_identity_output().account_id
        partition = aws.get_partition_output().partition
        upstream = upstream_iam_policy()
        policy = pulumi.Output.all(partition, account_id, vpc_id, cluster.cluster_security_group_id,
                                   user_pool_arn).apply(
            lambda values: iam.to_json(controller_policy(
                partition=values[0], region=region, account_id=values[1],
                cluster_name=cluster_name, vpc_id=values[2], cluster_security_group_id=values[3],
                load_balancer_name=load_balancer_name, scheme=settings.scheme, upstream=upstream,
                waf_acl_arn=settings.waf_acl_arn, user_pool_arn=values[4])))
        role = pod_identity_role(
            f"{name}-controller",
            account_id=account_id,
            cluster_name=cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            partition=partition,
            inline_policy=policy,
            tags=tags,
            parent=self,
        )
        association = pod_identity_association(
            f"{name}-controller", role, cluster_name=cluster.cluster_name, tags=tags,
            opts=pulumi.ResourceOptions(parent=self))
        values = pulumi.Output.from_input(vpc_id).apply(lambda vpc: controller_values(
            cluster_name=cluster_name, region=region, vpc_id=vpc, tags=tags))
        self.release = pinned_release(
            f"{name}-controller",
            AWS_LOAD_BALANCER_CONTROLLER,
            release_name="aws-load-balancer-controller",
            namespace=NAMESPACE,
            values=values,
            # Runs on the nodes; credentials are injected at pod creation, so the association
            # must exist first.
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider,
                                        depends_on=[*cluster.system_ready, association]),
        )
        self.ingress_class = INGRESS_CLASS
        self.group = load_balancer_name
        self.security_group, admitted = self._security_groups(
            name, settings, vpc_id=vpc_id, cluster_security_group_id=cluster.cluster_security_group_id,
            target_port=target_port, authenticates=authenticates, tags=tags)
        self.annotations: dict[str, pulumi.Input[str]] = {
            **alb_annotations(settings, load_balancer_name=load_balancer_name),
            f"{ANNOTATION_PREFIX}security-groups": self.security_group.id,
        }
        # What the ALB needs before the controller can create it (the Ingress waits for these).
        self.load_balancer_prerequisites: list[pulumi.Resource] = [*admitted, *(
            self._access_log_bucket(name, settings.access_logs, region=region, retain=retain,
                                    protect=retain if protect is None else protect, tags=tags)
            if settings.access_logs is not None else [])]
        self.register_outputs({"release": self.release.name})

    def _security_groups(self, name: str, settings: IngressSettings, *, vpc_id: pulumi.Input[str],
                         cluster_security_group_id: pulumi.Input[str], target_port: int,
                         authenticates: bool, tags: dict[str, str],
                         ) -> tuple[aws.ec2.SecurityGroup, list[pulumi.Resource]]:
        """The ALB's security group, and the rules that make it work: the listener ports from
        `inboundCidrs`, out to the pods' port (and to the identity provider on 443 when the ALB
        signs users in: it calls the token and user-info endpoints itself, ELB user guide
        "Authenticate users using an Application Load Balancer"), and the EKS cluster security
        group, which every node carries, admitting the ALB on the pods' port.

        The controller could do this itself, but only with the right to add ingress rules to
        the cluster security group, and EC2 has no condition key on a rule's source or port: the
        right to admit the ALB is the right to admit anyone to every node. So the stack owns
        them, and the controller's policy grants no security-group writes (see
        alb_controller_policy.py)."""
        group = aws.ec2.SecurityGroup(
            f"{name}-alb",
            # A fixed description: changing it would replace the group under the ALB.
            description="ALB of AnythingLLM: listeners from ingress.inboundCidrs, out to the pods",
            vpc_id=vpc_id,
            tags={**tags, "Name": f"{self.group}-alb"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_group = pulumi.ResourceOptions(parent=group)
        ports = [80, 443] if settings.https else [80]
        rules: list[pulumi.Resource] = []
        for cidr in settings.inbound_cidrs:
            family = {"cidr_ipv6": cidr} if ":" in cidr else {"cidr_ipv4": cidr}
            for port in ports:
                rules.append(aws.vpc.SecurityGroupIngressRule(
                    f"{name}-alb-{port}-{cidr.replace('/', '-').replace(':', '_')}",
                    security_group_id=group.id, description=f"listener {port} from {cidr}",
                    ip_protocol="tcp", from_port=port, to_port=port, tags=tags, opts=in_group,
                    **family))
        rules.append(aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-pods", security_group_id=group.id,
            description="to the pods (target-type ip) and their health checks",
            ip_protocol="tcp", from_port=target_port, to_port=target_port,
            referenced_security_group_id=cluster_security_group_id, tags=tags, opts=in_group))
        if authenticates:
            rules.append(aws.vpc.SecurityGroupEgressRule(
                f"{name}-alb-to-identity-provider", security_group_id=group.id,
                description="HTTPS to the identity provider's token and user-info endpoints",
                ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0",
                tags=tags, opts=in_group))
        rules.append(aws.vpc.SecurityGroupIngressRule(
            f"{name}-pods-from-alb", security_group_id=cluster_security_group_id,
            description=f"ALB {self.group} to the pods' port",
            ip_protocol="tcp", from_port=target_port, to_port=target_port,
            referenced_security_group_id=group.id, tags=tags,
            opts=pulumi.ResourceOptions(parent=self)))
        return group, rules

    def _access_log_bucket(self, name: str, settings: AccessLogSettings, *, region: str,
                           retain: bool, protect: bool, tags: dict[str, str]) -> list[pulumi.Resource]:
        """The access-log bucket: SSE-S3 (the only encryption ALB log delivery supports, ELB
        user guide "Enable access logs"), public access blocked, objects owned by the bucket
        owner, logs expired after `retentionDays`, and the policy ELB delivery needs."""
        bucket = aws.s3.Bucket(f"{name}-access-logs", bucket=settings.create_bucket,
                               force_destroy=not retain, tags=tags,
                               opts=named(parent=self, protect=protect))
        # Children of the component, not of the bucket: they would inherit its `protect`, and
        # its settings must stay changeable.
        child = pulumi.ResourceOptions(parent=self)
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-access-logs", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-access-logs", bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-access-logs", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child)
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs", bucket=bucket.id,
            rules=[{"id": "expire-access-logs", "status": "Enabled", "filter": {},
                    "expiration": {"days": settings.retention_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1}}],
            opts=child)
        identity = aws.get_caller_identity_output()
        partition = aws.get_partition_output().partition
        policy = aws.s3.BucketPolicy(
            f"{name}-access-logs", bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, identity.account_id, partition).apply(
                lambda values: iam.to_json(iam.alb_access_log_bucket_policy(
                    bucket_arn=values[0], prefix=settings.prefix, account_id=values[1],
                    region=region, partition=values[2]))),
            # A policy is refused while the public access block is being changed.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]))
        return [policy, ownership, encryption, lifecycle]
