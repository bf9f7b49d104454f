"""Certificates for the TLS mode: a CA, a server certificate for 127.0.0.1, a client certificate.

Owns generating them with ``cryptography`` (EC P-256, valid one day) into a directory and the
server-side ``ssl.SSLContext``: the client certificate is requested and, when sent, must chain
to the CA; a request without one must carry the bearer token (checked by the server), as on a
real API server with client-certificate and token authentication.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "make_tls", "server_context"]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_file: Path
    server_cert: Path
    server_key: Path
    cert_file: Path  # client
    key_file: Path  # client


def _name(common: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    usage: x509.ObjectIdentifier | None = None,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage_ext = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage_ext, critical=True)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls(folder: Path) -> TlsFiles:
    """Generate a CA, a server pair and a client pair (``system:masters``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("fake-kubernetes-ca")
    ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _issue(
        _name("kube-apiserver"),
        server_key,
        ca_name,
        ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        server=True,
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _issue(
        _name("skyrunner-test", "system:masters"),
        client_key,
        ca_name,
        ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    files = TlsFiles(
        folder / "ca.crt",
        folder / "apiserver.crt",
        folder / "apiserver.key",
        folder / "client.crt",
        folder / "client.key",
    )
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(files.server_key, server_key)
    files.cert_file.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key_file, client_key)
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """Return the server context: our certificate, client certificates optional but verified."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca_file))
    context.load_cert_chain(str(files.server_cert), str(files.server_key))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context
