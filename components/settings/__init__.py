"""Typed settings for a whole stack, read once from the Pulumi stack configuration.

This package is the only reader of `pulumi.Config`. Structured values live in
`Pulumi.<stack>.yaml` under the project namespace with camelCase keys, e.g.::

    config:
      aws:region: us-east-1
      anythingllm:environment: dev
      anythingllm:network: {vpcCidr: 10.40.0.0/16, availabilityZones: [...]}
      anythingllm:cluster: {kubernetesVersion: "1.35", gpuNodeGroups: [...]}
      anythingllm:database: {engineVersion: "17", instanceClass: db.m7g.large}
      anythingllm:modelServing: {models: [{name: qwen2-5-7b-instruct, kind: chat, ...}]}

Every model forbids unknown keys. Every error names the key path (for example
`cluster.gpuNodeGroups[0].instanceType`), the bad value and what is allowed, and is raised
by `load_settings` before `__main__.py` registers a single resource.
"""


from .base import PROJECT_NAMESPACE, ConfigProblem, SettingsError
from .cluster import ClusterSettings, GpuNodeGroupSettings, ScalingSettings, SystemNodeGroupSettings
from .data import CacheSettings, DatabaseSettings, StorageSettings
from .loading import (
    load_settings,
    parse_settings,
    read_raw_config,
)
from .network import ExistingNetworkSettings, NetworkSettings
from .observability import AlarmThresholds, ObservabilitySettings
from .serving import (
    AccessLogSettings,
    AppSettings,
    CanaryHeaderSettings,
    CanarySettings,
    GatewaySettings,
    IngressSettings,
    ModelServingSettings,
    ModelSettings,
    ResourceSettings,
)
from .stack import StackSettings

__all__ = [
    "PROJECT_NAMESPACE",
    "AccessLogSettings",
    "AlarmThresholds",
    "AppSettings",
    "CacheSettings",
    "CanaryHeaderSettings",
    "CanarySettings",
    "ClusterSettings",
    "ConfigProblem",
    "DatabaseSettings",
    "ExistingNetworkSettings",
    "GatewaySettings",
    "GpuNodeGroupSettings",
    "IngressSettings",
    "ModelServingSettings",
    "ModelSettings",
    "NetworkSettings",
    "ObservabilitySettings",
    "ResourceSettings",
    "ScalingSettings",
    "SettingsError",
    "StackSettings",
    "StorageSettings",
    "SystemNodeGroupSettings",
    "load_settings",
    "parse_settings",
    "read_raw_config",
]
