"""The local certificate authority that lets the proxy terminate TLS for intercepted hosts.

The CA's private key lives per user, outside every project (as mitmproxy
keeps ``~/.mitmproxy``): the CLI passes its directory in
(``$REWIND_CA_DIR``, else ``$XDG_DATA_HOME/rewind/ca``, else
``~/.local/share/rewind/ca``); this module only takes paths. The directory
holds ``ca.pem`` and ``ca.key`` (mode 0600, directory 0700). A library caller
that gives no directory gets an in-memory CA for the life of the process.
Only the bundle of public certificates is written into ``.rewind/ca/``.
Repositories made before this kept the key in ``.rewind/ca/``:
:func:`migrate_repository_ca` moves it out. For each intercepted host the proxy
mints a leaf certificate signed by it, on first use, and keeps the resulting
server :class:`ssl.SSLContext` for the life of the process. The child learns to
trust the CA through a bundle (the system CAs plus this one) named by
``SSL_CERT_FILE`` and friends, see :mod:`rewind_vcs.proxy.env`.

Keys are EC P-256: minting a leaf takes about a millisecond, and every TLS
client of this era accepts them.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import ssl
import stat
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rewind_vcs.errors import ConfigError

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"

_CA_VALIDITY = datetime.timedelta(days=3650)
_LEAF_BACKDATE = datetime.timedelta(days=1)
_LEAF_VALIDITY = datetime.timedelta(days=365)
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.S)

#: Where system CA bundles usually are, tried after the interpreter's own default.
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSDs
)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _normalise_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ConfigError("cannot mint a certificate for an empty host name")
    return host


def system_ca_files() -> list[str]:
    """The system's CA bundle files that exist (interpreter default, certifi, usual paths)."""
    paths = ssl.get_default_verify_paths()
    candidates: list[str] = [p for p in (paths.cafile, paths.openssl_cafile) if p]
    try:
        import certifi  # optional: present wherever requests or httpx are

        candidates.append(certifi.where())
    except ImportError:
        pass
    candidates.extend(_SYSTEM_BUNDLES)
    seen: set[str] = set()
    found: list[str] = []
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if real not in seen and os.path.isfile(real):
            seen.add(real)
            found.append(candidate)
    return found


