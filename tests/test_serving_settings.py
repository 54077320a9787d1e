"""Settings of the serving path: defaults per environment and every bad input named by key."""

from __future__ import annotations

import copy

import pytest

from components.settings import SettingsError
from tests.conftest import base_config, expect_settings_error, settings_from


def _with(environment: str = "dev", **sections) -> dict:
    config = base_config(environment)
    for path, value in sections.items():
        section, _, key = path.partition("__")
        target = config.setdefault(section, {})
        if key:
            target[key] = value
        else:
            config[section] = value
    return config


def test_defaults_per_environment():
    dev, prod = settings_from(base_config("dev")), settings_from(base_config("prod"))
    assert (dev.app.replicas, prod.app.replicas) == (2, 3)
    assert (dev.ingress.deletion_protection, prod.ingress.deletion_protection) == (False, True)
    assert dev.ingress.idle_timeout_seconds == 600 and dev.ingress.sticky_session_seconds == 86400
    assert dev.gateway.replicas == 2 and dev.app.replica_ceiling == 4
    assert dev.chat_model.name == "chat" and dev.model_serving.embedding_model.dimensions == 1024


def _two_chat_models(config: dict) -> dict:
    config["modelServing"]["models"].append(
        {"name": "small", "model": "Qwen/Qwen2.5-1.5B-Instruct", "kind": "chat",
         "nodeGroup": "inference", "maxModelLen": 8192})
    return config


def test_chat_model_can_be_chosen():
    config = _two_chat_models(base_config())
    config["cluster"]["gpuNodeGroups"][0]["maxSize"] = 3
    config["app"] = {"chatModel": "small"}
    assert settings_from(config).chat_model.name == "small"


MODEL = ["modelServing", "models"]

