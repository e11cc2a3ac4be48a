"""What a mobile app tells the vault about the device, and what its downloads require: Wi-Fi only,
charging, battery, no network, free space kept on a real small filesystem, and the quota."""

import asyncio
import json
import pathlib
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest
import vodvault_ffi as vv
from conftest import ROOT
from test_vault import APP, Recorder, config

# Nothing kept free: these tests are about the other requirements (the last ones keep space free).
NO_KEEP = dict(keep_free_percent=0, keep_free_at_least=0, keep_free_at_most=0)
MASTER = "hls-aes/master.m3u8"


async def until(what, check, seconds=20.0):
    """Polls `check` (an async function) until it returns something true; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def media_requests(origin, since=0.0):
    return [p for (t, p) in origin.timed if p.endswith(".ts") and t >= since]


def assert_stored_as_the_source(asset_dir, fixtures):
    """Every video segment in Normal mode is the source's decrypted segment, byte for byte."""
    for n in range(4):
        stored = (asset_dir / "video" / f"seg-{n:05}.ts").read_bytes()
        assert stored == (fixtures / f"hls-aes/plain/high/seg-{n}.ts").read_bytes(), f"segment {n}"


# (requirement, what stops it, the state it waits in, what lets it go on)
HOLDS = {
    "wifi_only": (dict(unmetered_only=True), lambda v: v.set_network(vv.Network.METERED),
                  vv.AssetState.WAITING_FOR_UNMETERED, lambda v: v.set_network(vv.Network.UNMETERED)),
    "charging_only": (dict(charging_only=True), lambda v: v.set_power(False, False),
                      vv.AssetState.WAITING_FOR_CHARGING, lambda v: v.set_power(True, False)),
}


@pytest.mark.parametrize("case", sorted(HOLDS))
def test_a_download_waits_within_a_second_of_a_change_and_goes_on_by_itself(tmp_path, origin, fixtures, case):
    requirement, stop, WAITING, go_on = HOLDS[case]

    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(
            config(tmp_path, key, requirements=vv.Requirements(**requirement, **NO_KEEP),
                   conditions=vv.Conditions(network=vv.Network.UNMETERED))
        )
        recorder = Recorder()
        handle = vault.add_listener(recorder)
        origin.delay = 0.3
        asset = await vault.download(vv.DownloadRequest(url=origin.url(MASTER), mode=vv.StorageMode.NORMAL, parallel=1))

        async def two_stored():
            a = await vault.asset(asset)
            return a.segments_done >= 2
        await until("two pieces stored", two_stored)
        stop(vault)
        t0 = time.monotonic()

        async def waiting():
            return (await vault.asset(asset)).state == WAITING
        await until(str(WAITING), waiting, 1.0)
        # No request starts a second after the change, and nothing more is stored.
        await asyncio.sleep(1.0)
        held = (await vault.asset(asset)).segments_done
        after = media_requests(origin, since=t0 + 1.0)
        await asyncio.sleep(1.5)
        assert after == [] and media_requests(origin, since=t0 + 1.0) == [], "requests after a second"
        info = await vault.asset(asset)
        assert info.state == WAITING and info.segments_done == held
        assert held < info.segments_total
        with recorder.lock:
            last = [s for (i, s, _) in recorder.states if i == asset][-1]
        assert last == WAITING, "what a listener last heard is the wait"

        origin.delay = 0.0
        go_on(vault)
        done = await asyncio.wait_for(vault.wait(asset), 30)
        assert done.state == vv.AssetState.COMPLETED
        counts = Counter(media_requests(origin))
        assert counts and max(counts.values()) == 1, f"a piece fetched twice: {counts}"
        assert_stored_as_the_source(pathlib.Path(done.dir), fixtures)
        await asyncio.sleep(0.2)
        with recorder.lock:
            states = [s for (i, s, _) in recorder.states if i == asset]
        w = states.index(WAITING)
        assert vv.AssetState.DOWNLOADING in states[w:] and states[-1] == vv.AssetState.COMPLETED, states
        handle.cancel()
        await vault.shutdown()

    asyncio.run(flow())


