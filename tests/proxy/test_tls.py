"""The local CA: files and modes, leaf certificates that real TLS clients accept, the bundle."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import stat
import threading

import pytest
from cryptography import x509

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy.tls import CertificateAuthority, system_ca_files


def handshake(ca: CertificateAuthority, host: str, cafile: str) -> tuple[dict, str | None]:
    """A real TLS handshake on loopback against ``ca.leaf_context(host)``: (peer cert, ALPN)."""
    server_context = ca.leaf_context(host)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=cafile)
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            with client_context.wrap_socket(sock, server_hostname=host) as tls:
                result = tls.getpeercert(), tls.selected_alpn_protocol()
                tls.sendall(b"x")
        return result
    finally:
        thread.join(5)
        listener.close()


def test_create_writes_the_files_with_private_modes(tmp_path):
    ca = CertificateAuthority.create(tmp_path / "ca")
    key = tmp_path / "ca" / "ca.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    assert (tmp_path / "ca" / "ca.pem").read_bytes() == ca.certificate_pem
    assert b"PRIVATE KEY" in key.read_bytes()
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True


def test_create_refuses_to_replace_a_ca_and_load_reads_it_back(tmp_path):
    ca = CertificateAuthority.create(tmp_path)
    with pytest.raises(ConfigError):
        CertificateAuthority.create(tmp_path)
    loaded = CertificateAuthority.load(tmp_path)
    assert loaded.fingerprint == ca.fingerprint
    assert CertificateAuthority.load_or_create(tmp_path).fingerprint == ca.fingerprint
    assert loaded.cert_path == tmp_path / "ca.pem"


def test_load_tightens_a_loose_key_mode(tmp_path):
    CertificateAuthority.create(tmp_path)
    os.chmod(tmp_path / "ca.key", 0o644)
    CertificateAuthority.load(tmp_path)
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="rewind init"):
        CertificateAuthority.load(tmp_path)
    CertificateAuthority.create(tmp_path / "a")
    CertificateAuthority.create(tmp_path / "b")
    (tmp_path / "a" / "ca.key").write_bytes((tmp_path / "b" / "ca.key").read_bytes())
    with pytest.raises(ConfigError, match="does not match"):
        CertificateAuthority.load(tmp_path / "a")
    (tmp_path / "b" / "ca.pem").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="unreadable"):
        CertificateAuthority.load(tmp_path / "b")


@pytest.mark.parametrize("host", ["api.openai.com", "localhost", "127.0.0.1"])
def test_leaf_passes_a_real_tls_handshake(tmp_path, host):
    ca = CertificateAuthority.create(tmp_path)
    cert, alpn = handshake(ca, host, str(tmp_path / "ca.pem"))
    assert alpn == "http/1.1"
    kind = "IP Address" if host[0].isdigit() else "DNS"
    assert cert["subjectAltName"] == ((kind, host),)
    issuer = dict(x[0] for x in cert["issuer"])
    assert issuer["commonName"] == "rewind local CA"


def test_leaf_is_refused_by_a_client_that_does_not_trust_the_ca(tmp_path):
    ca = CertificateAuthority.create(tmp_path / "one")
    other = CertificateAuthority.create(tmp_path / "two")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ca, "api.openai.com", str(other.cert_path))


def test_leaf_validity_and_caching(tmp_path):
    ca = CertificateAuthority.generate()
    chain, _key = ca.mint_leaf("API.OpenAI.com")
    leaf = x509.load_pem_x509_certificates(chain)[0]
    now = datetime.datetime.now(datetime.UTC)
    assert now - datetime.timedelta(days=1, minutes=5) < leaf.not_valid_before_utc < now
    assert (leaf.not_valid_after_utc - now).days in (364, 365)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.openai.com"]
    assert leaf.issuer == ca.certificate.subject
    assert ca.leaf_context("api.openai.com") is ca.leaf_context("[API.openai.com]")


def test_bundle_has_the_system_cas_and_rewind_once(tmp_path):
    ca = CertificateAuthority.create(tmp_path / "ca")
    other = CertificateAuthority.generate("some system root")
    system = tmp_path / "system.pem"
    system.write_bytes(other.certificate_pem + other.certificate_pem.replace(b"\n", b"\r\n"))
    bundle = ca.write_bundle(
        tmp_path / "out" / "bundle.pem", sources=[str(system), str(tmp_path / "missing")]
    )
    certs = x509.load_pem_x509_certificates(bundle.read_bytes())
    assert [c.subject for c in certs] == [other.certificate.subject, ca.certificate.subject]
    # a second bundle built over the first keeps a single copy of rewind's CA
    again = ca.write_bundle(tmp_path / "again.pem", sources=[str(bundle)])
    assert len(x509.load_pem_x509_certificates(again.read_bytes())) == 2
    # ssl accepts it as a CA file
    ssl.create_default_context(cafile=str(bundle))


def test_default_bundle_includes_the_system_store(tmp_path):
    if not system_ca_files():
        pytest.skip("no system CA bundle on this machine")
    ca = CertificateAuthority.create(tmp_path / "ca")
    bundle = ca.write_bundle(tmp_path / "bundle.pem").read_bytes()
    assert bundle.count(b"-----BEGIN CERTIFICATE-----") > 10
    last = bundle[bundle.rindex(b"-----BEGIN CERTIFICATE-----") :]
    assert x509.load_pem_x509_certificate(last).subject == ca.certificate.subject
