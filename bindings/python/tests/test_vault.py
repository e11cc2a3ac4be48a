"""The app flow through the Python bindings: key files, prepare, download with a listener,
pause and resume, playback over HTTP, the reader, and the errors an app must tell apart."""

import asyncio
import threading
import urllib.request

import pytest
import vodvault_ffi as vv

APP = "com.example.vodvault.python"


class Recorder(vv.VaultListener):
    def __init__(self):
        self.progress = []
        self.states = []
        self.removed = []
        self.integrity = []
        self.missing_images = []
        self.lagged = []
        self.lock = threading.Lock()

    def on_progress(self, progress):
        with self.lock:
            self.progress.append(progress)

    def on_state_changed(self, asset_id, state, failure):
        with self.lock:
            self.states.append((asset_id, state, failure))

    def on_removed(self, asset_id):
        with self.lock:
            self.removed.append(asset_id)

    def on_integrity_failure(self, asset_id, file):
        with self.lock:
            self.integrity.append((asset_id, file))

    def on_image_missing(self, asset_id, image):
        with self.lock:
            self.missing_images.append((asset_id, image))

    def on_fetched_for_playback(self, asset_id, file):
        pass

    def on_lagged(self, missed):
        with self.lock:
            self.lagged.append(missed)


class Refresher(vv.UrlRefresher):
    def __init__(self, fresh):
        self.fresh = fresh
        self.calls = []

    def refresh_url(self, request):
        self.calls.append(request)
        return self.fresh


def config(tmp_path, key, **kw):
    return vv.VaultConfig(dir=str(tmp_path / "vault"), key_file=vv.KeyFileSource.BYTES(bytes=key), app_id=APP, **kw)


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def test_key_files(tmp_path):
    key = vv.generate_key_file(APP)
    info = vv.inspect_key_file(key)
    assert info.app_id == APP and info.version == 1 and len(info.key_id) == 16
    assert vv.validate_key_file(key, APP).key_id == info.key_id
    with pytest.raises(vv.VaultError.InvalidKeyFile) as e:
        vv.validate_key_file(key, "com.example.other")
    assert "belongs to app id" in str(e.value)
    damaged = bytearray(key)
    damaged[40] ^= 1
    with pytest.raises(vv.VaultError.InvalidKeyFile) as e:
        vv.inspect_key_file(bytes(damaged))
    assert "corrupted" in str(e.value)
    with pytest.raises(vv.VaultError.InvalidKeyFile):
        vv.generate_key_file("not an app id")


def test_a_key_file_bound_to_two_signers_opens_only_for_them(tmp_path):
    signers = ["11" * 32, ":".join(["AB"] * 32)]
    bound = vv.generate_bound_key_file(APP, signers)
    info = vv.inspect_key_file(bound)
    assert info.version == 2 and sorted(info.signers) == ["11" * 32, "ab" * 32]

    async def flow():
        for signer in signers:
            vault = await vv.Vault.open(config(tmp_path, bound, signing_cert_sha256=signer))
            await vault.shutdown()
        with pytest.raises(vv.VaultError.SignerMismatch) as e:
            await vv.Vault.open(config(tmp_path, bound, signing_cert_sha256="22" * 32))
        assert "not one of the 2" in str(e.value)
        with pytest.raises(vv.VaultError.SignerMismatch):
            await vv.Vault.open(config(tmp_path, bound))
        with pytest.raises(vv.VaultError.InvalidKeyFile):
            vv.generate_bound_key_file(APP, ["not hex"])
        # A version 1 key file (no signers) opens whatever the app says.
        old = vv.generate_key_file(APP)
        assert vv.inspect_key_file(old).signers == []
        import shutil

        shutil.rmtree(tmp_path / "vault")
        for signer in (None, "22" * 32):
            vault = await vv.Vault.open(config(tmp_path, old, signing_cert_sha256=signer))
            await vault.shutdown()

    asyncio.run(flow())


def test_the_speed_cap_is_set_at_open_and_changed_at_run_time(tmp_path):
    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(config(tmp_path, key, max_rate=2 << 20))
        assert vault.max_rate() == 2 << 20
        vault.set_max_rate(512 << 10)
        assert vault.max_rate() == 512 << 10
        vault.set_max_rate(None)
        assert vault.max_rate() is None
        await vault.shutdown()

    asyncio.run(flow())