def test_a_piece_slower_than_the_grace_is_aborted_and_a_pause_during_a_hold_is_a_pause(tmp_path, origin, fixtures):
    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(
            config(tmp_path, key, requirements=vv.Requirements(unmetered_only=True, **NO_KEEP),
                   conditions=vv.Conditions(network=vv.Network.UNMETERED))
        )
        origin.delay = 0.2
        asset = await vault.download(vv.DownloadRequest(url=origin.url(MASTER), mode=vv.StorageMode.NORMAL, parallel=1))

        async def one_stored():
            return (await vault.asset(asset)).segments_done >= 1
        await until("a piece stored", one_stored)
        origin.delay = 3.0  # the piece under way now takes longer than the 0.7 s of grace
        await asyncio.sleep(0.3)
        vault.set_conditions(vv.Conditions(network=vv.Network.METERED))
        t0 = time.monotonic()
        await asyncio.sleep(1.0)
        held = await vault.asset(asset)
        assert held.state == vv.AssetState.WAITING_FOR_UNMETERED
        await asyncio.sleep(1.5)
        assert media_requests(origin, since=t0 + 0.9) == [], "nothing asked after the grace"
        assert (await vault.asset(asset)).segments_done == held.segments_done, "the slow piece was not stored"
        # Paused while held back: paused, and it stays so whatever the conditions say.
        await vault.pause(asset)
        assert (await vault.asset(asset)).state == vv.AssetState.PAUSED
        origin.delay = 0.0
        vault.set_conditions(vv.Conditions(network=vv.Network.UNMETERED))
        await asyncio.sleep(1.2)
        assert (await vault.asset(asset)).state == vv.AssetState.PAUSED
        await vault.resume(asset)
        done = await asyncio.wait_for(vault.wait(asset), 30)
        assert done.state == vv.AssetState.COMPLETED
        assert_stored_as_the_source(pathlib.Path(done.dir), fixtures)
        counts = Counter(media_requests(origin))
        # Only the piece cut off mid-transfer was asked twice.
        assert sum(1 for c in counts.values() if c > 1) <= 1 and max(counts.values()) <= 2, counts
        await vault.shutdown()

    asyncio.run(flow())


def test_charging_battery_and_no_network_hold_a_download_before_its_first_byte(tmp_path, origin, fixtures):
    async def flow():
        key = vv.generate_key_file(APP)
        # The vault requires nothing; this download requires charging and a battery that is not low.
        vault = await vv.Vault.open(
            config(tmp_path, key, requirements=vv.Requirements(**NO_KEEP),
                   conditions=vv.Conditions(network=vv.Network.METERED, charging=False, battery_low=True))
        )
        own = vv.Requirements(charging_only=True, not_battery_low=True, **NO_KEEP)
        asset = await vault.download(
            vv.DownloadRequest(url=origin.url(MASTER), mode=vv.StorageMode.ENCRYPTED, requirements=own)
        )

        async def state_is(s):
            async def check():
                return (await vault.asset(asset)).state == s
            return check
        await until("waiting_for_charging", await state_is(vv.AssetState.WAITING_FOR_CHARGING), 3)
        vault.set_power(True, True)
        await until("waiting_for_battery", await state_is(vv.AssetState.WAITING_FOR_BATTERY), 1)
        vault.set_network(vv.Network.NONE)
        await until("waiting_for_network", await state_is(vv.AssetState.WAITING_FOR_NETWORK), 1)
        # Power news keeps the network that was reported.
        vault.set_power(True, False)
        assert vault.conditions() == vv.Conditions(network=vv.Network.NONE, charging=True, battery_low=False)
        await asyncio.sleep(1.2)
        assert (await vault.asset(asset)).state == vv.AssetState.WAITING_FOR_NETWORK
        assert media_requests(origin) == [], "nothing fetched while held"
        assert (await vault.asset(asset)).segments_done == 0

        # Metered is fine for this download (only the vault's requirements are replaced).
        vault.set_network(vv.Network.METERED)
        done = await asyncio.wait_for(vault.wait(asset), 30)
        assert done.state == vv.AssetState.COMPLETED
        assert max(Counter(media_requests(origin)).values()) == 1
        reader = await vault.open_reader(asset, "video/seg-00002.ts")
        plain = (fixtures / "hls-aes/plain/high/seg-2.ts").read_bytes()
        assert reader.read_at(0, reader.len()) == plain
        await vault.shutdown()

    asyncio.run(flow())


