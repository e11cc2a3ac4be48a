"""ApsaraVideo VOD sources through the Python bindings, against the fake VOD API of the Rust
test crate: a credentials provider, prepare, download by video id, images, typed errors."""

import asyncio
import threading
import urllib.request

import pytest
import vodvault_ffi as vv

APP = "com.example.vodvault.python"


class StsProvider(vv.CredentialsProvider):
    """Asks the (fake) app server for STS credentials (and an HLS-encryption token, if it has
    one), recording why it was asked."""

    def __init__(self, vod, hls_uri_token=None):
        self.vod = vod
        self.hls_uri_token = hls_uri_token
        self.reasons = []
        self.lock = threading.Lock()

    def credentials(self, reason):
        with self.lock:
            self.reasons.append(reason)
        c = self.vod.sts()
        return vv.VodCredentials(
            access_key_id=c["AccessKeyId"],
            access_key_secret=c["AccessKeySecret"],
            security_token=c["SecurityToken"],
            hls_uri_token=self.hls_uri_token,
        )


def open_vault(tmp_path, vod, signature=None):
    return vv.Vault.open(
        vv.VaultConfig(
            dir=str(tmp_path / "vault"),
            key_file=vv.KeyFileSource.BYTES(bytes=vv.generate_key_file(APP)),
            app_id=APP,
            vod=vv.VodConfig(endpoint=vod.endpoint, signature=signature),
        )
    )


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def test_download_by_video_id_with_images(tmp_path, vod, fixtures):
    async def flow():
        vault = await open_vault(tmp_path, vod)
        provider = StsProvider(vod)
        vault.set_credentials_provider(provider)

        info = await vault.prepare("vod:v-multi", [])
        assert isinstance(info, vv.SourceInfo.VOD) and info.title == "A film"
        by = {(s.definition, s.format): s for s in info.streams}
        assert "AliyunVoDEncryption" in by[("2K", "m3u8")].unsupported
        assert "flv" in by[("SD", "flv")].unsupported
        assert by[("LD", "m3u8")].unsupported is None and by[("LD", "m3u8")].encrypt_type == "HLSEncryption"

        asset = await vault.download(
            vv.DownloadRequest(url="vod:v-multi", mode=vv.StorageMode.ENCRYPTED, vod=vv.VodOptions(definition="LD"))
        )
        done = await vault.wait(asset)
        assert done.state == vv.AssetState.COMPLETED and done.title == "A film"
        assert done.vod.video_id == "v-multi" and done.vod.definition == "LD" and done.vod.format == "m3u8"
        assert done.vod.job_id == "job-ld" and "auth_key" not in done.source
        reader = await vault.open_reader(asset, "video/seg-00002.ts")
        assert reader.read_at(0, 1 << 20) == (fixtures / "hls-aes/plain/low/seg-2.ts").read_bytes()

        images = await vault.images(asset)
        kinds = [i.kind for i in images]
        assert kinds.count(vv.ImageKind.SNAPSHOT) == 3 and kinds.count(vv.ImageKind.SPRITE_ORIGINAL) == 4
        assert all(i.stored for i in images)
        cover = next(i for i in images if i.kind == vv.ImageKind.COVER)
        assert cover.file == "images/cover.jpg"
        r = await vault.open_reader(asset, cover.file)
        assert r.read_at(0, 1 << 20) == (fixtures / "vod-images/cover.jpg").read_bytes()
        session = await vault.play(asset)
        status, ctype, body = await asyncio.to_thread(get, session.base_url() + "images/sprite-00001.jpg")
        assert (status, ctype) == (200, "image/jpeg") and body == (fixtures / "vod-images/sprite-1.jpg").read_bytes()
        vtt = next(i for i in images if i.kind == vv.ImageKind.WEB_VTT)
        _, _, track = await asyncio.to_thread(get, session.base_url() + vtt.file)
        assert b"sprite-00001.jpg#xywh=0,0,80,45" in track

        assert isinstance(provider.reasons[0], vv.CredentialsReason.INITIAL)
        await vault.shutdown()

    asyncio.run(flow())


def test_the_source_file_and_the_rpc_signature(tmp_path, vod, fixtures):
    async def flow():
        vault = await open_vault(tmp_path, vod, signature=vv.VodSignature.RPC)
        vault.set_credentials_provider(StsProvider(vod))
        asset = await vault.download(
            vv.DownloadRequest(url="vod:v-source", mode=vv.StorageMode.NORMAL, vod=vv.VodOptions(mezzanine=True))
        )
        done = await vault.wait(asset)
        assert done.vod.mezzanine and done.expected_exact
        assert open(done.path, "rb").read() == (fixtures / "progressive/sample.mp4").read_bytes()
        # VOD reports a CRC-64 the file does not have: never completes, typed.
        bad = await vault.download(
            vv.DownloadRequest(url="vod:v-bad-crc", mode=vv.StorageMode.NORMAL, vod=vv.VodOptions(mezzanine=True))
        )
        with pytest.raises(vv.VaultError.Failed) as e:
            await vault.wait(bad)
        assert isinstance(e.value.reason, vv.FailureReason.BAD_SOURCE) and "CRC-64" in e.value.reason.message
        assert isinstance((await vault.asset(bad)).failure, vv.FailureReason.BAD_SOURCE)
        await vault.shutdown()

    asyncio.run(flow())


