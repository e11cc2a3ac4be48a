"""What app code can do to the vault through the bindings, and must not: a listener that falls
behind, listeners that hang, a read asking for 4 GiB."""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading

import vodvault_ffi as vv
from test_vault import APP, Recorder, config


class Stuck(Recorder):
    """Records events, but its first call blocks until `release` is set (an app that does slow
    work on the listener's thread)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def _block(self):
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(120)

    def on_progress(self, progress):
        self._block()
        super().on_progress(progress)

    def on_state_changed(self, asset_id, state, failure):
        self._block()
        super().on_state_changed(asset_id, state, failure)


def test_a_listener_that_falls_behind_is_told_and_gets_every_state_again(tmp_path, origin):
    async def flow():
        vault = await vv.Vault.open(config(tmp_path, vv.generate_key_file(APP), max_parallel_assets=6))
        slow = Stuck()
        handle = vault.add_listener(slow)
        # Far more events than the vault keeps for a listener that does not take them.
        ids = []
        for i in range(300):
            ids.append(await vault.download(vv.DownloadRequest(url=origin.url(f"progressive/sample.mp4?n={i}"), mode=vv.StorageMode.NORMAL)))
        for i in ids:
            assert (await vault.wait(i)).state == vv.AssetState.COMPLETED
        assert slow.entered.is_set()
        slow.release.set()
        for _ in range(200):
            with slow.lock:
                last = {}
                for asset, state, _ in slow.states:
                    last[asset] = state
                if slow.lagged and all(last.get(i) == vv.AssetState.COMPLETED for i in ids):
                    break
            await asyncio.sleep(0.05)
        with slow.lock:
            assert slow.lagged, "the listener is told it fell behind"
            missing = [i for i in ids if last.get(i) != vv.AssetState.COMPLETED]
            assert not missing, f"{len(missing)} completions never reached the listener"
        handle.cancel()
        await vault.shutdown()

    asyncio.run(flow())


def test_listeners_that_hang_do_not_stall_downloads(tmp_path, origin, fixtures):
    async def flow():
        vault = await vv.Vault.open(config(tmp_path, vv.generate_key_file(APP)))
        # More hung listeners than the runtime has blocking threads (512): each holds its own
        # thread, not one the vault's file work needs.
        hung = [Stuck() for _ in range(520)]
        handles = [vault.add_listener(h) for h in hung]
        try:
            asset = await vault.download(vv.DownloadRequest(url=origin.url("hls-aes/master.m3u8"), mode=vv.StorageMode.ENCRYPTED))
            done = await asyncio.wait_for(vault.wait(asset), 60)
            assert done.state == vv.AssetState.COMPLETED
            reader = await vault.open_reader(asset, "video/seg-00000.ts")
            assert reader.read_at(0, 1 << 20) == (fixtures / "hls-aes/plain/high/seg-0.ts").read_bytes()
        finally:
            for h in hung:
                h.release.set()
            for h in handles:
                h.cancel()
        await vault.shutdown()

    asyncio.run(flow())


def test_a_read_asking_for_4_gib_allocates_what_the_file_holds(tmp_path, origin, fixtures):
    key = vv.generate_key_file(APP)

    async def download():
        vault = await vv.Vault.open(config(tmp_path, key))
        asset = await vault.download(vv.DownloadRequest(url=origin.url("progressive/sample.mp4"), mode=vv.StorageMode.ENCRYPTED))
        await vault.wait(asset)
        await vault.shutdown()
        return asset

    asset = asyncio.run(download())
    (tmp_path / "app.vvkey").write_bytes(key)
    # In a process that may not map 2 GiB: a read that allocated what it was asked for dies.
    script = textwrap.dedent(
        f"""
        import asyncio, resource, sys
        sys.path.insert(0, {os.path.dirname(vv.__file__)!r})
        import vodvault_ffi as vv
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        async def main():
            vault = await vv.Vault.open(vv.VaultConfig(dir={str(tmp_path / "vault")!r},
                key_file=vv.KeyFileSource.PATH(path={str(tmp_path / "app.vvkey")!r}), app_id={APP!r}))
            reader = await vault.open_reader({asset!r}, "media.mp4")
            data = reader.read_at(0, 0xFFFFFFFF)
            tail = reader.read_at(reader.len() - 10, 0xFFFFFFFF)
            past = reader.read_at(reader.len() + 5, 0xFFFFFFFF)
            print(len(data), len(tail), len(past))
            await vault.shutdown()
        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    size = (fixtures / "progressive/sample.mp4").stat().st_size
    assert out.stdout.split() == [str(size), "10", "0"], out.stdout


def test_a_hook_that_hangs_holds_one_thread_however_often_it_is_called(tmp_path, vod):
    def threads():
        return len(os.listdir("/proc/self/task"))

    class Hanging(vv.CredentialsProvider):
        def __init__(self):
            self.release = threading.Event()
            self.calls = 0

        def credentials(self, reason):
            self.calls += 1
            self.release.wait(120)
            return None

    async def flow():
        vault = await vv.Vault.open(
            vv.VaultConfig(
                dir=str(tmp_path / "vault"),
                key_file=vv.KeyFileSource.BYTES(bytes=vv.generate_key_file(APP)),
                app_id=APP,
                vod=vv.VodConfig(endpoint=vod.endpoint, credentials_timeout_secs=1),
            )
        )
        hung = Hanging()
        vault.set_credentials_provider(hung)
        before = threads()
        for _ in range(6):
            try:
                await vault.prepare("vod:v-multi", [])
                raise AssertionError("no credentials, yet it prepared")
            except vv.VaultError.Credentials as e:
                assert "did not answer within 1 s" in str(e)
        grown = threads() - before
        calls = hung.calls
        hung.release.set()
        assert calls == 1, "later calls wait behind the hung one"
        assert grown <= 2, f"{grown} more threads after 6 calls to a hung hook"
        await vault.shutdown()

    asyncio.run(flow())
