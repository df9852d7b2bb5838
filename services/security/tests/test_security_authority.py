"""The station CA, CSR checks and the signers (local, and EST against a CA on loopback)."""

import asyncio
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csms_security.authority.ca import (
    AuthorityError,
    CertificateUse,
    load_authority,
    load_or_create_authority,
)
from csms_security.authority.csr import CsrRejected, check_csr
from csms_security.authority.signers import EstSigner, LocalSigner, SigningFailed, SigningPending
from tests.pki import (
    EstServer,
    TestCa,
    csr_pem,
    ec_key,
    key_pem,
    pem,
    rsa_key,
    serving,
    tampered_csr_pem,
)

ORG = "Example CPO"
YEAR = timedelta(days=365)
GARBAGE_PEM = "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----"


def test_a_ca_is_created_on_first_start_and_loaded_after(tmp_path: Path) -> None:
    created = load_or_create_authority(tmp_path / "ca", ORG, timedelta(days=3650))
    key_file = tmp_path / "ca" / "ca-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert created.organization == ORG
    again = load_or_create_authority(tmp_path / "ca", "ignored once it exists", YEAR)
    assert again.certificate == created.certificate
    # No temporary files left, nothing but the two.
    assert {p.name for p in (tmp_path / "ca").iterdir()} == {"ca.pem", "ca-key.pem"}


def test_the_ca_key_never_shows_in_its_repr(tmp_path: Path) -> None:
    authority = load_or_create_authority(tmp_path, ORG, YEAR)
    key_text = key_pem(authority.key).decode()
    assert "PRIVATE KEY" not in repr(authority)
    assert key_text.splitlines()[1] not in repr(authority)


async def test_replicas_starting_together_agree_on_one_ca(tmp_path: Path) -> None:
    results = await asyncio.gather(
        *(asyncio.to_thread(load_or_create_authority, tmp_path, ORG, YEAR) for _ in range(4))
    )
    assert len({authority.certificate.fingerprint(hashes.SHA256()) for authority in results}) == 1


def test_the_operators_ca_is_loaded_from_files(tmp_path: Path) -> None:
    root = TestCa.root("Operator Root", ORG)
    sub = root.sub_ca("Operator Station CA", ORG)
    (tmp_path / "ca.pem").write_text(pem(sub.certificate) + pem(root.certificate))
    (tmp_path / "ca-key.pem").write_bytes(key_pem(sub.key))
    authority = load_authority(tmp_path / "ca.pem", tmp_path / "ca-key.pem", None)
    assert authority.certificate == sub.certificate
    # The root stays out of what follows a leaf; the sub-CA goes with it.
    assert authority.issuer_chain() == (sub.certificate,)


def test_an_encrypted_ca_key_needs_its_password(tmp_path: Path) -> None:
    root = TestCa.root("Operator Root", ORG)
    (tmp_path / "ca.pem").write_text(pem(root.certificate))
    (tmp_path / "ca-key.pem").write_bytes(
        root.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    with pytest.raises(AuthorityError, match="cannot load"):
        load_authority(tmp_path / "ca.pem", tmp_path / "ca-key.pem", b"wrong")
    assert load_authority(tmp_path / "ca.pem", tmp_path / "ca-key.pem", b"correct horse")


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(pem(TestCa.root().certificate))
    (tmp_path / "ca-key.pem").write_bytes(key_pem(ec_key()))
    with pytest.raises(AuthorityError, match="does not belong"):
        load_authority(tmp_path / "ca.pem", tmp_path / "ca-key.pem", None)


def test_a_leaf_certificate_is_not_a_ca(tmp_path: Path) -> None:
    root = TestCa.root()
    key = ec_key()
    leaf = root.issue(x509.Name([]), key.public_key())
    (tmp_path / "ca.pem").write_text(pem(leaf))
    (tmp_path / "ca-key.pem").write_bytes(key_pem(key))
    with pytest.raises(AuthorityError, match="not a CA"):
        load_authority(tmp_path / "ca.pem", tmp_path / "ca-key.pem", None)


# -- CSR checks ---------------------------------------------------------------------------------


def test_a_good_csr_passes() -> None:
    csr = check_csr(
        csr_pem("CP-1", ORG), station_id="CP-1", organization=ORG,
        use=CertificateUse.CHARGING_STATION,
    )  # fmt: skip
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"


def test_an_rsa_2048_csr_passes_for_the_station_certificate() -> None:
    text = csr_pem("CP-1", ORG, rsa_key(2048))
    assert check_csr(text, station_id="CP-1", organization=ORG, use=CertificateUse.CHARGING_STATION)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (csr_pem("CP-2", ORG), "InvalidCommonName"),  # someone else's name
        (csr_pem("CP-1", "Other CPO"), "InvalidOrganization"),
        (csr_pem("CP-1", None), "InvalidOrganization"),
        (csr_pem("CP-1", ORG, rsa_key(1024)), "WeakKey"),
        (tampered_csr_pem("CP-1", ORG), "InvalidSignature"),
        (GARBAGE_PEM, "InvalidCSR"),
        ("not a csr at all", "InvalidCSR"),
        ("", "InvalidCSR"),
    ],
    ids=["cn-mismatch", "other-org", "no-org", "rsa-1024", "bad-signature", "garbage-pem",
         "garbage", "empty"],
)  # fmt: skip
def test_tc_a_14_bad_csrs_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(CsrRejected) as rejected:
        check_csr(text, station_id="CP-1", organization=ORG, use=CertificateUse.CHARGING_STATION)
    assert rejected.value.reason == reason
    assert len(rejected.value.reason) <= 20  # statusInfo.reasonCode