BAD_INPUTS = [
    # (mutation, key path, reason)
    (lambda c: c["ingress"].update(stickySessionSeconds=0), "ingress.stickySessionSeconds",
     "greater than or equal to 1"),
    (lambda c: c["ingress"].update(stickySessionSeconds=604801), "ingress.stickySessionSeconds",
     "less than or equal to 604800"),
    (lambda c: c["ingress"].update(idleTimeoutSeconds=299), "ingress.idleTimeoutSeconds",
     "greater than or equal to 300"),
    (lambda c: c["ingress"].update(idleTimeoutSeconds=4001), "ingress.idleTimeoutSeconds",
     "less than or equal to 4000"),
    (lambda c: c["ingress"].update(inboundCidrs=["0.0.0.0/0"]), "ingress.inboundCidrs",
     "serves plain HTTP"),
    (lambda c: c["ingress"].update(inboundCidrs=["10.0.0.0/33"]), "ingress.inboundCidrs[0]",
     "not a valid IPv4 CIDR"),
    (lambda c: c["ingress"].update(certificateArn="arn:aws:iam::111122223333:server-certificate/x"),
     "ingress.certificateArn", "not an ACM certificate ARN"),
    (lambda c: c["ingress"].update(sslPolicy="ELBSecurityPolicy-2016-08"), "ingress.sslPolicy",
     "TLS 1.2+"),
    (lambda c: c["ingress"].update(wafAclArn="arn:aws:wafv2:us-east-1:111122223333:global/webacl/a/b"),
     "ingress.wafAclArn", "regional WAFv2"),
    (lambda c: c["ingress"].update(healthCheck={"intervalSeconds": 5, "timeoutSeconds": 5}),
     "ingress.healthCheck.timeoutSeconds", "must be below intervalSeconds"),
    (lambda c: c["ingress"].update(healthCheck={"successCodes": "ok"}),
     "ingress.healthCheck.successCodes", "not an HTTP code list"),
    (lambda c: c["ingress"].update(dns={"hostedZoneId": "Z123", "name": "chat.example.com"}),
     "ingress.dns", "needs certificateArn"),
    (lambda c: c["ingress"].update(accessLogs={"createBucket": "logs", "prefix": "AWSLogs/x"}),
     "ingress.accessLogs.prefix", "AWSLogs"),
    # An existing bucket (the key before the stack created it) is refused, never taken over.
    (lambda c: c["ingress"].update(accessLogs={"bucket": "central-logs"}),
     "ingress.accessLogs.bucket", "name a new bucket in `createBucket`"),
    (lambda c: c["ingress"].update(accessLogs={"createBucket": "logs", "retentionDays": 0}),
     "ingress.accessLogs.retentionDays", "greater than or equal to 1"),
    (lambda c: c.update(app={"replicas": 1}), "app.replicas", "greater than or equal to 2"),
    (lambda c: c.update(cache={"clusterMode": "enabled", "shards": 2, "replicas": 1}),
     "cache.clusterMode", "'enabled' is not supported"),
    (lambda c: c.update(app={"replicas": 2, "chunkSize": 500, "chunkOverlap": 500}),
     "app.chunkOverlap", "must be below chunkSize"),
    # bge-m3's 8192 tokens less the 2048 characters kept for AnythingLLM's chunk header.
    (lambda c: c.update(app={"replicas": 2, "chunkSize": 7000}), "app.chunkSize", "at most 6142"),
    (lambda c: c.update(app={"replicas": 2, "answerTokens": 20000}), "app.answerTokens",
     "at most 16384"),
    (lambda c: c.update(app={"replicas": 2, "adminUsername": "Admin"}), "app.adminUsername",
     "not an AnythingLLM username"),
    (lambda c: c.update(app={"replicas": 3, "maxReplicas": 2}), "app.maxReplicas", "below replicas"),
    (lambda c: c.update(app={"resources": {"cpu": "1", "memory": "1Gi", "cpuLimit": "1",
                                           "memoryLimit": "2Gi"}}),
     "app.resources.memory", "below 2Gi"),
    (lambda c: c.update(app={"chatModel": "embed"}), "app.chatModel", "not a chat model"),
    (lambda c: c.update(gateway={"replicas": 1}), "gateway.replicas", "greater than or equal to 2"),
    (lambda c: c.update(gateway={"resources": {"cpu": "2", "memory": "1Gi", "cpuLimit": "1",
                                               "memoryLimit": "1Gi"}}),
     "gateway.resources.cpuLimit", "below the request"),
    (lambda c: c.update(gateway={"resources": {"cpu": "two", "memory": "1Gi", "cpuLimit": "1",
                                               "memoryLimit": "1Gi"}}),
     "gateway.resources.cpu", "not a CPU quantity"),
    (lambda c: c["modelServing"]["models"][0].update(gpus=2), "modelServing.models[0].gpus",
     "do not fit on one node of 'inference' (g5.xlarge: 1 GPU)"),
    (lambda c: c["modelServing"]["models"][0].update(gpus=3), "modelServing.models[0].gpus",
     "Input should be 1, 2, 4 or 8"),
    (lambda c: c["modelServing"]["models"][0].update(nodeGroup="missing"),
     "modelServing.models[0].nodeGroup", "not a GPU node group; declared: ['inference']"),
    (lambda c: c["modelServing"]["models"][0].update(replicas=2),
     "cluster.gpuNodeGroups[0].maxSize", "need 3 at their peak (gpus x maxReplicas)"),
    (lambda c: c["modelServing"]["models"][1].pop("dimensions"),
     "modelServing.models[1].dimensions", "must declare its vector dimensions"),
    (lambda c: c["modelServing"]["models"][0].update(dimensions=1024),
     "modelServing.models[0].dimensions", "only embedding models"),
    (lambda c: c["modelServing"]["models"][1].update(dimensions=16001),
     "modelServing.models[1].dimensions", "less than or equal to 2000"),
    (lambda c: c["modelServing"]["models"][1].update(kind="chat", dimensions=None),
     "modelServing.models", "exactly one model must have kind 'embedding'"),
    (lambda c: c["modelServing"]["models"][1].update(name="chat"),
     "modelServing.models[1].name", "'chat' is used twice"),
    (lambda c: c["modelServing"]["models"][0].update(name="Qwen2.5"),
     "modelServing.models[0].name", "is not allowed"),
    (lambda c: c["modelServing"]["models"][0].update(model="qwen"),
     "modelServing.models[0].model", "not a Hugging Face model id"),
    (lambda c: c["modelServing"]["models"][0].update(shmSize="16Gi"),
     "modelServing.models[0].shmSize", "must stay below resources.memoryLimit"),
    (lambda c: c["modelServing"]["models"][0].update(gpuMemoryUtilization=0.99),
     "modelServing.models[0].gpuMemoryUtilization", "less than or equal to 0.95"),
    (lambda c: c.pop("modelServing"), "modelServing", "required key is missing"),
]


