"""Helm releases of the charts pinned in versions.py."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .versions import HelmChart


def pinned_release(name: str, chart: HelmChart, *, release_name: str, namespace: str,
                   values: pulumi.Input[dict], opts: pulumi.ResourceOptions,
                   skip_crds: bool = False) -> k8s.helm.v3.Release:
    """A Helm release of `chart` at its pinned version.

    `atomic`: a failed install or upgrade is rolled back instead of leaving a half-applied
    release that blocks the next `pulumi up`. An OCI repository (`oci://...`) is named in the
    chart reference itself, as Helm takes it; `skip_crds` leaves the chart's crds/ to a
    release of its own.
    """
    oci = chart.repository.startswith("oci://")
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=f"{chart.repository}/{chart.chart}" if oci else chart.chart,
        version=chart.version,
        repository_opts=None if oci else {"repo": chart.repository},
        namespace=namespace,
        values=values,
        atomic=True,
        skip_crds=skip_crds or None,
        opts=opts,
    )
