"""The catalogue over REST: uploads verified and streamed to the store, served to stations."""

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from firmware_harness import running_firmware, settings_for_tests
from sqlalchemy import update
from test_firmware_campaigns import assert_problem

from csms_core.db import transaction
from csms_firmware.catalogue.models import DownloadLink
from csms_firmware.db import utc_now
from tests.firmware_signing import ec_signer, rsa_signer

CONTENT = b"\x7fELF" + bytes(range(256)) * 64


def form(content: bytes = CONTENT, **fields: str) -> dict[str, str]:
    return {
        "vendor": "ACME",
        "models": "AC22,AC11",
        "version": "2.0.0",
        "sha256": hashlib.sha256(content).hexdigest(),
        **fields,
    }


async def test_an_image_is_stored_by_its_hash_and_listed(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        response = await harness.api.post(
            "/firmware/images",
            data=form(release_notes="faster boot"),
            files={"file": ("acme fw/2.0.0.bin", CONTENT)},
        )
        assert response.status_code == 201, response.text
        image = response.json()
        assert image["sha256"] == hashlib.sha256(CONTENT).hexdigest()
        assert image["md5"] == hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()
        assert image["size"] == len(CONTENT) and image["models"] == ["AC11", "AC22"]
        assert image["filename"] == "2.0.0.bin"
        path = harness.service.store.path(image["sha256"])
        assert path is not None and path.read_bytes() == CONTENT
        await harness.boot("CP-1", "2.0.0")
        await harness.boot("CP-2", "1.0.0")
        await harness.boot("CP-3", "1.0.0", model="OTHER")
        await harness.settle()
        listed = (await harness.api.get("/firmware/images", params={"model": "AC22"})).json()
        assert [(i["image_id"], i["stations"]) for i in listed["items"]] == [(image["image_id"], 1)]
        running = (await harness.api.get(f"/firmware/images/{image['image_id']}/stations")).json()
        assert [s["station_id"] for s in running["items"]] == ["CP-1"]
        outdated = (await harness.api.get("/firmware/outdated")).json()
        assert [(s["station_id"], s["newest_version"]) for s in outdated["items"]] == [
            ("CP-2", "2.0.0")
        ]
        [event] = harness.events("firmware.image.added")
        assert event.data["image_id"] == image["image_id"] and event.data["signed"] is False


async def test_a_wrong_checksum_stores_nothing(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        response = await harness.api.post(
            "/firmware/images",
            data=form(sha256="0" * 64),
            files={"file": ("fw.bin", CONTENT)},
        )
        body = assert_problem(response, 422, "checksum-mismatch")
        assert body["actual"] == hashlib.sha256(CONTENT).hexdigest()
        assert (await harness.api.get("/firmware/images")).json()["total"] == 0
        assert harness.service.store.path(body["actual"]) is None
        assert list((harness.service.settings.store_dir / "incoming").iterdir()) == []


async def test_a_wrong_md5_is_refused_too(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        fields = form(md5="0" * 32)
        del fields["sha256"]
        response = await harness.api.post(
            "/firmware/images", data=fields, files={"file": ("fw.bin", CONTENT)}
        )
        assert_problem(response, 422, "checksum-mismatch")


@pytest.mark.parametrize(
    ("fields", "drop"),
    [
        ({}, "sha256"),  # no checksum to verify against
        ({"signature": "c2ln"}, None),  # a signature without its certificate
        ({"version": ""}, None),
        ({"unknown": "x"}, None),
    ],
)
async def test_bad_metadata_is_refused(
    fields: dict[str, str], drop: str | None, tmp_path: Path
) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        data = form(CONTENT, **fields)
        if drop is not None:
            del data[drop]
        response = await harness.api.post(
            "/firmware/images", data=data, files={"file": ("fw.bin", CONTENT)}
        )
        assert_problem(response, 422, "invalid-request")


async def test_a_signed_image_is_checked_against_its_certificate(tmp_path: Path) -> None:
    """RSA-PSS and ECDSA signatures over the file are verified on upload; one over other
    bytes, a certificate that is none, a signature that is no base64 are refused: stations
    would answer InvalidSignature (TC_081, TC_L_06) on every one of them."""
    rsa, ec = rsa_signer(), ec_signer()
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        for version, signer in (("2.0.0", rsa), ("2.0.1", ec)):
            fields = form(
                version=version,
                signature=signer.sign(CONTENT),
                signing_certificate=signer.certificate_pem,
            )
            response = await harness.api.post(
                "/firmware/images", data=fields, files={"file": ("fw.bin", CONTENT)}
            )
            assert response.status_code == 201, response.text
            assert response.json()["signed"] is True
        for fields, kind in (
            ({"signature": rsa.sign(CONTENT + b"tampered")}, "invalid-signature"),
            ({"signature": "not base64!"}, "invalid-signature"),
            (
                {"signing_certificate": "-----BEGIN CERTIFICATE-----\nnope"},
                "invalid-signing-certificate",
            ),
        ):
            data = {
                "signature": rsa.sign(CONTENT),
                "signing_certificate": rsa.certificate_pem,
                **fields,
            }
            response = await harness.api.post(
                "/firmware/images",
                data=form(CONTENT, version="3.0.0", **data),
                files={"file": ("fw.bin", CONTENT)},
            )
            assert_problem(response, 422, kind)
        listed = (await harness.api.get("/firmware/images")).json()
        assert sorted(i["version"] for i in listed["items"]) == ["2.0.0", "2.0.1"]


async def test_no_file_not_multipart_duplicate_and_too_large(tmp_path: object) -> None:
    from pathlib import Path

    from firmware_harness import running_firmware, settings_for_tests

    assert isinstance(tmp_path, Path)
    async with running_firmware(settings_for_tests(tmp_path, max_image_bytes=1000)) as harness:
        api = harness.api
        no_file = await api.post(
            "/firmware/images", data=form(), files={"notes": ("notes.txt", b"no image")}
        )
        assert_problem(no_file, 422, "missing-file")
        assert_problem(
            await api.post("/firmware/images", content=CONTENT), 415, "unsupported-media-type"
        )
        # Found by the REST fuzzing: a header line broken by a bare CR was a 500.
        broken = b"--b1\r\n-2.4695996563773242e+278--b1--\r\n"
        garbled = await api.post(
            "/firmware/images",
            content=broken,
            headers={"content-type": "multipart/form-data; boundary=b1"},
        )
        assert_problem(garbled, 400, "invalid-form")
        small = b"x" * 100
        ok = await api.post("/firmware/images", data=form(small), files={"file": ("a", small)})
        assert ok.status_code == 201
        again = await api.post("/firmware/images", data=form(small), files={"file": ("a", small)})
        assert_problem(again, 409, "image-exists")
        big = b"x" * 5000
        response = await api.post(
            "/firmware/images", data=form(big, version="3"), files={"file": ("b", big)}
        )
        assert_problem(response, 413, "image-too-large")
        assert_problem(await api.get("/firmware/images/nope"), 404, "unknown-image")


async def test_a_station_downloads_at_its_url_until_it_expires(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("CP-1", "1.0.0")
        image = await harness.add_image(CONTENT)
        await harness.settle()
        response = await harness.api.post(
            "/firmware/campaigns", json={"image_id": image["image_id"], "target": {"model": "AC22"}}
        )
        assert response.status_code == 201, response.text
        await harness.plan()
        [command] = harness.stations.sent("CP-1", "UpdateFirmware")
        url = command.payload["firmware"]["location"].removeprefix("http://files.test")
        files = url
        downloaded = await harness.station_http.get(files)
        assert downloaded.status_code == 200 and downloaded.content == CONTENT
        partial = await harness.station_http.get(files, headers={"Range": "bytes=4-7"})
        assert partial.status_code == 206 and partial.content == CONTENT[4:8]
        token = url.split("/")[3]
        guessed = url.replace(token, "x" * len(token))
        assert_problem(await harness.station_http.get(guessed), 404, "unknown-download")
        async with transaction(harness.service.factory) as session:
            await session.exec(update(DownloadLink).values(expires_at=utc_now() - timedelta(1)))
        assert_problem(await harness.station_http.get(files), 410, "download-expired")
