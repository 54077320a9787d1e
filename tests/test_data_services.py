"""EFS, RDS and ElastiCache in every stack: encryption, reachability, durability, ordering."""

from __future__ import annotations

import json

import pytest

from components.database import LOG_EXPORTS
from components.keda import NAMESPACE as KEDA_NAMESPACE
from components.namespaces import WORKLOAD_NAMESPACES
from components.naming import stack_physical_names
from components.shared_storage import lifecycle_policies, tls_only_policy
from tests.conftest import ROOT, STACKS
from tools.engine import Plan, Registration, run_stack

EFS = "aws:efs/fileSystem:FileSystem"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNET = "aws:ec2/subnet:Subnet"
ADDON = "aws:eks/addon:Addon"
PV = "kubernetes:core/v1:PersistentVolume"
ACCESS_POINT = "aws:efs/accessPoint:AccessPoint"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
SECRET = "kubernetes:core/v1:Secret"
JOB = "kubernetes:batch/v1:Job"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
DATA_PORTS = {"storage-nfs": 2049, "database-postgres": 5432, "cache-redis": 6379}


def _key_of(plan: Plan, component: str) -> Registration:
    return plan.one("aws:kms/key:Key", {"storage": "storage-efs", "database": "database-rds",
                                        "cache": "cache-elasticache"}[component])


def _private_subnets(plan: Plan) -> set[str]:
    return {s.urn for s in plan.of_type(SUBNET) if "kubernetes.io/role/internal-elb" in s.inputs["tags"]}


# --------------------------------------------------------------------------- reachability


@pytest.mark.parametrize("stack", STACKS)
def test_data_services_admit_only_the_cluster_on_their_port(stack_plans, stack):
    plan = stack_plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    # The ALB's own rules (the Ingress component's) are tests/test_alb_controller_policy.py's,
    # the managed scraper's tests/test_autoscaling.py's.
    rules = {rule.name: rule for rule in plan.of_type(INGRESS_RULE)
             if not rule.name.startswith(("ingress-", "prometheus-"))}
    assert set(rules) == set(DATA_PORTS)
    for name, port in DATA_PORTS.items():
        rule = rules[name]
        assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (
            port, port, "tcp")
        # The only source is the EKS cluster security group, never an address range.
        assert rule.property_dependencies["referencedSecurityGroupId"] == [cluster.urn]
        assert rule.inputs["referencedSecurityGroupId"].startswith("sg-")
        assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
        group = plan.one(SECURITY_GROUP, name)
        assert rule.property_dependencies["securityGroupId"] == [group.urn]
        assert "ingress" not in group.inputs and "egress" not in group.inputs
    egress = plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert {rule.property_dependencies["securityGroupId"][0] for rule in egress} == {
        plan.one(SECURITY_GROUP, "ingress-alb").urn, plan.one(SECURITY_GROUP, "prometheus-scraper").urn}
    for group in plan.of_type(SECURITY_GROUP):
        assert "0.0.0.0/0" not in json.dumps(group.inputs), group.name


@pytest.mark.parametrize("stack", STACKS)
def test_data_services_live_in_the_private_subnets_only(stack_plans, stack):
    plan = stack_plans[stack]
    private = _private_subnets(plan)
    for subnet_group in (plan.one("aws:rds/subnetGroup:SubnetGroup"),
                         plan.one("aws:elasticache/subnetGroup:SubnetGroup")):
        assert set(subnet_group.property_dependencies["subnetIds"]) == private, subnet_group.name
    assert plan.one(RDS).inputs["publiclyAccessible"] is False
    mount_targets = plan.of_type(MOUNT_TARGET)
    subnets = {mt.inputs["subnetId"] for mt in mount_targets}
    assert len(mount_targets) == len(subnets) == len(private)
    for mount_target in mount_targets:
        assert set(mount_target.property_dependencies["subnetId"]) == private
        assert mount_target.property_dependencies["securityGroups"] == [
            plan.one(SECURITY_GROUP, "storage-nfs").urn]


# --------------------------------------------------------------------------- encryption


