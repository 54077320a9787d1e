"""The Availability Zones of each region (placeholder replaced below)."""

from __future__ import annotations


def zone_problem(region: str, zone: str) -> str | None:
    """Why `zone` cannot be used in `region`, or None."""
    if not zone.startswith(region) or len(zone) != len(region) + 1:
        return f"{zone!r} is not a zone of region {region!r}"
    return None