def test_a_dsa_key_is_not_accepted() -> None:
    key = dsa.generate_private_key(key_size=2048)
    with pytest.raises(CsrRejected) as rejected:
        check_csr(
            csr_pem("CP-1", ORG, key), station_id="CP-1", organization=ORG,
            use=CertificateUse.CHARGING_STATION,
        )  # fmt: skip
    assert rejected.value.reason == "UnsupportedKey"


def test_a_v2g_csr_names_the_secc_and_needs_an_ec_key() -> None:
    assert check_csr(
        csr_pem("DE*ABC*E1234", ORG), station_id="CP-1", organization=ORG, use=CertificateUse.V2G
    )
    with pytest.raises(CsrRejected) as rejected:
        check_csr(
            csr_pem("CP-1", ORG, rsa_key(2048)), station_id="CP-1", organization=ORG,
            use=CertificateUse.V2G,
        )  # fmt: skip
    assert rejected.value.reason == "UnsupportedKey"


def test_a_bare_base64_der_csr_is_taken_too() -> None:
    text = csr_pem("CP-1", ORG)
    body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    assert check_csr(body, station_id="CP-1", organization=ORG, use=CertificateUse.CHARGING_STATION)


# -- signing ------------------------------------------------------------------------------------


async def test_the_local_signer_issues_a_client_certificate(tmp_path: Path) -> None:
    authority = load_or_create_authority(tmp_path, ORG, YEAR)
    signer = LocalSigner(authority, timedelta(days=90))
    csr = check_csr(
        csr_pem("CP-1", ORG), station_id="CP-1", organization=ORG,
        use=CertificateUse.CHARGING_STATION,
    )  # fmt: skip
    signed = await signer.sign(csr, CertificateUse.CHARGING_STATION)
    leaf = signed.leaf
    leaf.verify_directly_issued_by(authority.certificate)
    assert leaf.subject == csr.subject
    assert leaf.public_key() == csr.public_key()
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not constraints.ca
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert timedelta(days=90) <= lifetime <= timedelta(days=90, minutes=6)
    assert signed.chain == ()  # a self-made root is the trust anchor: nothing follows the leaf
    assert signed.chain_pem == pem(leaf)


async def test_est_signer_enrolls_with_an_external_ca() -> None:
    est = EstServer(TestCa.root("External CA", ORG), credentials=("csms", "s3cret"))
    async with serving(est.app) as url:
        signer = EstSigner(url + est.path, timeout_s=5, auth=("csms", "s3cret"))
        csr = x509.load_pem_x509_csr(csr_pem("CP-1", ORG).encode())
        signed = await signer.sign(csr, CertificateUse.CHARGING_STATION)
        cacerts = await signer.ca_certificates()
        await signer.aclose()
    assert signed.leaf.public_key() == csr.public_key()
    signed.leaf.verify_directly_issued_by(est.ca.certificate)
    assert signed.chain == ()  # the root the server sent along stays out
    assert cacerts == [est.ca.certificate]
    assert len(est.enrolled) == 1


async def test_est_signer_reports_refusal_pending_and_bad_credentials() -> None:
    est = EstServer(TestCa.root("External CA", ORG), credentials=("csms", "s3cret"))
    csr = x509.load_pem_x509_csr(csr_pem("CP-1", ORG).encode())
    async with serving(est.app) as url:
        wrong = EstSigner(url + est.path, timeout_s=5, auth=("csms", "wrong"))
        with pytest.raises(SigningFailed, match="401"):
            await wrong.sign(csr, CertificateUse.CHARGING_STATION)
        await wrong.aclose()
        signer = EstSigner(url + est.path, timeout_s=5, auth=("csms", "s3cret"))
        est.pending = True
        with pytest.raises(SigningPending) as pending:
            await signer.sign(csr, CertificateUse.CHARGING_STATION)
        assert pending.value.retry_after_s == 1.0
        est.pending, est.refuse = False, True
        with pytest.raises(SigningFailed, match="400"):
            await signer.sign(csr, CertificateUse.CHARGING_STATION)
        await signer.aclose()


async def test_est_signer_refuses_a_certificate_for_another_key() -> None:
    """A signer that answers with someone else's certificate is not believed."""
    est = EstServer(TestCa.root("External CA", ORG))
    est.answer_with = est.ca.issue(x509.Name([]), ec_key().public_key())
    async with serving(est.app) as url:
        signer = EstSigner(url + est.path, timeout_s=5)
        with pytest.raises(SigningFailed, match="no certificate for the CSR's key"):
            await signer.sign(
                x509.load_pem_x509_csr(csr_pem("CP-1", ORG).encode()),
                CertificateUse.CHARGING_STATION,
            )
        await signer.aclose()


async def test_est_signer_unreachable_is_a_signing_failure() -> None:
    signer = EstSigner("http://127.0.0.1:9/.well-known/est", timeout_s=1)
    with pytest.raises(SigningFailed, match="unreachable"):
        await signer.sign(
            x509.load_pem_x509_csr(csr_pem("CP-1", ORG).encode()), CertificateUse.CHARGING_STATION
        )
    await signer.aclose()