@pytest.mark.parametrize(("mutate", "path", "reason"), BAD_INPUTS,
                         ids=[f"{case[1]}:{case[2][:24]}" for case in BAD_INPUTS])
def test_bad_serving_input_names_the_key(mutate, path, reason):
    config = copy.deepcopy(base_config())
    mutate(config)
    expect_settings_error(config, path, reason)


PROD_RULES = [
    (lambda c: c.update(app={"replicas": 2}), "app.replicas", "below 3, the minimum in prod"),
    (lambda c: c["ingress"].update(certificateArn=None, inboundCidrs=["198.51.100.0/24"]),
     "ingress.certificateArn", "required in prod"),
    (lambda c: c["ingress"].pop("wafAclArn"), "ingress.wafAclArn", "required in prod"),
    (lambda c: c["ingress"].update(deletionProtection=False), "ingress.deletionProtection",
     "cannot be false in prod"),
]


@pytest.mark.parametrize(("mutate", "path", "reason"), PROD_RULES, ids=[c[1] for c in PROD_RULES])
def test_prod_serving_rules(mutate, path, reason):
    config = copy.deepcopy(base_config("prod"))
    mutate(config)
    expect_settings_error(config, path, reason)


def test_internal_prod_alb_needs_no_waf():
    config = base_config("prod")
    config["ingress"] = {"scheme": "internal", "certificateArn": config["ingress"]["certificateArn"],
                         "auth": {"type": "none", "reason": "internal ALB behind the corporate proxy's SSO"}}
    assert settings_from(config).ingress.waf_acl_arn is None


def test_staging_alb_cannot_be_protected():
    config = base_config("staging")
    config["ingress"]["deletionProtection"] = True
    expect_settings_error(config, "ingress.deletionProtection", "throwaway stacks")


def test_hugging_face_token_only_as_a_secret():
    from components.settings import parse_settings
    from tests.conftest import TODAY

    config = {**base_config(), "huggingFaceToken": "hf_plaintext"}
    with pytest.raises(SettingsError, match=r"huggingFaceToken: must be a secret; set it with "
                                            r"`pulumi config set --secret anythingllm:huggingFaceToken"):
        parse_settings(config, project="anythingllm", stack="test", today=TODAY)
    settings = parse_settings(config, project="anythingllm", stack="test", today=TODAY,
                              secret_keys={"huggingFaceToken"})
    assert settings.hugging_face_token.get_secret_value() == "hf_plaintext"
    assert "hf_plaintext" not in repr(settings)


def test_prod_previews_warn_about_builds_and_weights_that_can_change():
    """AnythingLLM re-pushes pg-<version> on every push to its pg branch
    (Mintplex-Labs/anything-llm .github/workflows/build-and-push-pg-image.yaml); an unpinned
    model follows its repository's main branch. Prod says so in every preview; a digest and a
    commit silence it; dev and staging say nothing of it (their models sleep, so they warn only
    that KEDA is not tested on their Kubernetes minor, tests/test_autoscaling.py)."""
    from tests.conftest import stack_settings

    prod = stack_settings("prod")
    assert [w.split(":")[0] for w in prod.warnings] == [
        "modelServing.models", "app.imageTag", "modelServing.models[0].revision",
        "modelServing.models[1].revision"]
    for stack in ("dev", "staging"):
        assert [w.split(":")[0] for w in stack_settings(stack).warnings] == ["modelServing.models"]
    config = base_config("prod")
    config["app"] = {"imageTag": "pg-1.16.0@sha256:" + "a" * 64}
    for model in config["modelServing"]["models"]:
        model["revision"] = "0123456789abcdef0123456789abcdef01234567"
    # (The base config's one-replica models on a Karpenter group, and its models without
    # weightsGib, have their own warnings.)
    def pinning(warnings: list[str]) -> list[str]:
        return [w.split(":")[0] for w in warnings
                if not w.split(":")[0].endswith((".replicas", ".weightsGib"))]

    assert pinning(settings_from(config).warnings) == []
    config["modelServing"]["models"][0]["revision"] = "main"
    assert pinning(settings_from(config).warnings) == ["modelServing.models[0].revision"]


