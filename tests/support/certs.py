# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway certificate authority and the certificates the test servers need.

One CA signs three leaves: the server certificate (IP SAN 127.0.0.1, DNS SAN localhost),
a client certificate for mutual TLS, and the certificate whose key signs bearer tokens
(the registry trusts it through ``auth.token.rootcertbundle`` = the CA).
Keys are EC P-256: quick to generate and accepted by Go, OpenSSL and the JWT ES256 algorithm.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
# Certificates start a little in the past so a slow clock on the machine does not reject them.
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class CertBundle:
    """Paths of the PEM files written by :func:`generate_certs`."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    signing_cert: Path
    signing_key: Path


@dataclass(frozen=True)
class _Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airgap.hangar tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
    )


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=sign_certs,
        crl_sign=sign_certs,
        encipher_only=False,
        decipher_only=False,
    )


def _make_ca() -> tuple[x509.Certificate, _Issuer]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("airgap.hangar test CA")
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign_certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, _Issuer(name=name, key=key)


def _make_leaf(
    issuer: _Issuer,
    common_name: str,
    usages: list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(common_name), issuer.name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign_certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer.key, hashes.SHA256()), key


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def generate_certs(directory: Path) -> CertBundle:
    """Create a CA and its server, client and token-signing leaves as PEM files in *directory*."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, issuer = _make_ca()

    server_sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    server_cert, server_key = _make_leaf(
        issuer, "127.0.0.1", [ExtendedKeyUsageOID.SERVER_AUTH], server_sans
    )
    client_cert, client_key = _make_leaf(issuer, "hangar", [ExtendedKeyUsageOID.CLIENT_AUTH])
    # distribution verifies the x5c chain of a token with "any" extended key usage.
    signing_cert, signing_key = _make_leaf(
        issuer, "airgap.hangar token signer", [ExtendedKeyUsageOID.CODE_SIGNING]
    )

    return CertBundle(
        directory=directory,
        ca_cert=_write_cert(directory / "ca.pem", ca_cert),
        ca_key=_write_key(directory / "ca-key.pem", issuer.key),
        server_cert=_write_cert(directory / "server.pem", server_cert),
        server_key=_write_key(directory / "server-key.pem", server_key),
        client_cert=_write_cert(directory / "client.pem", client_cert),
        client_key=_write_key(directory / "client-key.pem", client_key),
        signing_cert=_write_cert(directory / "token-signer.pem", signing_cert),
        signing_key=_write_key(directory / "token-signer-key.pem", signing_key),
    )


def write_cert_dir(bundle: CertBundle, directory: Path, *, client: bool = False) -> Path:
    """Lay out *directory* the way containers-certs.d(5) reads it (skopeo ``--cert-dir``).

    ``*.crt`` files are trusted CAs; ``client.cert`` with ``client.key`` is the client pair.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(bundle.ca_cert.read_bytes())
    if client:
        (directory / "client.cert").write_bytes(bundle.client_cert.read_bytes())
        (directory / "client.key").write_bytes(bundle.client_key.read_bytes())
        (directory / "client.key").chmod(0o600)
    return directory
