"""Which Kubernetes versions a stack may run, and what each phase of a version's life means.

Whether a version is accepted never depends on the date: a version is accepted when EKS has it
(versions.EKS_VERSIONS) and this code pins what runs with it (the Cluster Autoscaler of that
minor). Time only changes the warnings every preview prints, so that the passing of a date never
turns CI red or makes a running stack impossible to preview:

- standard support, more than WARN_BEFORE_DAYS left: nothing to say;
- standard support, WARN_BEFORE_DAYS or fewer left: a warning with the date and what EKS will do
  on it for the cluster's `upgradePolicy.supportType` (cluster.supportType);
- extended support: STANDARD means EKS upgrades the control plane to the next minor by itself
  at the end of standard support ("If your upgrade policy is STANDARD, it will be automatically
  upgraded": EKS user guide, view-upgrade-policy); EXTENDED keeps it, at six times the standard
  hourly price, until extended support ends (supportType can only change during standard
  support, so the warning before the end says so);
- past extended support: EKS has upgraded the control plane to the next minor by itself.

What the cluster runs today is the one thing the file cannot say: `upgrade_problem` compares the
version asked for with the one EKS reports for the stack's cluster (settings/loading.py asks),
and refuses skipping a minor or going back, which EKS refuses too, but only after the plan has
started to change other things.
"""

from __future__ import annotations

import datetime as dt
import re

from ..versions import CLUSTER_AUTOSCALER_RELEASES, EKS_VERSIONS

# The warning starts three months ahead: time for a staging rehearsal and a prod window.
WARN_BEFORE_DAYS = 90
# Amazon EKS pricing: $0.10 per cluster hour in standard support, $0.60 in extended support.
EXTENDED_SUPPORT_PRICE_FACTOR = 6
KUBERNETES_MINOR = re.compile(r"^1\.\d{1,2}$")


def supported_versions() -> list[str]:
    """The minors this code deploys: EKS has them and their pins are here."""
    return sorted((v for v in CLUSTER_AUTOSCALER_RELEASES if v in EKS_VERSIONS), key=minor)


def minor(version: str) -> int:
    """`1.36` -> 36 (every version this code knows is 1.x)."""
    return int(version.split(".")[1])


def _next(version: str) -> str:
    return f"1.{minor(version) + 1}"


def version_problem(version: str) -> str | None:
    """Why `version` cannot be deployed by this code, or None. Independent of the date."""
    supported = supported_versions()
    allowed = f"this code deploys {', '.join(supported)}"
    if not KUBERNETES_MINOR.match(version):
        return f"{version!r} is not a Kubernetes minor version such as \"{supported[-1]}\"; {allowed}"
    life = EKS_VERSIONS.get(version)
    if life is None:
        known = sorted(EKS_VERSIONS, key=minor)
        if minor(version) < minor(known[0]):
            return (f"{version!r} is older than every version on EKS's calendar (the oldest listed, "
                    f"{known[0]}, left extended support on "
                    f"{EKS_VERSIONS[known[0]].extended_support_ends}); {allowed}")
        return f"{version!r} is not on EKS's calendar (it lists {known[0]} to {known[-1]}); {allowed}"
    if version not in supported:
        # Worded without reference to today: whether a version is accepted never depends on it.
        return (f"{version!r} is an EKS version (standard support until {life.standard_support_ends}, "
                f"then extended support, at {EXTENDED_SUPPORT_PRICE_FACTOR} times the hourly price, "
                f"until {life.extended_support_ends}, when EKS upgrades the control plane by itself), "
                "but this code pins the Cluster Autoscaler and its permissions only for "
                f"{', '.join(supported)}")
    return None