def test_the_app_flow(tmp_path, origin, fixtures):
    async def flow():
        key = vv.generate_key_file(APP)
        path = tmp_path / "app.vvkey"
        path.write_bytes(key)
        vault = await vv.Vault.open(
            vv.VaultConfig(dir=str(tmp_path / "vault"), key_file=vv.KeyFileSource.PATH(path=str(path)), app_id=APP)
        )
        assert vault.key_id() == vv.inspect_key_file(key).key_id

        info = await vault.prepare(origin.url("hls-aes/master.m3u8"), [])
        assert isinstance(info, vv.SourceInfo.HLS) and info.master
        assert [v.height for v in info.variants] == [90, 144, 180]
        assert {r.name for r in info.renditions} == {"English", "Deutsch"}

        recorder = Recorder()
        handle = vault.add_listener(recorder)
        origin.delay = 0.6  # slow enough that the pause lands before the end, even on a loaded machine
        asset = await vault.download(
            vv.DownloadRequest(url=origin.url("hls-aes/master.m3u8"), mode=vv.StorageMode.ENCRYPTED, title="Film")
        )
        # Asked of the vault, not of the listener (whose events arrive in order, but not at once).
        for _ in range(400):
            if (await vault.asset(asset)).segments_done >= 2:
                break
            await asyncio.sleep(0.025)
        await vault.pause(asset)
        paused = await vault.asset(asset)
        assert paused.state == vv.AssetState.PAUSED and paused.segments_done < paused.segments_total
        origin.delay = 0.0
        await vault.resume(asset)
        done = await vault.wait(asset)
        assert done.state == vv.AssetState.COMPLETED and done.title == "Film" and done.mode == vv.StorageMode.ENCRYPTED
        assert done.bytes_done == done.bytes_expected and done.expected_exact
        await asyncio.sleep(0.2)
        with recorder.lock:
            progress = [p for p in recorder.progress if p.id == asset]
            states = [s for (i, s, _) in recorder.states if i == asset]
        assert progress and all(a.bytes_done <= b.bytes_done for a, b in zip(progress, progress[1:]))
        assert vv.AssetState.PAUSED in states and states[-1] == vv.AssetState.COMPLETED

        session = await vault.play(asset)
        status, master = await asyncio.to_thread(get, session.url())
        assert status == 200 and b"video/index.m3u8" in master
        _, seg = await asyncio.to_thread(get, session.base_url() + "video/seg-00001.ts")
        assert seg == (fixtures / "hls-aes/plain/high/seg-1.ts").read_bytes()

        reader = await vault.open_reader(asset, "video/seg-00000.ts")
        plain = (fixtures / "hls-aes/plain/high/seg-0.ts").read_bytes()
        assert reader.len() == len(plain) and reader.content_type() == "video/mp2t"
        assert reader.read_at(1000, 5000) == plain[1000:6000]
        assert reader.plain_path() is None
        assert await vault.verify(asset) == []
        assert "video/seg-00003.ts" in await vault.files(asset)

        session.revoke()
        with pytest.raises(urllib.error.HTTPError) as e:
            await asyncio.to_thread(get, session.url())
        assert e.value.code == 404
        handle.cancel()
        assert [a.id for a in await vault.assets()] == [asset]
        await vault.remove(asset)
        with pytest.raises(vv.VaultError.NotFound):
            await vault.asset(asset)
        await vault.shutdown()

    asyncio.run(flow())


def test_a_dash_source_lists_downloads_and_plays_as_mpd_and_as_hls(tmp_path, origin, fixtures):
    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(
            vv.VaultConfig(dir=str(tmp_path / "vault"), key_file=vv.KeyFileSource.BYTES(bytes=key), app_id=APP)
        )
        url = origin.url("dash/timeline/manifest.mpd")
        info = await vault.prepare(url, [])
        assert isinstance(info, vv.SourceInfo.DASH) and info.periods == 1
        kinds = [(s.content_type, s.language) for s in info.adaptation_sets]
        assert kinds == [("video", "und"), ("audio", "eng"), ("audio", "deu"), ("text", "en")]
        video = info.adaptation_sets[0].representations[0]
        assert (video.width, video.height, video.codecs) == (256, 144, "avc1.4d400c")
        assert video.size is not None and not video.size_exact  # bandwidth x duration

        asset = await vault.download(
            vv.DownloadRequest(
                url=url,
                mode=vv.StorageMode.ENCRYPTED,
                audio=vv.AudioSelection.LANGUAGES(languages=["deu"]),
            )
        )
        done = await vault.wait(asset)
        assert done.state == vv.AssetState.COMPLETED and done.kind == vv.AssetKind.DASH
        session = await vault.play(asset)
        assert session.url().endswith("/manifest.mpd")
        assert session.hls_url() == session.base_url() + "index.m3u8"
        status, mpd = await asyncio.to_thread(get, session.url())
        assert status == 200 and b"<SegmentTimeline>" in mpd and b'lang="deu"' in mpd
        status, master = await asyncio.to_thread(get, session.base_url() + "index.m3u8")
        assert status == 200 and b'TYPE=AUDIO,GROUP-ID="audio"' in master and b'LANGUAGE="deu"' in master
        _, seg = await asyncio.to_thread(get, session.base_url() + "audio-1/seg-00000.m4s")
        assert seg == (fixtures / "dash/timeline/chunk-stream2-00001.m4s").read_bytes()
        await vault.shutdown()

    asyncio.run(flow())