def test_vod_errors_an_app_tells_apart(tmp_path, vod):
    async def flow():
        vault = await open_vault(tmp_path, vod)
        # No credentials yet.
        with pytest.raises(vv.VaultError.Credentials):
            await vault.prepare("vod:v-multi", [])
        vault.set_credentials_provider(StsProvider(vod))
        with pytest.raises(vv.VaultError.UnsupportedSource) as e:
            await vault.download(vv.DownloadRequest(url="vod:v-locked", mode=vv.StorageMode.NORMAL))
        assert "unsupported encryption" in str(e.value)
        with pytest.raises(vv.VaultError.VodApi) as e:
            await vault.download(vv.DownloadRequest(url="vod:v-nope", mode=vv.StorageMode.NORMAL))
        assert e.value.code == "InvalidVideo.NotFound"
        # A definition the video does not have: VOD says so.
        with pytest.raises(vv.VaultError.VodApi) as e:
            await vault.download(
                vv.DownloadRequest(url="vod:v-multi", mode=vv.StorageMode.NORMAL, vod=vv.VodOptions(definition="4K"))
            )
        assert e.value.code == "InvalidVideo.NoneStream"
        with pytest.raises(vv.VaultError.InvalidRequest):
            await vault.download(
                vv.DownloadRequest(url="https://example.com/a.m3u8", mode=vv.StorageMode.NORMAL, vod=vv.VodOptions())
            )

        # A provider whose credentials VOD refuses: typed, never quoting them.
        class Wrong(vv.CredentialsProvider):
            def credentials(self, reason):
                c = vod.sts()
                self.token = c["SecurityToken"]
                return vv.VodCredentials(
                    access_key_id=c["AccessKeyId"], access_key_secret="wrong", security_token=c["SecurityToken"]
                )

        wrong = Wrong()
        vault.set_credentials_provider(wrong)
        with pytest.raises(vv.VaultError.Credentials) as e:
            await vault.prepare("vod:v-multi", [])
        assert "SignatureDoesNotMatch" in str(e.value) and wrong.token not in str(e.value)
        assert await vault.assets() == []
        await vault.shutdown()

    asyncio.run(flow())


def test_hls_encryption_with_a_token_checking_key_service(tmp_path, fixtures):
    from conftest import FakeVod

    vod = FakeVod(hls_uri_token="tok-py")
    try:

        async def flow():
            # Without the token the key service refuses the keys: a typed failure.
            vault = await open_vault(tmp_path, vod)
            vault.set_credentials_provider(StsProvider(vod))
            asset = await vault.download(
                vv.DownloadRequest(url="vod:v-multi", mode=vv.StorageMode.NORMAL, vod=vv.VodOptions(images=False))
            )
            with pytest.raises(vv.VaultError.Failed) as e:
                await vault.wait(asset)
            assert isinstance(e.value.reason, vv.FailureReason.URL_EXPIRED)
            # With it (handed out with the credentials), the same download resumes and completes.
            vault.set_credentials_provider(StsProvider(vod, hls_uri_token="tok-py"))
            await vault.resume(asset)
            done = await vault.wait(asset)
            assert done.state == vv.AssetState.COMPLETED and "tok-py" not in done.source
            reader = await vault.open_reader(asset, "video/seg-00003.ts")
            assert reader.read_at(0, 1 << 20) == (fixtures / "hls-aes/plain/high/seg-3.ts").read_bytes()
            await vault.shutdown()

        asyncio.run(flow())
    finally:
        vod.close()


def test_a_stale_cover_is_missing_and_the_film_completes(tmp_path, fixtures):
    from conftest import FakeVod

    vod = FakeVod(missing=["vod-images/cover.jpg"])
    try:

        async def flow():
            from test_vault import Recorder

            vault = await open_vault(tmp_path, vod)
            vault.set_credentials_provider(StsProvider(vod))
            events = Recorder()
            handle = vault.add_listener(events)
            asset = await vault.download(
                vv.DownloadRequest(url="vod:v-multi", mode=vv.StorageMode.ENCRYPTED, vod=vv.VodOptions(format="mp4"))
            )
            done = await vault.wait(asset)
            assert done.state == vv.AssetState.COMPLETED
            images = await vault.images(asset)
            cover = next(i for i in images if i.kind == vv.ImageKind.COVER)
            assert not cover.stored and isinstance(cover.missing, vv.FailureReason.HTTP_STATUS)
            assert "images/cover.jpg" in cover.missing.message
            assert all(i.stored and i.missing is None for i in images if i.kind != vv.ImageKind.COVER)
            for _ in range(100):
                if events.missing_images:
                    break
                await asyncio.sleep(0.05)
            assert [(a, i.file) for a, i in events.missing_images] == [(asset, "images/cover.jpg")]
            # The film plays.
            reader = await vault.open_reader(asset, "media.mp4")
            assert reader.read_at(0, 1 << 22) == (fixtures / "progressive/sample.mp4").read_bytes()
            # Still missing, resuming the completed asset tries again and leaves it completed.
            await vault.resume(asset)
            assert (await vault.asset(asset)).state == vv.AssetState.COMPLETED
            handle.cancel()
            await vault.shutdown()

        asyncio.run(flow())
    finally:
        vod.close()