class CertificateAuthority:
    """A CA certificate and key; mints leaf certificates for intercepted hosts."""

    def __init__(
        self,
        certificate: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        directory: Path | None = None,
    ) -> None:
        self.certificate = certificate
        self.key = key
        self.directory = directory
        self._leaf_key: ec.EllipticCurvePrivateKey | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    # creating and loading ---------------------------------------------------------

    @classmethod
    def generate(cls, common_name: str = "rewind local CA") -> CertificateAuthority:
        """A new CA in memory (see :meth:`create` to keep it on disk)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rewind"),
            ]
        )
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _LEAF_BACKDATE)
            .not_valid_after(now + _CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def create(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """Generate a CA and write ``ca.pem`` and ``ca.key`` (mode 0600) into ``directory``.

        Refuses to replace an existing CA: clients may already trust it.
        """
        path = Path(directory)
        cert_path, key_path = path / CA_CERT_FILE, path / CA_KEY_FILE
        if cert_path.exists() or key_path.exists():
            raise ConfigError(
                f"a CA already exists in {path}",
                hint="load it, or remove ca.pem and ca.key first to make a new one",
            )
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca = cls.generate()
        key_pem = ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, key_pem)
        finally:
            os.close(fd)
        tmp = cert_path.with_name(CA_CERT_FILE + ".tmp")
        tmp.write_bytes(ca.certificate_pem)
        os.replace(tmp, cert_path)
        ca.directory = path
        return ca

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """Read the CA from ``directory``; tighten ``ca.key`` to mode 0600 if it is looser."""
        path = Path(directory)
        cert_path, key_path = path / CA_CERT_FILE, path / CA_KEY_FILE
        try:
            cert_pem = cert_path.read_bytes()
            key_pem = key_path.read_bytes()
        except FileNotFoundError as e:
            raise ConfigError(
                f"no CA in {path} ({Path(e.filename).name} is missing)",
                hint="run `rewind init` to create one",
            ) from None
        try:
            certificate = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError as e:
            raise ConfigError(f"the CA in {path} is unreadable: {e}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"the CA key in {path} is not an EC key")
        cert_key = certificate.public_key()
        if not isinstance(cert_key, ec.EllipticCurvePublicKey) or (
            key.public_key().public_numbers() != cert_key.public_numbers()
        ):
            raise ConfigError(f"the CA key in {path} does not match ca.pem")
        mode = stat.S_IMODE(key_path.stat().st_mode)
        if mode & 0o077:
            os.chmod(key_path, 0o600)
        return cls(certificate, key, path)

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """Load the CA, or create it; two processes racing here end with one CA (an ``flock``)."""
        import fcntl

        path = Path(directory)
        if (path / CA_CERT_FILE).exists() and (path / CA_KEY_FILE).exists():
            return cls.load(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (path / CA_CERT_FILE).exists() and (path / CA_KEY_FILE).exists():
                return cls.load(path)
            return cls.create(path)

    # the CA -----------------------------------------------------------------------

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_path(self) -> Path | None:
        return self.directory / CA_CERT_FILE if self.directory is not None else None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the CA certificate (DER), hex."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    # leaf certificates ------------------------------------------------------------

    def mint_leaf(self, host: str) -> tuple[bytes, bytes]:
        """A new leaf certificate for ``host`` (DNS name or IP): ``(chain PEM, key PEM)``."""
        host = _normalise_host(host)
        with self._lock:
            if self._leaf_key is None:
                self._leaf_key = ec.generate_private_key(ec.SECP256R1())
            leaf_key = self._leaf_key
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rewind")]
        if len(host) <= 64:  # the upper bound of a common name
            attributes.insert(0, x509.NameAttribute(NameOID.COMMON_NAME, host))
        now = _now()
        not_after = min(now + _LEAF_VALIDITY, self.certificate.not_valid_after_utc)
        ca_ski = self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _LEAF_BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = certificate.public_bytes(serialization.Encoding.PEM) + self.certificate_pem
        key_pem = leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return chain, key_pem

    def leaf_context(self, host: str) -> ssl.SSLContext:
        """A server TLS context presenting a leaf for ``host`` (minted once, then cached).

        ALPN offers ``http/1.1`` only: the proxy speaks HTTP/1.1 to clients.
        """
        host = _normalise_host(host)
        context = self._contexts.get(host)
        if context is not None:
            return context
        chain, key_pem = self.mint_leaf(host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        # load_cert_chain reads files only: a private directory, removed at once.
        with tempfile.TemporaryDirectory(prefix="rewind-leaf-") as tmp:
            cert_file = os.path.join(tmp, "leaf.pem")
            key_file = os.path.join(tmp, "leaf.key")
            with open(os.open(cert_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(chain)
            with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(key_pem)
            context.load_cert_chain(cert_file, key_file)
        with self._lock:
            return self._contexts.setdefault(host, context)

    # the bundle clients trust -----------------------------------------------------

    def write_bundle(
        self, path: str | os.PathLike[str], sources: Iterable[str] | None = None
    ) -> Path:
        """Write a PEM bundle: the system CAs (``sources``, default :func:`system_ca_files`)
        plus this CA, each certificate once. Returns the path.

        Point ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` and
        ``NODE_EXTRA_CA_CERTS`` at it: the child then trusts both the real
        internet and the proxy's minted leaves.
        """
        target = Path(path)
        seen: set[bytes] = set()
        blocks: list[bytes] = []
        for source in system_ca_files() if sources is None else sources:
            try:
                data = Path(source).read_bytes()
            except OSError:
                continue
            for match in _PEM_CERT.finditer(data):
                block = match.group(0).replace(b"\r\n", b"\n")
                digest = hashlib.sha256(block).digest()
                if digest not in seen:
                    seen.add(digest)
                    blocks.append(block)
        own = self.certificate_pem.strip()
        if hashlib.sha256(own).digest() not in seen:
            blocks.append(b"# rewind local CA, sha256 " + self.fingerprint.encode() + b"\n" + own)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(b"\n".join(blocks) + b"\n")
        os.replace(tmp, target)
        return target


def migrate_repository_ca(repository_ca: str | os.PathLike[str], user_ca: str | os.PathLike[str]) -> bool:
    """Move a CA key kept inside a repository (``.rewind/ca/``, before keys moved out) to ``user_ca``.

    When ``user_ca`` holds no CA yet, the repository's ``ca.pem`` and ``ca.key``
    move there (so clients that trusted it keep working); when it already has
    one, the repository's copy is deleted. Returns True when something moved
    or was deleted (the caller says so, once: the next call finds nothing).
    """
    old, new = Path(repository_ca), Path(user_ca)
    old_key, old_cert = old / CA_KEY_FILE, old / CA_CERT_FILE
    if not old_key.exists():
        return False
    import fcntl
    import shutil

    new.parent.mkdir(parents=True, exist_ok=True)
    with open(new.parent / f".{new.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not old_key.exists():  # another process moved it meanwhile
            return False
        if not (new / CA_KEY_FILE).exists() and not (new / CA_CERT_FILE).exists() and old_cert.exists():
            try:
                CertificateAuthority.load(old)  # only a valid CA moves; a broken one is just removed
                new.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(new, 0o700)
                for name in (CA_KEY_FILE, CA_CERT_FILE):
                    tmp = new / f"{name}.migrating"
                    shutil.copyfile(old / name, tmp)
                    os.chmod(tmp, 0o600 if name == CA_KEY_FILE else 0o644)
                    os.replace(tmp, new / name)
            except ConfigError:
                pass
        old_key.unlink()
        old_cert.unlink(missing_ok=True)
    return True