def test_errors_an_app_tells_apart(tmp_path, origin):
    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(config(tmp_path, key))
        # A source that is not there: its status.
        with pytest.raises(vv.VaultError.HttpStatus) as gone:
            await vault.download(vv.DownloadRequest(url=origin.url("missing/live.m3u8"), mode=vv.StorageMode.NORMAL))
        assert gone.value.status == 404
        # An expired URL with no refresh hook: the download fails, saying why.
        asset = await vault.download(vv.DownloadRequest(url=origin.url("old/hls-aes/master.m3u8"), mode=vv.StorageMode.NORMAL))
        with pytest.raises(vv.VaultError.Failed) as failed:
            await vault.wait(asset)
        assert isinstance(failed.value.reason, vv.FailureReason.URL_EXPIRED)
        failed = await vault.asset(asset)
        assert failed.state == vv.AssetState.FAILED and isinstance(failed.failure, vv.FailureReason.URL_EXPIRED)
        # With a refresh hook it continues from the fresh URL.
        refresher = Refresher(origin.url("new/hls-aes/master.m3u8"))
        vault.set_refresher(refresher)
        await vault.resume(asset)
        assert (await vault.wait(asset)).state == vv.AssetState.COMPLETED
        assert refresher.calls and refresher.calls[0].status == 403
        # An error page served with 200 as a video: refused, saying what it is; nothing stored.
        with pytest.raises(vv.VaultError.BadSource) as refused:
            await vault.prepare(origin.url("error-page.mp4"), [])
        assert "an HTML page" in str(refused.value)
        with pytest.raises(vv.VaultError.BadSource):
            await vault.download(vv.DownloadRequest(url=origin.url("error-page.mp4"), mode=vv.StorageMode.NORMAL))
        assert len(await vault.assets()) == 1
        with pytest.raises(vv.VaultError.InvalidRequest):
            await vault.download(vv.DownloadRequest(url="ftp://example.com/x", mode=vv.StorageMode.NORMAL))
        with pytest.raises(vv.VaultError.InvalidRequest):
            await vault.download(vv.DownloadRequest(url=origin.url("hls-aes/master.m3u8"), mode=vv.StorageMode.NORMAL, quality="fast"))
        await vault.shutdown()

        # The same vault with another key file: refused, typed.
        with pytest.raises(vv.VaultError.KeyMismatch):
            await vv.Vault.open(config(tmp_path, vv.generate_key_file(APP)))
        # A key file of another app.
        with pytest.raises(vv.VaultError.InvalidKeyFile):
            await vv.Vault.open(config(tmp_path, vv.generate_key_file("com.example.other")))

    asyncio.run(flow())


def test_rotating_the_key_file_keeps_encrypted_assets(tmp_path, origin, fixtures):
    async def flow():
        old = vv.generate_key_file(APP)
        vault = await vv.Vault.open(config(tmp_path, old))
        asset = await vault.download(vv.DownloadRequest(url=origin.url("progressive/sample.mp4"), mode=vv.StorageMode.ENCRYPTED))
        await vault.wait(asset)
        await vault.shutdown()
        sealed = (tmp_path / "vault" / "assets" / asset / "media.mp4.vvs").read_bytes()
        new = vv.generate_key_file(APP)
        key_id = await vv.rotate_vault_key(str(tmp_path / "vault"), APP, old, new)
        assert key_id == vv.inspect_key_file(new).key_id
        assert (tmp_path / "vault" / "assets" / asset / "media.mp4.vvs").read_bytes() == sealed, "media untouched"
        with pytest.raises(vv.VaultError.KeyMismatch):
            await vv.Vault.open(config(tmp_path, old))
        vault = await vv.Vault.open(config(tmp_path, new))
        reader = await vault.open_reader(asset, "media.mp4")
        assert reader.read_at(0, 1 << 20) == (fixtures / "progressive/sample.mp4").read_bytes()
        assert (await vault.asset(asset)).key_id == key_id
        await vault.shutdown()

    asyncio.run(flow())


