"""Resource options shared by the components."""

from __future__ import annotations

import pulumi


def child_options(component: pulumi.Resource, opts: pulumi.ResourceOptions | None,
                  **extra) -> pulumi.ResourceOptions:
    """Options for a child that must wait for whatever its component was told to wait for.

    The Python SDK does not pass a component's `depends_on` to the registrations of its
    children, so a child created inside the component would not wait for it. Children
    that must (node groups waiting for the CNI add-ons, Helm releases waiting for nodes)
    take the component's `depends_on` through this helper.
    """
    declared = opts.depends_on if opts is not None else None
    inherited = [] if declared is None else list(declared) if isinstance(declared, list) else [declared]
    depends_on = [*inherited, *extra.pop("depends_on", [])]
    return pulumi.ResourceOptions(parent=component, depends_on=depends_on or None, **extra)


def named(**options) -> pulumi.ResourceOptions:
    """Options of a resource whose physical name the program sets (an EKS cluster, an RDS
    identifier, a log group...): AWS holds that name once, so a replacement (an input only a
    replacement can change: components/replacement.py) is deleted before it is created, instead
    of failing on the name. pulumi-aws asks for that itself for most SDKv2 resources named by
    hand (pulumi-terraform-bridge `nameRequiresDeleteBeforeReplace`), but not for Plugin
    Framework ones or names it does not generate; stated here, it holds for every one and the
    plan records it. A stateful resource is also `protect`ed where `protect` says (prod): a plan
    that would replace it then fails (README, "Replacements")."""
    return pulumi.ResourceOptions(delete_before_replace=True, **options)
