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