def test_queue_controls_offline_expiry_and_removal_events(tmp_path, origin):
    async def flow():
        vault = await vv.Vault.open(config(tmp_path, vv.generate_key_file(APP)))
        recorder = Recorder()
        handle = vault.add_listener(recorder)  # delivery stops when the handle is dropped
        origin.delay = 0.2
        a = await vault.download(vv.DownloadRequest(url=origin.url("hls-aes/master.m3u8"), mode=vv.StorageMode.ENCRYPTED))
        b = await vault.download(vv.DownloadRequest(url=origin.url("hls-aes/low/index.m3u8"), mode=vv.StorageMode.NORMAL))
        await vault.pause_all()
        states = {i.id: i.state for i in await vault.assets()}
        assert states == {a: vv.AssetState.PAUSED, b: vv.AssetState.PAUSED}, states
        await vault.cancel(b)
        cancelled = await vault.asset(b)
        assert cancelled.state == vv.AssetState.CANCELLED and cancelled.bytes_done == 0
        assert not (tmp_path / "vault" / "assets" / b).exists() or not any((tmp_path / "vault" / "assets" / b).iterdir())
        origin.delay = 0.0
        assert await vault.resume_all() == [a], "a cancelled download stays cancelled"
        assert (await vault.wait(a)).state == vv.AssetState.COMPLETED

        # Offline expiry: a past deadline refuses playback with a typed error; clearing it plays again.
        reader = await vault.open_reader(a, "video/seg-00000.ts")
        assert reader.len() > 0 and not reader.is_empty()
        await vault.set_offline_until(a, 1_000)
        with pytest.raises(vv.VaultError.OfflineExpired):
            await vault.play(a)
        with pytest.raises(vv.VaultError.OfflineExpired):
            await vault.open_reader(a, "video/seg-00000.ts")
        await vault.set_offline_until(a, None)
        session = await vault.play(a)
        status, _ = await asyncio.to_thread(get, session.url())
        assert status == 200

        await vault.remove_all()
        assert await vault.assets() == []
        await asyncio.sleep(0.2)
        with recorder.lock:
            assert sorted(recorder.removed) == sorted([a, b])
            assert (b, vv.AssetState.CANCELLED, None) in recorder.states
        handle.cancel()
        assert not any((tmp_path / "vault" / "assets").iterdir())
        await vault.shutdown()

    asyncio.run(flow())


def test_a_damaged_file_is_an_integrity_error_and_an_event(tmp_path, origin):
    async def flow():
        vault = await vv.Vault.open(config(tmp_path, vv.generate_key_file(APP)))
        recorder = Recorder()
        handle = vault.add_listener(recorder)
        asset = await vault.download(vv.DownloadRequest(url=origin.url("progressive/sample.mp4"), mode=vv.StorageMode.ENCRYPTED))
        await vault.wait(asset)
        sealed = tmp_path / "vault" / "assets" / asset / "media.mp4.vvs"
        data = bytearray(sealed.read_bytes())
        data[200] ^= 0x01  # inside the first chunk
        sealed.write_bytes(bytes(data))

        assert await vault.verify(asset) == ["media.mp4"]
        reader = await vault.open_reader(asset, "media.mp4")
        with pytest.raises(vv.VaultError.Integrity):
            reader.read_at(0, 4096)
        session = await vault.play(asset)
        with pytest.raises(urllib.error.HTTPError) as e:
            await asyncio.to_thread(get, session.url())
        assert e.value.code == 500
        await asyncio.sleep(0.2)
        with recorder.lock:
            assert (asset, "media.mp4") in recorder.integrity
        handle.cancel()
        await vault.shutdown()

    asyncio.run(flow())


def test_extra_roots_are_trusted_and_a_bad_one_is_refused(tmp_path):
    import glob
    import ssl

    async def flow():
        key = vv.generate_key_file(APP)
        with pytest.raises(vv.VaultError.InvalidRequest) as e:
            await vv.Vault.open(config(tmp_path, key, extra_roots=[b"not a certificate"]))
        assert "root certificate" in str(e.value)
        pems = sorted(glob.glob("/etc/ssl/certs/*.pem"))
        if pems:
            der = ssl.PEM_cert_to_DER_cert(open(pems[0]).read())
            vault = await vv.Vault.open(config(tmp_path, key, extra_roots=[der]))
            await vault.shutdown()

    asyncio.run(flow())
