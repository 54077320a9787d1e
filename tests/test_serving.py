"""The request path in every stack: ALB Ingress -> AnythingLLM -> LiteLLM -> vLLM."""

from __future__ import annotations

import hashlib
import json

import pytest

from components import cold_start, iam
from components.anythingllm import pre_stop_seconds, termination_grace_seconds
from components.anythingllm_admin import admin_script
from components.ingress import IAM_POLICY_FILE, alb_annotations
from components.model_serving import termination_grace_seconds as model_grace_seconds
from components.versions import ANYTHINGLLM_IMAGE, LITELLM_IMAGE, VLLM_IMAGE
from tests.conftest import ROOT, STACKS, base_config, helm_release, settings_from, stack_settings
from tools.engine import Plan, Registration, run_stack

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RELEASE = "kubernetes:helm.sh/v3:Release"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
PREFIX = "alb.ingress.kubernetes.io/"


def _k8s(plan: Plan, type_token: str, name: str, namespace: str | None = None) -> Registration:
    found = [r for r in plan.of_type(type_token) if r.inputs["metadata"]["name"] == name
             and (namespace is None or r.inputs["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, (type_token, name, [r.name for r in found])
    return found[0]


def _controller(plan: Plan) -> Registration:
    return helm_release(plan, "aws-load-balancer-controller")


def _pod(deployment: Registration) -> dict:
    return deployment.raw_inputs["spec"]["template"]["spec"]


def _ref(secret: str, key: str) -> dict:
    return {"secretKeyRef": {"name": secret, "key": key}}


def _env(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --------------------------------------------------------------------------- ALB annotations


def test_annotations_exact_strings_without_certificate():
    settings = settings_from(base_config("dev"))
    assert alb_annotations(settings.ingress, load_balancer_name="anythingllm-test") == {
        PREFIX + "load-balancer-name": "anythingllm-test",
        PREFIX + "scheme": "internet-facing",
        PREFIX + "target-type": "ip",
        PREFIX + "healthcheck-protocol": "HTTP",
        PREFIX + "healthcheck-port": "traffic-port",
        PREFIX + "healthcheck-path": "/api/ping",
        PREFIX + "healthcheck-interval-seconds": "15",
        PREFIX + "healthcheck-timeout-seconds": "5",
        PREFIX + "healthy-threshold-count": "2",
        PREFIX + "unhealthy-threshold-count": "3",
        PREFIX + "success-codes": "200",
        PREFIX + "target-group-attributes": (
            "stickiness.enabled=true,stickiness.type=lb_cookie,"
            "stickiness.lb_cookie.duration_seconds=86400,"
            "load_balancing.algorithm.type=least_outstanding_requests,"
            "deregistration_delay.timeout_seconds=30"),
        PREFIX + "load-balancer-attributes": (
            "idle_timeout.timeout_seconds=600,routing.http.drop_invalid_header_fields.enabled=true,"
            "deletion_protection.enabled=false"),
        PREFIX + "listen-ports": '[{"HTTP": 80}]',
    }


def test_annotations_exact_strings_with_tls_waf_and_logs():
    config = base_config("prod")
    config["ingress"].update(
        stickySessionSeconds=3600, idleTimeoutSeconds=900, deregistrationDelaySeconds=60,
        healthCheck={"intervalSeconds": 10, "timeoutSeconds": 4, "healthyThreshold": 3,
                     "unhealthyThreshold": 4, "successCodes": "200-299"},
        accessLogs={"createBucket": "alb-logs", "prefix": "chat"},
    )
    settings = settings_from(config)
    annotations = alb_annotations(settings.ingress, load_balancer_name="anythingllm-prod")
    assert annotations[PREFIX + "target-group-attributes"] == (
        "stickiness.enabled=true,stickiness.type=lb_cookie,stickiness.lb_cookie.duration_seconds=3600,"
        "load_balancing.algorithm.type=least_outstanding_requests,deregistration_delay.timeout_seconds=60")
    assert annotations[PREFIX + "load-balancer-attributes"] == (
        "idle_timeout.timeout_seconds=900,routing.http.drop_invalid_header_fields.enabled=true,"
        "deletion_protection.enabled=true,access_logs.s3.enabled=true,access_logs.s3.bucket=alb-logs,"
        "access_logs.s3.prefix=chat")
    assert annotations[PREFIX + "listen-ports"] == '[{"HTTP": 80}, {"HTTPS": 443}]'
    assert annotations[PREFIX + "ssl-redirect"] == "443"
    assert annotations[PREFIX + "certificate-arn"] == config["ingress"]["certificateArn"]
    assert annotations[PREFIX + "ssl-policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert annotations[PREFIX + "wafv2-acl-arn"] == config["ingress"]["wafAclArn"]
    # Who may connect is the stack's security group (tests/test_alb_controller_policy.py).
    assert PREFIX + "inbound-cidrs" not in annotations
    assert (annotations[PREFIX + "healthcheck-interval-seconds"], annotations[PREFIX + "success-codes"],
            annotations[PREFIX + "healthy-threshold-count"]) == ("10", "200-299", "3")


# --------------------------------------------------------------------------- controller


def test_prod_access_logs_go_to_a_bucket_elb_may_write(stack_plans):
    """ELB user guide, "Enable access logs for your Application Load Balancer": the bucket in the
    ALB's Region, SSE-S3 only, and a policy that lets ELB put `<prefix>/AWSLogs/<account>/*`
    (us-east-1 predates August 2022: its ELB account 127311923021 as well as the service). The
    Ingress, whose annotation names the bucket, waits for that policy."""
    plan = stack_plans["prod"]
    bucket = plan.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "example-alb-access-logs"
    assert bucket.protect and bucket.inputs["forceDestroy"] is False
    encryption = plan.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert encryption.inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    block = plan.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[key] is True for key in ("blockPublicAcls", "blockPublicPolicy",
                                              "ignorePublicAcls", "restrictPublicBuckets"))
    ownership = plan.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (rule,) = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["expiration"] == {"days": 90} and rule["status"] == "Enabled"
    policy_resource = plan.one("aws:s3/bucketPolicy:BucketPolicy")
    policy = json.loads(policy_resource.inputs["policy"])
    deliver, deny = policy["Statement"]
    assert deliver["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com",
                                    "AWS": "arn:aws:iam::127311923021:root"}
    assert (deliver["Action"], deliver["Resource"]) == (
        "s3:PutObject", "arn:aws:s3:::example-alb-access-logs/anythingllm-prod/AWSLogs/123456789012/*")
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for ingress in plan.of_type(INGRESS):  # both members wait: either may create the ALB
        assert plan.waits_for(ingress, policy_resource), ingress.name
    ingress = plan.one(INGRESS, "anythingllm-ingress")
    attributes = ingress.inputs["metadata"]["annotations"][PREFIX + "load-balancer-attributes"]
    assert "access_logs.s3.bucket=example-alb-access-logs" in attributes
    assert not stack_plans["dev"].of_type("aws:s3/bucket:Bucket")


def test_access_log_policy_in_a_region_opened_after_august_2022():
    policy = iam.alb_access_log_bucket_policy(bucket_arn="arn:aws:s3:::logs", prefix="",
                                              account_id="1", region="ap-southeast-5", partition="aws")
    assert policy["Statement"][0]["Principal"] == {
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert policy["Statement"][0]["Resource"] == "arn:aws:s3:::logs/AWSLogs/1/*"


def test_controller_policy_is_the_pinned_upstream_file():
    digest = hashlib.sha256(IAM_POLICY_FILE.read_bytes()).hexdigest()
    assert digest == "16f232c9d9f79366fe949c4550ad517a202380058a9e48d45a4e215044a20a6a"
    assert len(json.loads(IAM_POLICY_FILE.read_text())["Statement"]) == 16


@pytest.mark.parametrize("stack", STACKS)
def test_controller_release(stack_plans, stack):
    plan = stack_plans[stack]
    release = _controller(plan)
    values = release.inputs["values"]
    assert (release.inputs["chart"], release.inputs["version"]) == ("aws-load-balancer-controller", "3.5.0")
    assert release.inputs["repositoryOpts"]["repo"] == "https://aws.github.io/eks-charts"
    assert values["clusterName"] == plan.outputs["clusterName"]
    assert values["region"] == "us-east-1" and values["vpcId"] == plan.outputs["vpcId"]
    assert values["keepTLSSecret"] is True
    assert values["serviceAccount"]["name"] == "aws-load-balancer-controller"
    assert values["defaultTags"]["anythingllm:stack"] == stack
    role = plan.one("aws:iam/role:Role", "ingress-controller")
    policy = plan.one("aws:iam/rolePolicy:RolePolicy", "ingress-controller")
    # The upstream document scoped to this stack (tests/test_alb_controller_policy.py).
    assert json.loads(policy.inputs["policy"])["Statement"][1]["Sid"] == "Read"
    assert policy.parent == role.urn
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    association = plan.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "ingress-controller")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system", "aws-load-balancer-controller")
    assert plan.waits_for(release, association)
    # It runs on the system nodes: it waits for them and for no GPU group.
    for group in plan.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert plan.waits_for(release, group) == (group.name == "cluster-system"), group.name


# --------------------------------------------------------------------------- ordering


@pytest.mark.parametrize("stack", STACKS)
def test_ingress_is_created_after_and_deleted_before_the_controller(stack_plans, stack):
    plan = stack_plans[stack]
    ingress, controller = _k8s(plan, INGRESS, "anythingllm"), _controller(plan)
    # A direct edge, not only one through the Deployment: it must hold whatever else changes.
    assert controller.urn in ingress.dependencies
    assert plan.waits_for(ingress, controller)
    assert plan.deleted_before(ingress, controller)
    assert not plan.deleted_before(controller, ingress)
    assert ingress.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == (
        "jsonpath={.status.loadBalancer.ingress[0].hostname}")
    assert ingress.inputs["spec"]["ingressClassName"] == "alb"
    backend = ingress.inputs["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "anythingllm", "port": {"name": "http"}}
    assert ingress.custom_timeouts["create"] == "20m"
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations[PREFIX + "load-balancer-name"] == f"anythingllm-{stack}"
    assert len(annotations[PREFIX + "load-balancer-name"]) <= 32


@pytest.mark.parametrize("stack", STACKS)
def test_anythingllm_waits_for_the_database_bootstrap(stack_plans, stack):
    plan = stack_plans[stack]
    deployment = _k8s(plan, DEPLOYMENT, "anythingllm", "anythingllm")
    job = plan.one("kubernetes:batch/v1:Job", "database-bootstrap")
    database_secret = _k8s(plan, "kubernetes:core/v1:Secret", "anythingllm-database")
    assert plan.waits_for(deployment, job) and plan.waits_for(deployment, database_secret)
    # Pods created before the controller's webhook runs would get no readiness gate.
    assert plan.waits_for(deployment, _controller(plan))
    gateway = _k8s(plan, DEPLOYMENT, "litellm", "llm-gateway")
    assert plan.waits_for(gateway, job)
    assert plan.waits_for(gateway, plan.one("aws:elasticache/replicationGroup:ReplicationGroup"))


# --------------------------------------------------------------------------- AnythingLLM


@pytest.mark.parametrize("stack", STACKS)
def test_anythingllm_deployment(stack_plans, stack):
    plan = stack_plans[stack]
    deployment = _k8s(plan, DEPLOYMENT, "anythingllm", "anythingllm")
    pod = _pod(deployment)
    (container,) = pod["containers"]
    env = _env(container)
    assert container["image"] == ANYTHINGLLM_IMAGE and ":pg-" in container["image"]
    assert env["STORAGE_DIR"] == "/app/server/storage" and env["SERVER_PORT"] == "3001"
    assert env["VECTOR_DB"] == "pgvector" and env["DISABLE_TELEMETRY"] == "true"
    assert env["DATABASE_URL"] == _ref("anythingllm-database", "DATABASE_URL")
    # AUTH_TOKEN from the first second: without it (or JWT_SECRET) single-user mode lets every
    # request through (anything-llm `pg` 5514d7c, server/utils/middleware/validatedRequest.js).
    for key in ("JWT_SECRET", "SIG_KEY", "SIG_SALT", "AUTH_TOKEN"):
        assert env[key] == _ref("anythingllm-secrets", key)
    secret = next(r for r in plan.of_type("kubernetes:core/v1:Secret")
                  if r.inputs["metadata"]["name"] == "anythingllm-secrets")
    assert set(secret.raw_inputs["stringData"]) == {"JWT_SECRET", "SIG_KEY", "SIG_SALT", "AUTH_TOKEN"}
    # The prompt leaves the answer its budget; chunks with their header fit the embedder.
    settings = stack_settings(stack)
    chat = settings.chat_model
    assert int(env["LITE_LLM_MODEL_TOKEN_LIMIT"]) == chat.max_model_len - min(4096, chat.max_model_len // 4)
    assert int(env["EMBEDDING_MODEL_MAX_CHUNK_LENGTH"]) == (
        settings.model_serving.embedding_model.max_model_len - 2048 - 2)
    assert env["LLM_PROVIDER"] == "litellm" and env["EMBEDDING_ENGINE"] == "litellm"
    assert env["LITE_LLM_BASE_PATH"] == "http://litellm.llm-gateway.svc.cluster.local:4000"
    assert env["LITE_LLM_MODEL_PREF"] == "qwen2-5-7b-instruct" and env["EMBEDDING_MODEL_PREF"] == "bge-m3"
    assert env["LITE_LLM_API_KEY"] == _ref("llm-gateway-client", "LITE_LLM_API_KEY")
    assert env["ANYTHINGLLM_CHROMIUM_ARGS"] == "--no-sandbox,--disable-setuid-sandbox"
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/api/ping", "port": "http"}
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 600
    assert container["ports"] == [{"name": "http", "containerPort": 3001, "protocol": "TCP"}]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    storage = volumes[mounts["/app/server/storage"]]
    assert storage["persistentVolumeClaim"] == {"claimName": "anythingllm-storage"}
    assert "emptyDir" in volumes[mounts["/app/server/storage/comkey"]]
    assert volumes[mounts["/etc/rds-ca"]]["configMap"] == {"name": "rds-ca"}
    # A leaving pod outlives the ALB's deregistration delay, and is killed only after that.
    settings = stack_settings(stack)
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop == pre_stop_seconds(settings.ingress) > settings.ingress.deregistration_delay_seconds
    assert pod["terminationGracePeriodSeconds"] == termination_grace_seconds(settings.ingress) > pre_stop
    # Prod drains long streams for 5 minutes; throwaway stacks let a pod go within a minute, so
    # that their destroy (and every rollout) does not wait 330 s per pod.
    expected_grace = {"prod": 330, "dev": 60, "staging": 60}[stack]
    assert pod["terminationGracePeriodSeconds"] == expected_grace
    assert deployment.inputs["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in deployment.inputs["spec"]  # owned by the autoscaler
    spread = {c["topologyKey"]: c["whenUnsatisfiable"] for c in pod["topologySpreadConstraints"]}
    assert spread == {"topology.kubernetes.io/zone": "DoNotSchedule",
                      "kubernetes.io/hostname": "ScheduleAnyway"}
    autoscaler = _k8s(plan, HPA, "anythingllm")
    assert autoscaler.inputs["spec"]["minReplicas"] == settings.app.replicas >= (3 if stack == "prod" else 2)
    assert autoscaler.inputs["spec"]["scaleTargetRef"]["name"] == "anythingllm"
    assert _k8s(plan, PDB, "anythingllm").inputs["spec"]["maxUnavailable"] == 1
    service = _k8s(plan, "kubernetes:core/v1:Service", "anythingllm", "anythingllm")
    assert service.inputs["spec"]["ports"] == [{"name": "http", "port": 3001, "targetPort": "http",
                                                "protocol": "TCP"}]


@pytest.mark.parametrize("stack", STACKS)
def test_admin_job_closes_the_instance_with_multi_user_mode(stack_plans, stack):
    """The Job runs anythingllm_admin.admin_script (tested against a stand-in AnythingLLM in
    tests/test_anythingllm_admin.py) after the rollout, with the variant's AUTH_TOKEN and the
    generated admin; the admin is a secret stack output."""
    plan = stack_plans[stack]
    (job,) = [j for j in plan.of_type("kubernetes:batch/v1:Job") if j.name == "anythingllm-admin"]
    pod = job.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _env(container)
    assert container["image"] == ANYTHINGLLM_IMAGE
    assert container["command"] == ["node", "/admin-bootstrap/admin-bootstrap.mjs"]
    assert env["ANYTHINGLLM_URL"] == "http://anythingllm.anythingllm.svc.cluster.local:3001"
    assert env["AUTH_TOKEN"] == _ref("anythingllm-secrets", "AUTH_TOKEN")
    assert env["ADMIN_PASSWORD"] == _ref("anythingllm-admin", "ADMIN_PASSWORD")
    assert (env["CHUNK_SIZE"], env["CHUNK_OVERLAP"]) == ("1000", "20")
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["automountServiceAccountToken"] is False
    script = next(c for c in plan.of_type("kubernetes:core/v1:ConfigMap")
                  if c.name == "anythingllm-admin-script")
    assert script.inputs["data"]["admin-bootstrap.mjs"] == admin_script()
    assert script.inputs["metadata"]["name"] == job.inputs["metadata"]["name"]
    assert plan.waits_for(job, _k8s(plan, DEPLOYMENT, "anythingllm", "anythingllm"))
    assert plan.outputs["anythingllmAdmin"] == "[secret]"
    assert plan.raw_outputs["anythingllmAdmin"]["username"] == "admin"
    assert len(plan.raw_outputs["anythingllmAdmin"]["password"]) == 32


@pytest.mark.parametrize("stack", STACKS)
def test_collector_port_is_never_exposed(stack_plans, stack):
    plan = stack_plans[stack]
    for resource in plan.resources:
        if resource.type.startswith("kubernetes:") and resource.inputs.get("metadata", {}).get(
                "namespace") == "anythingllm":
            assert "8888" not in json.dumps(resource.inputs), resource.name


# --------------------------------------------------------------------------- gateway


@pytest.mark.parametrize("stack", STACKS)
def test_gateway(stack_plans, stack):
    plan = stack_plans[stack]
    deployment = _k8s(plan, DEPLOYMENT, "litellm", "llm-gateway")
    pod = _pod(deployment)
    (container,) = pod["containers"]
    env = _env(container)
    assert container["image"] == LITELLM_IMAGE
    assert container["args"][-2:] == ["--num_workers", "1"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert env["LITELLM_MODE"] == "PRODUCTION"
    assert env["LITELLM_MASTER_KEY"] == _ref("litellm-secrets", "LITELLM_MASTER_KEY")
    assert env["DATABASE_URL"] == _ref("litellm-database", "DATABASE_URL")
    assert env["REDIS_SSL"] == _ref("llm-gateway-redis", "REDIS_SSL")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    config = _k8s(plan, "kubernetes:core/v1:ConfigMap", "litellm-config").inputs["data"]["config.yaml"]
    digest = deployment.inputs["spec"]["template"]["metadata"]["annotations"]["anythingllm.io/config-digest"]
    assert digest == hashlib.sha256(config.encode()).hexdigest()[:16]
    assert _k8s(plan, HPA, "litellm").inputs["spec"]["minReplicas"] >= 2
    assert _k8s(plan, PDB, "litellm").inputs["spec"]["maxUnavailable"] == 1
    master = _k8s(plan, "kubernetes:core/v1:Secret", "litellm-secrets").raw_inputs["stringData"]
    assert master["LITELLM_MASTER_KEY"].startswith("sk-") and len(master["LITELLM_MASTER_KEY"]) == 51
    policy = _k8s(plan, POLICY, "allow-anythingllm-only").inputs["spec"]
    assert _admits(policy, namespace="anythingllm", labels={"app.kubernetes.io/name": "anythingllm"},
                   port=4000)
    key_job_pod = {"app.kubernetes.io/name": "litellm-client-key"}
    app_pod = {"app.kubernetes.io/name": "anythingllm"}
    assert _admits(policy, namespace="llm-gateway", labels=key_job_pod, port=4000)
    assert not _admits(policy, namespace="model-serving", labels=app_pod, port=4000)
    assert not _admits(policy, namespace="anythingllm", labels=key_job_pod, port=4000)
    # AnythingLLM presents its own virtual key, never the master key; it starts once LiteLLM
    # knows that key (the key Job, tests/test_litellm_keys.py).
    client = _k8s(plan, "kubernetes:core/v1:Secret", "llm-gateway-client").raw_inputs["stringData"]
    assert client["LITE_LLM_API_KEY"] == master["LITELLM_CLIENT_KEY"] != master["LITELLM_MASTER_KEY"]
    assert client["LITE_LLM_API_KEY"].startswith("sk-")
    key_job = plan.one("kubernetes:batch/v1:Job", "gateway-client-key")
    settings = json.loads(_env(key_job.inputs["spec"]["template"]["spec"]["containers"][0])["KEY_SETTINGS"])
    assert settings["models"] == sorted(m.name for m in stack_settings(stack).model_serving.models)
    assert plan.waits_for(key_job, deployment)
    # AnythingLLM boots meanwhile; users come in after its admin Job, which waits for the key.
    assert not plan.waits_for(_k8s(plan, DEPLOYMENT, "anythingllm", "anythingllm"), key_job)
    assert plan.waits_for(plan.one("kubernetes:batch/v1:Job", "anythingllm-admin"), key_job)


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("stack", STACKS)
def test_gateway_migrates_once_in_a_job_before_its_rollout(stack_plans, stack):
    """litellm 1.106.2 proxy_cli.py: `--skip_server_startup` runs `prisma migrate deploy` and
    exits; DISABLE_SCHEMA_UPDATE makes a serving proxy only check for drift
    (db/prisma_client.py should_update_prisma_schema)."""
    plan = stack_plans[stack]
    deployment = _k8s(plan, DEPLOYMENT, "litellm", "llm-gateway")
    (serving,) = _pod(deployment)["containers"]
    assert _env(serving)["DISABLE_SCHEMA_UPDATE"] == "true"
    job = plan.one("kubernetes:batch/v1:Job", "gateway-migrate")
    pod = job.inputs["spec"]["template"]["spec"]
    (migrate,) = pod["containers"]
    assert migrate["image"] == LITELLM_IMAGE and pod["restartPolicy"] == "Never"
    assert migrate["args"] == ["--config", "/etc/litellm/config.yaml", "--skip_server_startup"]
    env = _env(migrate)
    assert "DISABLE_SCHEMA_UPDATE" not in env
    assert env["DATABASE_URL"] == _ref("litellm-database", "DATABASE_URL")
    assert plan.waits_for(deployment, job)
    assert job.inputs["metadata"]["name"].startswith("litellm-migrate-")


def test_a_changed_secret_rolls_the_pods_that_read_it(stack_plans):
    """Pods read their Secrets once, as environment: the pod templates carry a digest of them,
    visible (not a secret), which changes with any value."""
    def digests(plan):
        return {r.name: r.inputs["spec"]["template"]["metadata"]["annotations"][
                    "anythingllm.io/secrets-digest"]
                for r in plan.of_type(DEPLOYMENT) if r.name in ("gateway-litellm", "anythingllm-app")}

    dev = digests(stack_plans["dev"])
    # Another stack: other generated keys, other endpoints in the same Secrets.
    other = digests(run_stack(ROOT, "dev-copy", config_from="dev"))
    assert set(dev) == {"gateway-litellm", "anythingllm-app"}
    for name, digest in dev.items():
        assert len(digest) == 16 and digest != "[secret]"
        assert other[name] != digest, name


@pytest.mark.parametrize("stack", STACKS)
def test_model_servers_run_only_on_their_gpu_group(stack_plans, stack):
    plan = stack_plans[stack]
    settings = stack_settings(stack)
    for model in settings.model_serving.models:
        deployment = _k8s(plan, STATEFUL_SET, f"vllm-{model.name}", "model-serving")
        pod = _pod(deployment)
        containers = {c["name"]: c for c in pod["containers"]}
        # An autoscaled model's metrics sidecar (tests/test_autoscaling.py) runs beside vLLM.
        assert set(containers) == {"vllm"} | ({"metrics"} if model.autoscaled else set())
        container = containers["vllm"]
        assert container["image"] == VLLM_IMAGE
        assert pod["nodeSelector"]["anythingllm.io/gpu-node-group"] == model.node_group
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(model.gpus)
        args = container["args"]
        assert args[0] == model.model and args[args.index("--served-model-name") + 1] == model.name
        assert args[args.index("--tensor-parallel-size") + 1] == str(model.gpus)
        assert ("--runner" in args) == (model.kind == "embedding")
        if model.kind == "embedding":
            assert args[args.index("--runner") + 1] == "pooling"
        assert _env(container)["VLLM_API_KEY"] == _ref("vllm-api-key", "VLLM_API_KEY")
        assert "--api-key" not in args
        startup = container["startupProbe"]
        assert startup["httpGet"]["path"] == "/health"
        assert startup["failureThreshold"] == cold_start.startup_probe_failures(model)
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
        assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "model-cache"}
        # KEDA owns an autoscaled model's count; a fixed model's is declared.
        assert deployment.inputs["spec"].get("replicas") == (
            None if model.autoscaled else model.replicas)
    policy = _k8s(plan, POLICY, "allow-llm-gateway-only").inputs["spec"]
    # What the policy admits, by Kubernetes' NetworkPolicy rules (one `from` element: namespace
    # AND pod selector): LiteLLM's pods on 8000, nothing else. vLLM's key guards only /v1, /v2,
    # /inference and /cohere (vllm 0.32.0 authenticate.py), so this is the boundary.
    assert _admits(policy, namespace="llm-gateway", labels={"app.kubernetes.io/name": "litellm"}, port=8000)
    assert not _admits(policy, namespace="llm-gateway", labels={"app.kubernetes.io/name": "litellm"},
                       port=9000)
    assert not _admits(policy, namespace="anythingllm", labels={"app.kubernetes.io/name": "litellm"},
                       port=8000)
    assert not _admits(policy, namespace="anythingllm", labels={"app.kubernetes.io/name": "anythingllm"},
                       port=8000)
    assert not _admits(policy, namespace="llm-gateway", labels={"app.kubernetes.io/name": "other"}, port=8000)
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [{"from": [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "llm-gateway"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "litellm"}}}],
        "ports": [{"protocol": "TCP", "port": 8000}]}]


def _admits(policy: dict, *, namespace: str, labels: dict[str, str], port: int) -> bool:
    """Does an Ingress NetworkPolicy admit a TCP connection from a pod? (matchLabels only)"""
    def matches(selector: dict, values: dict[str, str]) -> bool:
        return all(values.get(k) == v for k, v in selector.get("matchLabels", {}).items())

    for rule in policy["ingress"]:
        if not any(p["protocol"] == "TCP" and p["port"] == port for p in rule["ports"]):
            continue
        for peer in rule["from"]:
            if (matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
                    and matches(peer["podSelector"], labels)):
                return True
    return False


@pytest.mark.parametrize("stack", STACKS)
def test_model_servers_are_stateful_sets_that_roll_one_replica_at_a_time(stack_plans, stack):
    """A StatefulSet, so each replica has a stable name and a Service of its own (the gateway
    balances over them, tests/test_routing.py). It has no surge (apps/v1
    RollingUpdateStatefulSetStrategy: maxUnavailable and partition only), so a rollout never
    needs room beyond the model's ceiling, on a full group or a shared GPU alike: one replica
    at a time, the old pod gone first. Parallel: replicas start together, as a Deployment's
    do (the default OrderedReady starts each only once the previous is ready)."""
    plan = stack_plans[stack]
    assert not [d for d in plan.of_type(DEPLOYMENT)
                if d.inputs["metadata"]["namespace"] == "model-serving"]
    for model in stack_settings(stack).model_serving.models:
        workload = _k8s(plan, STATEFUL_SET, f"vllm-{model.name}", "model-serving")
        spec = workload.inputs["spec"]
        assert spec["podManagementPolicy"] == "Parallel"
        assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
        assert "serviceName" not in spec and "volumeClaimTemplates" not in spec
        (spread,) = _pod(workload)["topologySpreadConstraints"]
        # StatefulSet pods carry controller-revision-hash, not pod-template-hash.
        assert spread["matchLabelKeys"] == ["controller-revision-hash"]
        minutes = cold_start.pulumi_wait_minutes(model, drain_seconds=model_grace_seconds(
            stack_settings(stack).gateway.request_timeout_seconds))
        assert workload.custom_timeouts == {"create": f"{minutes}m", "update": f"{minutes}m"}


def test_prod_has_a_dns_alias_to_the_alb(stack_plans):
    plan = stack_plans["prod"]
    record = plan.one("aws:route53/record:Record")
    assert (record.inputs["name"], record.inputs["type"]) == ("chat.example.com", "A")
    (alias,) = record.inputs["aliases"]
    assert alias["name"] == plan.outputs["albHostname"] and alias["evaluateTargetHealth"] is True
    assert alias["zoneId"] == "Z35SXDOTRQ7X7K"
    assert plan.outputs["url"] == "https://chat.example.com"
    assert not stack_plans["dev"].of_type("aws:route53/record:Record")
    assert stack_plans["dev"].outputs["url"].startswith("http://anythingllm-dev-")