def test_a_downloads_own_requirements_change_after_it_was_asked_for(tmp_path, origin):
    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(
            config(tmp_path, key, requirements=vv.Requirements(**NO_KEEP),
                   conditions=vv.Conditions(network=vv.Network.METERED))
        )
        wifi = vv.Requirements(unmetered_only=True, **NO_KEEP)
        asset = await vault.download(
            vv.DownloadRequest(url=origin.url(MASTER), mode=vv.StorageMode.NORMAL, requirements=wifi)
        )

        async def waiting():
            return (await vault.asset(asset)).state == vv.AssetState.WAITING_FOR_UNMETERED
        await until("waiting_for_unmetered", waiting, 3)
        # Asking again with other requirements does not change them; saying so does.
        again = await vault.download(vv.DownloadRequest(url=origin.url(MASTER), mode=vv.StorageMode.NORMAL))
        assert again == asset
        await asyncio.sleep(0.6)
        assert await waiting()
        await vault.set_download_requirements(asset, None)
        done = await asyncio.wait_for(vault.wait(asset), 30)
        assert done.state == vv.AssetState.COMPLETED
        with pytest.raises(vv.VaultError.NotFound):
            await vault.set_download_requirements("0000000000000000", None)
        await vault.shutdown()

    asyncio.run(flow())


def test_the_quota_refuses_a_download_with_the_numbers_and_stores_nothing(tmp_path, origin):
    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(config(tmp_path, key, requirements=vv.Requirements(**NO_KEEP)))
        small = await vault.download(
            vv.DownloadRequest(url=origin.url("progressive/sample.mp4"), mode=vv.StorageMode.NORMAL)
        )
        stored = (await vault.wait(small)).bytes_done
        assert stored > 0
        vault.set_quota(stored + 1000)
        assert vault.quota() == stored + 1000
        request = vv.DownloadRequest(url=origin.url(MASTER), mode=vv.StorageMode.ENCRYPTED)
        check = await vault.check_space(request)
        assert check.needed and not check.exact and not check.fits_quota and check.fits_space
        assert check.used == stored and check.quota == stored + 1000
        with pytest.raises(vv.VaultError.QuotaExceeded) as e:
            await vault.download(request)
        assert (e.value.needed, e.value.used, e.value.quota) == (check.needed, stored, stored + 1000)
        assert "quota" in str(e.value) and str(check.needed) in str(e.value)
        assert [a.id for a in await vault.assets()] == [small], "nothing stored for the refused download"
        assert not media_requests(origin), "no media fetched (only the playlists)"
        vault.set_quota(None)
        assert (await vault.check_space(request)).fits_quota
        # Expired assets go when asked (or by themselves with evict_expired).
        await vault.set_offline_until(small, 1000)
        assert await vault.evict_expired() == [small]
        assert await vault.assets() == [] and (await vault.check_space(request)).used == 0
        await vault.shutdown()

    asyncio.run(flow())


def test_expired_assets_are_evicted_when_the_vault_opens_if_asked(tmp_path, origin):
    async def flow():
        key = vv.generate_key_file(APP)
        vault = await vv.Vault.open(config(tmp_path, key, requirements=vv.Requirements(**NO_KEEP)))
        expired = await vault.download(vv.DownloadRequest(url=origin.url("progressive/sample.mp4"), mode=vv.StorageMode.NORMAL))
        kept = await vault.download(vv.DownloadRequest(url=origin.url("hls-aes/low/index.m3u8"), mode=vv.StorageMode.NORMAL))
        await vault.wait(expired)
        await vault.wait(kept)
        await vault.set_offline_until(expired, 1000)
        await vault.shutdown()
        # Without the option nothing goes; with it, the expired asset and its files go.
        vault = await vv.Vault.open(config(tmp_path, key, requirements=vv.Requirements(**NO_KEEP)))
        assert {a.id for a in await vault.assets()} == {expired, kept}
        await vault.shutdown()
        vault = await vv.Vault.open(config(tmp_path, key, requirements=vv.Requirements(**NO_KEEP), evict_expired=True))
        assert [a.id for a in await vault.assets()] == [kept]
        assert not (tmp_path / "vault" / "assets" / expired).exists()
        await vault.shutdown()

    asyncio.run(flow())


