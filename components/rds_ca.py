"""The RDS root certificate that database clients verify the server against.

RDS signs every instance's server certificate with the certificate authority named by
`ca_cert_identifier`; each region has its own root for it. The roots are vendored in
`data/rds-ca-rsa2048-g1.pem` (see data/README.md for provenance).
"""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path

RDS_CA_IDENTIFIER = "rds-ca-rsa2048-g1"
RDS_CA_BUNDLE = Path(__file__).parent / "data" / "rds-ca-rsa2048-g1.pem"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n(?P<body>.*?)\n-----END CERTIFICATE-----", re.S)


def _common_name(region: str) -> str:
    return f"Amazon RDS {region} Root CA RSA2048 G1"


@cache
def _roots() -> dict[str, str]:
    """Region -> PEM of its root, keyed by the common name found in each certificate."""
    roots: dict[str, str] = {}
    for match in _PEM.finditer(RDS_CA_BUNDLE.read_text()):
        der = base64.b64decode(match.group("body"))
        # The subject's common name is stored as plain ASCII inside the DER encoding.
        name = re.search(rb"Amazon RDS ([a-z0-9-]+) Root CA RSA2048 G1", der)
        if name is None:
            raise ValueError(f"{RDS_CA_BUNDLE.name}: a certificate has no RDS root CA name")
        roots[name.group(1).decode()] = match.group(0) + "\n"
    return roots


def vendored_regions() -> list[str]:
    return sorted(_roots())


def root_certificate(region: str) -> str:
    """PEM of the `rds-ca-rsa2048-g1` root for `region` (exactly one certificate)."""
    try:
        return _roots()[region]
    except KeyError:
        raise KeyError(
            f"no {RDS_CA_IDENTIFIER} root for region {region!r} in {RDS_CA_BUNDLE.name}; "
            f"vendored regions: {', '.join(vendored_regions())}"
        ) from None
