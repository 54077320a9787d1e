"""The vendored RDS root certificates: genuine roots of the right CA, for every stack's region."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from components.rds_ca import RDS_CA_BUNDLE, root_certificate, vendored_regions
from tests.conftest import ROOT, STACKS, TODAY
from tools.engine import read_stack_config

CERTIFICATES = x509.load_pem_x509_certificates(RDS_CA_BUNDLE.read_bytes())


def _common_name(certificate: x509.Certificate) -> str:
    return certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_one_root_per_region():
    names = [_common_name(c) for c in CERTIFICATES]
    assert len(names) == len(set(names)) == len(vendored_regions()) == 30
    for name in names:
        assert re.fullmatch(r"Amazon RDS [a-z]{2}-[a-z]+-\d Root CA RSA2048 G1", name), name


@pytest.mark.parametrize("certificate", CERTIFICATES, ids=_common_name)
def test_each_certificate_is_a_valid_self_signed_rsa_2048_root(certificate):
    assert certificate.issuer == certificate.subject
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    public_key.verify(certificate.signature, certificate.tbs_certificate_bytes,
                      padding.PKCS1v15(), certificate.signature_hash_algorithm)
    assert certificate.not_valid_before_utc.date() <= TODAY
    assert certificate.not_valid_after_utc.date() >= dt.date(2060, 1, 1)
    org = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert org == "Amazon RDS"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_region_has_its_root_and_it_is_exactly_one_certificate(stack):
    region = read_stack_config(ROOT, stack)["aws:region"]
    pem = root_certificate(region)
    certificates = x509.load_pem_x509_certificates(pem.encode())
    assert len(certificates) == 1  # Prisma's sslcert reads only the first certificate
    assert _common_name(certificates[0]) == f"Amazon RDS {region} Root CA RSA2048 G1"


def test_unknown_region_is_a_clear_error():
    with pytest.raises(KeyError, match="no rds-ca-rsa2048-g1 root for region 'mars-east-1'"):
        root_certificate("mars-east-1")