def version_warnings(version: str, support_type: str, today: dt.date) -> list[str]:
    """What the phase of `version` on `today` means for the cluster (see the module docstring)."""
    life = EKS_VERSIONS.get(version)
    if life is None or version not in supported_versions():
        return []
    key = "cluster.kubernetesVersion"
    upgrade = _next(version)
    newest = supported_versions()[-1]
    target = (f"upgrade to {upgrade} (README, Upgrades)" if upgrade in supported_versions()
              else f"upgrade to {upgrade} once this code supports it (it deploys up to {newest})")
    cost = (f"extended support costs {EXTENDED_SUPPORT_PRICE_FACTOR} times the standard price per "
            "cluster hour")
    # An end date is the first day of the next phase (EKS bills extended support from it).
    if today >= life.extended_support_ends:
        return [f"{key}: {version} left extended support on {life.extended_support_ends}, when EKS "
                f"upgraded the control plane to {upgrade} by itself; the node groups and the "
                f"Cluster Autoscaler deployed here are still those of {version}: {target}"]
    if today >= life.standard_support_ends:
        if support_type == "EXTENDED":
            return [f"{key}: {version} has been in extended support since "
                    f"{life.standard_support_ends} (cluster.supportType EXTENDED); {cost}, until "
                    f"{life.extended_support_ends}, when EKS upgrades the control plane to {upgrade} "
                    f"by itself: {target}"]
        # supportType can only change while the version is in standard support, so there is
        # no staying on it now.
        return [f"{key}: {version} left standard support on {life.standard_support_ends}; with "
                f"cluster.supportType STANDARD, EKS upgrades the control plane to {upgrade} by "
                f"itself: {target}"]
    days_left = (life.standard_support_ends - today).days
    if days_left > WARN_BEFORE_DAYS:
        return []
    then = (f"EKS upgrades the control plane to {upgrade} by itself (cluster.supportType STANDARD; "
            f"to stay on {version} at {EXTENDED_SUPPORT_PRICE_FACTOR} times the price, set supportType "
            "EXTENDED before then: it can only change during standard support)"
            if support_type == "STANDARD" else
            f"extended support starts (cluster.supportType EXTENDED): {cost}")
    return [f"{key}: {version} leaves standard support on {life.standard_support_ends}, in "
            f"{days_left} days; then {then}: {target}"]


def upgrade_problem(running: str, wanted: str) -> str | None:
    """Why the cluster, which runs `running`, cannot be set to `wanted` in one `pulumi up`, or
    None (the same version, or the next minor).

    EKS upgrades a control plane one minor at a time ("you can update only one minor version
    at a time", EKS user guide, update-cluster). It rolls one back only within 7 days of an
    in-place upgrade, by one minor, and only after every managed node group has been rolled
    back (EKS user guide, rollback-cluster): the opposite of the order a plan follows (control
    plane first, nodes after it), so going back is a manual procedure (README, Upgrades), after
    which the file names the version the cluster runs again. Independent of the date, like
    `version_problem`.
    """
    if wanted == running or not KUBERNETES_MINOR.match(wanted) or not KUBERNETES_MINOR.match(running):
        return None
    if minor(wanted) == minor(running) + 1:
        return None
    if minor(wanted) > minor(running):
        skipped = ", ".join(f"1.{m}" for m in range(minor(running) + 1, minor(wanted)))
        return (f"{wanted!r} skips {skipped}: the cluster runs {running}, and EKS upgrades a "
                f"control plane one minor at a time; set \"{_next(running)}\", run `pulumi up` "
                "(control plane, add-ons, nodes, Cluster Autoscaler), then the next minor "
                "(README, Upgrades)")
    forced = (" (if nobody upgraded it, EKS did: it upgrades a control plane by itself when its "
              "version's support ends)" if running == _next(wanted) else "")
    stay = (f"set \"{running}\"" if running in supported_versions() else
            f"this code does not deploy {running} yet; move to a release of it that does")
    back = (" To go back after an upgrade of the last 7 days, roll back the node groups and then "
            "the control plane by hand first (README, Upgrades, \"Rolling back\")"
            if running == _next(wanted) else "")
    return (f"{wanted!r} is older than {running}, which the cluster runs{forced}: a plan cannot "
            f"take a control plane back; {stay}.{back}")


ADDON_MINOR = re.compile(r"^v(\d+)\.(\d+)\.")


def addon_change(addon: str, *, installed: str, target: str, pinned: bool,
                 kubernetes_version: str):
    """What moving add-on `addon` from `installed` to `target` means: None when it stays, a
    warning (every preview shows what an `up` will do to the add-ons, whose unpinned versions
    follow EKS's default and can move without a change to the file), or a problem: EKS updates
    vpc-cni one minor at a time ("you can only update one minor version at a time", EKS user
    guide, "Update the Amazon VPC CNI (Amazon EKS add-on)")."""
    from .postgres_version import Finding

    if installed == target:
        return None
    old, new = ADDON_MINOR.match(installed), ADDON_MINOR.match(target)
    if addon == "vpc-cni" and old and new and old[1] == new[1] and int(new[2]) - int(old[2]) > 1:
        return Finding(f"cluster.addonVersions.{addon}", f"{installed} to {target} skips a minor: EKS "
                       "updates vpc-cni one minor at a time; pin it to the newest "
                       f"v{old[1]}.{int(old[2]) + 1}.x first (`aws eks describe-addon-versions "
                       f"--addon-name vpc-cni --kubernetes-version {kubernetes_version}`)",
                       problem=True)
    why = "as pinned" if pinned else f"EKS's default for {kubernetes_version}"
    return Finding("cluster.addonVersions", f"{addon} moves from {installed} to {target} ({why}) in "
                   f"this `up`; to keep it, pin {addon}: {installed}", problem=False)