# Run inside a private mount namespace (unshare -rm) with a 4 MiB tmpfs as the vault's volume.
STORAGE_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    import vodvault_ffi as vv
    vault_dir, url, master = sys.argv[2], sys.argv[3], sys.argv[4]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", vault_dir], check=True)
    MiB = 1 << 20
    def free():
        st = os.statvfs(vault_dir)
        return st.f_bavail * st.f_frsize
    ballast = os.path.join(vault_dir, "ballast")
    def fill_to(left):
        # A real file takes the space: free space is what statvfs says is left.
        with open(ballast, "ab") as f:
            f.write(b"\\0" * max(0, free() - left))
            f.flush(); os.fsync(f.fileno())
    out = {}
    async def main():
        key = vv.generate_key_file("com.example.vodvault.python")
        keep = vv.Requirements(keep_free_percent=0, keep_free_at_least=1 * MiB, keep_free_at_most=1 * MiB)
        vault = await vv.Vault.open(vv.VaultConfig(dir=vault_dir, key_file=vv.KeyFileSource.BYTES(bytes=key),
                                                   app_id="com.example.vodvault.python", requirements=keep))
        # 1. Not enough for the estimate: refused with the numbers, nothing stored.
        fill_to(1 * MiB + 100_000)
        try:
            await vault.download(vv.DownloadRequest(url=master, mode=vv.StorageMode.NORMAL))
            out["refused"] = None
        except vv.VaultError.StorageFull as e:
            out["refused"] = [e.needed, e.available, str(e)]
        out["assets_after_refusal"] = len(await vault.assets())
        # 2. A media playlist has no estimate: it starts, falls below what is kept free midway and
        #    waits; with room again it goes on by itself.
        fill_to(1 * MiB + 200_000)
        asset = await vault.download(vv.DownloadRequest(url=url, mode=vv.StorageMode.NORMAL, parallel=1))
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            a = await vault.asset(asset)
            if not seen or seen[-1] != a.state.name:
                seen.append(a.state.name)
            if a.state == vv.AssetState.WAITING_FOR_STORAGE and a.segments_done > 0:
                break
            await asyncio.sleep(0.02)
        # The piece under way when it was held back may still be stored (0.7 s of grace).
        await asyncio.sleep(1.0)
        # Another app takes more of the volume meanwhile (well below the line: no start and
        # stop at its edge as aborted pieces' files are deleted).
        fill_to(512 * 1024)
        await asyncio.sleep(0.5)
        waiting = await vault.asset(asset)
        out["midway"] = [waiting.state.name, waiting.segments_done, waiting.segments_total]
        await asyncio.sleep(1.5)
        out["still"] = [(await vault.asset(asset)).state.name, (await vault.asset(asset)).segments_done]
        os.remove(ballast)
        done = await asyncio.wait_for(vault.wait(asset), 30)
        out["done"] = [done.state.name, done.segments_done, done.segments_total, str(done.dir)]
        out["seen"] = seen
        await vault.shutdown()
    asyncio.run(main())
    print(json.dumps(out))
    """
)


def test_free_space_is_kept_on_a_real_small_filesystem(tmp_path, origin, fixtures):
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm is not available (no user namespaces): cannot mount a small tmpfs")
    origin.delay = 0.8  # several passes of the gate (4 a second) per piece, even on a loaded machine
    vault_dir = tmp_path / "vault"
    vault_dir.mkdir()
    script = tmp_path / "storage.py"
    script.write_text(STORAGE_SCRIPT)
    generated = ROOT / "bindings" / "python" / "generated"
    run = subprocess.run(
        ["unshare", "-rm", sys.executable, str(script), str(generated), str(vault_dir),
         origin.url("hls-aes/high/index.m3u8"), origin.url(MASTER)],
        capture_output=True, text=True, timeout=90,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    needed, available, message = out["refused"]
    assert needed > available and available <= 100_000, out
    assert out["assets_after_refusal"] == 0
    state, stored, total = out["midway"]
    assert state == "WAITING_FOR_STORAGE" and 0 < stored < total, out
    assert out["still"] == ["WAITING_FOR_STORAGE", stored], "nothing more while below the line"
    assert out["done"][:3] == ["COMPLETED", total, total], out
    counts = Counter(media_requests(origin))
    high = [p for p in counts if "/high/" in p]
    assert len(high) == total and all(counts[p] == 1 for p in high), counts