def test_a_revision_pins_weights_and_tokenizer():
    """vllm 0.32.0 engine/arg_utils.py: --revision (weights) and --tokenizer-revision."""
    from components.model_serving import vllm_args

    config = base_config()
    config["modelServing"]["models"][0]["revision"] = "0123456789abcdef0123456789abcdef01234567"
    chat = settings_from(config).model_serving.models[0]
    args = vllm_args(chat, stream_seconds=600)
    assert args[args.index("--revision") + 1] == args[args.index("--tokenizer-revision") + 1] == (
        "0123456789abcdef0123456789abcdef01234567")
    assert "--revision" not in vllm_args(settings_from(base_config()).model_serving.models[0],
                                         stream_seconds=600)
    config["modelServing"]["models"][0]["revision"] = "no spaces allowed"
    expect_settings_error(config, "modelServing.models[0].revision", "not a Hugging Face revision")


def test_cidrs_are_rendered_as_parsed():
    """AWS and the controller parse CIDRs strictly (EC2 refuses a bare address as CidrIpv4, Go's
    net.ParseCIDR too): every CIDR is kept in its canonical form."""
    config = base_config("dev")
    config["ingress"]["inboundCidrs"] = ["203.0.113.10", "198.51.100.0/24"]
    config["cluster"]["publicAccessCidrs"] = ["192.0.2.7"]
    settings = settings_from(config)
    assert settings.ingress.inbound_cidrs == ["203.0.113.10/32", "198.51.100.0/24"]
    assert settings.cluster.public_access_cidrs == ["192.0.2.7/32"]


@pytest.mark.parametrize("version", ["1.19.2", "v1.19.2", "v1.19-eksbuild.1", "latest"])
def test_addon_versions_have_the_eks_form(version):
    config = base_config()
    config["cluster"]["addonVersions"] = {"vpc-cni": version}
    expect_settings_error(config, "cluster.addonVersions.vpc-cni", "is not an EKS add-on version")


def test_a_well_formed_addon_version_is_accepted():
    config = base_config()
    config["cluster"]["addonVersions"] = {"vpc-cni": "v1.19.2-eksbuild.1"}
    assert settings_from(config).cluster.addon_versions == {"vpc-cni": "v1.19.2-eksbuild.1"}


def test_unquoted_cpu_quantities_are_accepted_and_rendered_as_text():
    """Kubernetes takes `cpu: 1`; the stack file's YAML (and the CLI's JSON) makes it a number."""
    config = base_config()
    config["app"] = {"replicas": 2, "resources": {"cpu": 1, "memory": "2Gi", "cpuLimit": 2.5,
                                                  "memoryLimit": "4Gi"}}
    resources = settings_from(config).app.resources.as_kubernetes()
    assert resources == {"requests": {"cpu": "1", "memory": "2Gi"},
                         "limits": {"cpu": "2.5", "memory": "4Gi"}}


@pytest.mark.parametrize("key, value, reason", [
    ("certificateArn", "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-4000-8000-000000000000",
     "is in us-east-1, but the ALB is in eu-west-1"),
    ("wafAclArn",
     "arn:aws:wafv2:us-west-2:111122223333:regional/webacl/chat/00000000-0000-4000-8000-000000000001",
     "is in us-west-2, but the ALB is in eu-west-1"),
    ("certificateArn",
     "arn:aws-cn:acm:eu-west-1:111122223333:certificate/00000000-0000-4000-8000-000000000000",
     "is in partition 'aws-cn'"),
])
def test_arns_must_be_usable_where_they_are_used(key, value, reason):
    """An ALB takes an ACM certificate and a regional WAF web ACL of its own region, and every
    ARN must be of the region's partition."""
    config = base_config("prod")
    config["ingress"][key] = value
    expect_settings_error(config, f"ingress.{key}", reason)


def test_admin_roles_must_be_of_the_regions_partition():
    config = base_config()
    config["cluster"]["adminRoleArns"] = ["arn:aws-us-gov:iam::111122223333:role/admin"]
    expect_settings_error(config, "cluster.adminRoleArns[0]", "is in partition 'aws-us-gov'")