@pytest.mark.parametrize("stack", STACKS)
def test_everything_is_encrypted_at_rest_with_its_own_key(stack_plans, stack):
    plan = stack_plans[stack]
    efs, rds, redis = plan.one(EFS), plan.one(RDS), plan.one(REDIS)
    assert efs.inputs["encrypted"] is True
    assert efs.property_dependencies["kmsKeyId"] == [_key_of(plan, "storage").urn]
    assert rds.inputs["storageEncrypted"] is True and rds.inputs["storageType"] == "gp3"
    assert rds.property_dependencies["kmsKeyId"] == [_key_of(plan, "database").urn]
    assert rds.property_dependencies["performanceInsightsKmsKeyId"] == [_key_of(plan, "database").urn]
    assert redis.inputs["atRestEncryptionEnabled"] is True
    assert redis.property_dependencies["kmsKeyId"] == [_key_of(plan, "cache").urn]


@pytest.mark.parametrize("stack", STACKS)
def test_everything_is_encrypted_in_transit(stack_plans, stack):
    plan = stack_plans[stack]
    parameters = plan.one("aws:rds/parameterGroup:ParameterGroup")
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "immediate"} in parameters.inputs[
        "parameters"]
    assert parameters.inputs["family"] == "postgres17"
    assert plan.one(RDS).property_dependencies["parameterGroupName"] == [parameters.urn]
    assert plan.one(RDS).inputs["caCertIdentifier"] == "rds-ca-rsa2048-g1"
    redis = plan.one(REDIS)
    assert redis.inputs["transitEncryptionEnabled"] is True
    assert redis.inputs["transitEncryptionMode"] == "required"
    policy = json.loads(plan.one("aws:efs/fileSystemPolicy:FileSystemPolicy").inputs["policy"])
    assert policy == tls_only_policy(policy["Statement"][0]["Resource"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert [d["Condition"] for d in deny] == [{"Bool": {"aws:SecureTransport": "false"}}]
    # TLS to EFS: the CSI node plugin adds `tls` to every access-point mount itself
    # (aws-efs-csi-driver pkg/driver/node.go); the policy above refuses anything else.
    for volume in plan.of_type("kubernetes:core/v1:PersistentVolume"):
        assert "::fsap-" in volume.inputs["spec"]["csi"]["volumeHandle"]


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("stack", STACKS)
def test_credentials_are_secret_in_state_and_never_in_the_plan(stack_plans, stack):
    plan = stack_plans[stack]
    rds, redis = plan.one(RDS), plan.one(REDIS)
    assert "password" in rds.secret_paths and rds.inputs["password"] == "[secret]"
    assert "authToken" in redis.secret_paths and redis.inputs["authToken"] == "[secret]"
    secrets = plan.of_type(SECRET)
    assert {(s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]) for s in secrets} == {
        ("data-bootstrap", "db-bootstrap-credentials"), ("anythingllm", "anythingllm-database"),
        ("llm-gateway", "litellm-database"), ("llm-gateway", "llm-gateway-redis"),
        ("model-serving", "vllm-api-key"), ("llm-gateway", "vllm-api-key"),
        ("llm-gateway", "litellm-secrets"), ("anythingllm", "llm-gateway-client"),
        ("anythingllm", "anythingllm-secrets"), ("anythingllm", "anythingllm-admin"),
    }
    revealed: list[str] = []
    for secret in secrets:
        data = secret.inputs["stringData"]
        # Secret as a whole, or every value secret: nothing in it is recorded in clear.
        assert data == "[secret]" or set(data.values()) == {"[secret]"}, secret.name
        revealed += [value for key, value in secret.raw_inputs["stringData"].items()
                     if key not in {"REDIS_HOST", "REDIS_PORT", "REDIS_SSL", "PGHOST", "PGPORT",
                                    "PGDATABASE", "PGUSER", "PGSSLMODE", "PGSSLROOTCERT",
                                    "ADMIN_USERNAME"}]
    revealed.append(rds.raw_inputs["password"])
    written = json.dumps(plan.to_json()) + json.dumps(plan.outputs)
    assert revealed and not [value for value in revealed if value in written]


# --------------------------------------------------------------------------- storage


@pytest.mark.parametrize("stack", STACKS)
def test_efs_file_system_and_csi_driver(stack_plans, stack):
    plan = stack_plans[stack]
    efs = plan.one(EFS)
    assert efs.inputs["throughputMode"] == "elastic"
    assert efs.inputs["performanceMode"] == "generalPurpose"
    assert efs.inputs["lifecyclePolicies"] == [
        {"transitionToIa": "AFTER_30_DAYS"}, {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"}]
    addon = plan.one(ADDON, "storage-aws-efs-csi-driver")
    assert addon.inputs["addonName"] == "aws-efs-csi-driver"
    # Static provisioning needs only the node plugin: the controller gets no AWS identity.
    assert "podIdentityAssociations" not in addon.inputs
    assert not [r for r in plan.of_type("aws:iam/role:Role") if "efs" in r.name]
    for group in plan.of_type(NODE_GROUP):
        assert plan.waits_for(addon, group) == (group.name == "cluster-system"), group.name


@pytest.mark.parametrize("stack", STACKS)
def test_claims_are_read_write_many_on_efs_access_points(stack_plans, stack):
    """aws-efs-csi-driver static provisioning with access points (examples/kubernetes/
    access_points at the add-on's release): an access point per claim, a PV with
    `volumeHandle: <fs>::<fsap>` pre-bound to its claim, the claim naming that volume."""
    plan = stack_plans[stack]
    claims = {c.inputs["metadata"]["name"]: c for c in plan.of_type(PVC)}
    assert {n: c.inputs["metadata"]["namespace"] for n, c in claims.items()} == {
        "anythingllm-storage": "anythingllm", "model-cache": "model-serving"}
    volumes = {v.inputs["metadata"]["name"]: v for v in plan.of_type(PV)}
    access_points = {a.name: a for a in plan.of_type(ACCESS_POINT)}
    addon = plan.one(ADDON, "storage-aws-efs-csi-driver")
    efs = plan.one(EFS)
    assert not plan.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    for name, claim in claims.items():
        namespace = claim.inputs["metadata"]["namespace"]
        access_point = access_points[f"storage-{name}"]
        assert access_point.inputs["rootDirectory"] == {
            "path": f"/dynamic/{namespace}/{name}",  # where the dynamic provisioner put the data
            "creationInfo": {"ownerUid": 1000, "ownerGid": 1000, "permissions": "700"}}
        assert access_point.inputs["posixUser"] == {"uid": 1000, "gid": 1000}
        assert access_point.property_dependencies["fileSystemId"] == [efs.urn]
        volume = volumes[f"efs-{namespace}-{name}"]
        spec = volume.inputs["spec"]
        assert spec["csi"]["driver"] == "efs.csi.aws.com"
        fs_id, ap_id = spec["csi"]["volumeHandle"].split("::")
        assert fs_id.startswith("fs-") and ap_id.startswith("fsap-")
        assert spec["claimRef"] == {"namespace": namespace, "name": name}
        assert spec["accessModes"] == ["ReadWriteMany"] and spec["storageClassName"] == ""
        assert spec["persistentVolumeReclaimPolicy"] == "Retain"
        assert claim.inputs["spec"]["volumeName"] == f"efs-{namespace}-{name}"
        assert claim.inputs["spec"]["storageClassName"] == ""
        assert claim.inputs["spec"]["accessModes"] == ["ReadWriteMany"]
        # Created in order; destroyed in the reverse, with no controller left to race: the claim,
        # then its volume, then the access point, then the file system.
        assert plan.waits_for(claim, volume) and plan.waits_for(volume, access_point)
        assert plan.waits_for(volume, addon)
        assert plan.deleted_before(claim, volume) and plan.deleted_before(volume, access_point)
        assert plan.deleted_before(access_point, efs)
        for mount_target in plan.of_type(MOUNT_TARGET):
            assert plan.waits_for(claim, mount_target)
        assert (claim.protect, volume.protect, access_point.protect) == (stack == "prod",) * 3


def test_lifecycle_policy_values():
    assert lifecycle_policies(None) == []
    assert lifecycle_policies(1)[0] == {"transition_to_ia": "AFTER_1_DAY"}
    assert lifecycle_policies(90)[0] == {"transition_to_ia": "AFTER_90_DAYS"}


# --------------------------------------------------------------------------- database


def test_prod_database_is_durable(stack_plans):
    rds = stack_plans["prod"].one(RDS)
    inputs = rds.inputs
    assert inputs["multiAz"] is True
    assert inputs["backupRetentionPeriod"] >= 14
    assert inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["finalSnapshotIdentifier"].startswith("anythingllm-prod-postgres-final-")
    assert inputs["deleteAutomatedBackups"] is False
    assert inputs["applyImmediately"] is False
    assert rds.protect


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_dev_and_staging_databases_are_cheap_and_destroy_in_one_run(stack_plans, stack):
    rds = stack_plans[stack].one(RDS)
    inputs = rds.inputs
    assert inputs["multiAz"] is False
    assert inputs["instanceClass"] == "db.t4g.medium"
    assert inputs["deletionProtection"] is False
    assert inputs["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in inputs
    assert inputs["deleteAutomatedBackups"] is True
    assert not rds.protect


@pytest.mark.parametrize("stack", STACKS)
def test_database_instance_properties(stack_plans, stack):
    plan = stack_plans[stack]
    rds = plan.one(RDS)
    inputs = rds.inputs
    assert (inputs["engine"], inputs["engineVersion"]) == ("postgres", "17")
    assert inputs["performanceInsightsEnabled"] is True
    assert inputs["performanceInsightsRetentionPeriod"] == 7
    assert inputs["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert inputs["enabledCloudwatchLogsExports"] == list(LOG_EXPORTS)
    assert inputs["copyTagsToSnapshot"] is True and inputs["autoMinorVersionUpgrade"] is True
    assert inputs["maxAllocatedStorage"] > inputs["allocatedStorage"]
    for export in LOG_EXPORTS:
        log_group = plan.one("aws:cloudwatch/logGroup:LogGroup", f"database-{export}")
        assert log_group.inputs["name"] == f"/aws/rds/instance/{inputs['identifier']}/{export}"
        assert plan.waits_for(rds, log_group)


@pytest.mark.parametrize("stack", STACKS)
def test_bootstrap_job_runs_after_the_instance_and_before_the_connection_secrets(stack_plans, stack):
    plan = stack_plans[stack]
    rds, job = plan.one(RDS), plan.one(JOB, "database-bootstrap")
    metadata = job.inputs["metadata"]
    assert metadata["namespace"] == "data-bootstrap"
    assert metadata["name"].startswith("db-bootstrap-")
    assert plan.waits_for(job, rds)
    for group in plan.of_type(NODE_GROUP):
        assert plan.waits_for(job, group) == (group.name == "cluster-system"), group.name
    pod = job.inputs["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGSSLMODE"]["value"] == "verify-full"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "db-bootstrap-credentials"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert job.custom_timeouts["create"] == "1200s"

    connections = {s.inputs["metadata"]["name"]: s for s in plan.of_type(SECRET)
                   if s.inputs["metadata"]["name"].endswith("-database")}
    assert {n: s.inputs["metadata"]["namespace"] for n, s in connections.items()} == {
        "anythingllm-database": "anythingllm", "litellm-database": "llm-gateway"}
    for secret in connections.values():
        assert plan.waits_for(secret, job)
        assert plan.waits_for(secret, rds)
        data = secret.raw_inputs["stringData"]
        assert data["PGHOST"].startswith(rds.inputs["identifier"] + ".")
        assert data["PGHOST"].endswith(".rds.amazonaws.com")
        assert "sslaccept=strict" in data["DATABASE_URL"]
    for namespace in ("anythingllm", "llm-gateway", "data-bootstrap"):
        ca = [c for c in plan.of_type("kubernetes:core/v1:ConfigMap")
              if c.inputs["metadata"] == {"name": "rds-ca", "namespace": namespace}]
        assert len(ca) == 1 and ca[0].inputs["data"]["ca.pem"].count("BEGIN CERTIFICATE") == 1


# --------------------------------------------------------------------------- cache


@pytest.mark.parametrize("stack", STACKS)
def test_cache_is_cluster_mode_disabled_with_tls_and_auth(stack_plans, stack):
    plan = stack_plans[stack]
    redis = plan.one(REDIS)
    inputs = redis.inputs
    assert (inputs["engine"], inputs["engineVersion"]) == ("valkey", "8.1")
    assert inputs["clusterMode"] == "disabled"
    assert inputs["parameterGroupName"] == "default.valkey8"
    assert len(inputs["replicationGroupId"]) <= 40
    prod = stack == "prod"
    assert inputs["numCacheClusters"] == (3 if prod else 1)  # prod: a replica in every AZ
    assert inputs["automaticFailoverEnabled"] is prod
    assert inputs["multiAzEnabled"] is prod
    assert inputs["snapshotRetentionLimit"] == (7 if prod else 0)
    assert ("finalSnapshotIdentifier" in inputs) is prod
    assert redis.protect is prod
    secret = plan.one(SECRET, "cache-connection")
    assert secret.inputs["metadata"] == {"name": "llm-gateway-redis", "namespace": "llm-gateway"}
    data = secret.raw_inputs["stringData"]
    assert data["REDIS_SSL"] == "True" and data["REDIS_PORT"] == "6379"
    assert data["REDIS_HOST"].startswith(f"master.{inputs['replicationGroupId']}.")
    assert data["REDIS_URL"].startswith("rediss://:")
    assert plan.waits_for(secret, redis)


# --------------------------------------------------------------------------- durability


def test_prod_protects_exactly_the_stateful_resources(stack_plans):
    protected = sorted(r.type for r in stack_plans["prod"].resources if r.protect)
    # The keys' aliases inherit `protect` from their key (their parent) in Pulumi.
    # Plus the generated keys whose change would break stored data or lock users out: LiteLLM's
    # salt key, AnythingLLM's JWT_SECRET, SIG_KEY, SIG_SALT and AUTH_TOKEN, and its admin's
    # password.
    # Each claim with its volume and access point: deleting any of them loses the binding. The
    # ALB access-log bucket (its settings stay changeable: they are not its children). The
    # Cognito user pool: its users and their second factors exist nowhere else. The EKS cluster:
    # its name is fixed, so a replacement would delete it, every node and every object first.
    # The AWS Backup vault, its key and the key of its alert topic.
    assert protected == sorted([
        EFS, *[PVC, PV, ACCESS_POINT] * 2, RDS, REDIS, *["aws:kms/key:Key", "aws:kms/alias:Alias"] * 9,
        "aws:eks/cluster:Cluster", "aws:backup/vault:Vault",
        "aws:s3/bucket:Bucket", "aws:cognito/userPool:UserPool",
        *["random:index/randomPassword:RandomPassword"] * 6,
    ])


@pytest.mark.parametrize("stack", STACKS)
def test_namespaces_enforce_pod_security(stack_plans, stack):
    plan = stack_plans[stack]
    namespaces = {n.inputs["metadata"]["name"]: n for n in plan.of_type("kubernetes:core/v1:Namespace")}
    # KEDA's namespace exists where a model is autoscaled (every committed stack).
    assert set(namespaces) == {spec.name for spec in WORKLOAD_NAMESPACES} | {KEDA_NAMESPACE.name}
    labels = {name: ns.inputs["metadata"]["labels"] for name, ns in namespaces.items()}
    assert labels["keda"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["anythingllm"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    assert labels["anythingllm"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["data-bootstrap"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["model-serving"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("branch", [
    "staging-x",
    "staging-feature-a-very-long-branch-name-that-goes-on-and-on",
    "staging-feature-a-very-long-branch-name-that-goes-on-and-on-2",
])
def test_physical_names_fit_aws_limits_for_long_staging_stack_names(branch):
    """The program uses exactly the names of `stack_physical_names`, whose AWS rules
    tests/test_naming.py checks for generated stack names."""
    plan = run_stack(ROOT, branch, config_from="staging")
    expected = stack_physical_names("anythingllm", branch)
    assert plan.one(RDS).inputs["identifier"] == expected["dbInstance"]
    assert plan.one(REDIS).inputs["replicationGroupId"] == expected["cacheReplicationGroup"]
    assert plan.one(EFS).inputs["creationToken"] == expected["efsCreationToken"]
    assert plan.one("aws:eks/cluster:Cluster").inputs["name"] == expected["eksCluster"]
    ingress = plan.one("kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress.inputs["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/load-balancer-name"] == expected["loadBalancer"]
    identifier, group_id = expected["dbInstance"], expected["cacheReplicationGroup"]
    assert len(identifier) <= 63 and len(group_id) <= 40 and len(expected["loadBalancer"]) <= 32
    for name in (identifier, group_id):
        assert name[0].isalpha() and "--" not in name and not name.endswith("-")


def test_long_branch_names_sharing_a_prefix_get_distinct_names():
    first = run_stack(ROOT, "staging-feature-a-very-long-branch-name-that-goes-on-and-on",
                      config_from="staging")
    second = run_stack(ROOT, "staging-feature-a-very-long-branch-name-that-goes-on-and-on-2",
                       config_from="staging")
    assert first.one(REDIS).inputs["replicationGroupId"] != second.one(REDIS).inputs[
        "replicationGroupId"]
