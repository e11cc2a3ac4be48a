// The app flow through the Swift bindings, mirroring bindings/kotlin/tests/VaultTest.kt and
// bindings/python/tests/test_vault.py. Run on macOS after build-xcframework.sh:
//   cd bindings/swift && VODVAULT_FIXTURES=$PWD/../../tests/fixtures swift test
// (There is no Swift toolchain on the Linux CI: it checks that these bindings generate; the same
// flows run there in Kotlin and Python.)

import Foundation
import Network
import XCTest
@testable import VodVault

let app = "com.example.vodvault.swift"
let fixtures = URL(fileURLWithPath: ProcessInfo.processInfo.environment["VODVAULT_FIXTURES"] ?? "../../tests/fixtures")

/// Serves tests/fixtures on 127.0.0.1: segments can be slowed; under /old/ segments answer 403.
final class Origin: @unchecked Sendable {
    let listener: NWListener
    var delay: TimeInterval = 0
    private let queue = DispatchQueue(label: "origin", attributes: .concurrent)

    init() throws {
        let params = NWParameters.tcp
        params.requiredLocalEndpoint = NWEndpoint.hostPort(host: "127.0.0.1", port: 0)
        listener = try NWListener(using: params)
        listener.newConnectionHandler = { [weak self] conn in self?.serve(conn) }
        let ready = DispatchSemaphore(value: 0)
        listener.stateUpdateHandler = { if case .ready = $0 { ready.signal() } }
        listener.start(queue: queue)
        _ = ready.wait(timeout: .now() + 10)
    }

    var port: UInt16 { listener.port?.rawValue ?? 0 }
    func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }
    func stop() { listener.cancel() }

    private func serve(_ conn: NWConnection) {
        conn.start(queue: queue)
        conn.receive(minimumIncompleteLength: 1, maximumLength: 65536) { [self] data, _, _, _ in
            let request = String(decoding: data ?? Data(), as: UTF8.self)
            let path = request.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
            let clean = path.split(separator: "?").first.map(String.init) ?? path
            var rel = clean.hasPrefix("/old/") ? String(clean.dropFirst(5)) : clean.hasPrefix("/new/") ? String(clean.dropFirst(5)) : String(clean.dropFirst())
            if rel.hasPrefix("/") { rel.removeFirst() }
            let file = fixtures.appendingPathComponent(rel)
            var status = "200 OK"
            var body = Data()
            if rel.hasPrefix("error-page") {
                // A CDN's error page, served with 200 (whatever the name says).
                body = Data("<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>".utf8)
            } else if rel.contains("..") || !FileManager.default.fileExists(atPath: file.path) {
                status = "404 Not Found"
            } else if clean.hasPrefix("/old/") && rel.hasSuffix(".ts") {
                status = "403 Forbidden"
            } else {
                if rel.hasSuffix(".ts") { Thread.sleep(forTimeInterval: delay) }
                body = (try? Data(contentsOf: file)) ?? Data()
            }
            var response = Data("HTTP/1.1 \(status)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
            response.append(body)
            conn.send(content: response, completion: .contentProcessed { _ in conn.cancel() })
        }
    }
}

final class Recorder: VaultListener, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var progress: [DownloadProgress] = []
    private(set) var states: [(String, AssetState)] = []
    func onProgress(progress: DownloadProgress) { lock.withLock { self.progress.append(progress) } }
    func onStateChanged(assetId: String, state: AssetState, failure: FailureReason?) { lock.withLock { states.append((assetId, state)) } }
    private(set) var removed: [String] = []
    func onRemoved(assetId: String) { lock.withLock { removed.append(assetId) } }
    func onIntegrityFailure(assetId: String, file: String) {}
    private(set) var missingImages: [(String, AssetImage)] = []
    func onImageMissing(assetId: String, image: AssetImage) { lock.withLock { missingImages.append((assetId, image)) } }
    func onLagged(missed: UInt64) {}
    func onFetchedForPlayback(assetId: String, file: String) {}
    func snapshot() -> ([DownloadProgress], [(String, AssetState)]) { lock.withLock { (progress, states) } }
    func removedIds() -> [String] { lock.withLock { removed } }
}

final class Refresher: UrlRefresher, @unchecked Sendable {
    let fresh: String?
    private(set) var calls: [RefreshRequest] = []
    init(_ fresh: String?) { self.fresh = fresh }
    func refreshUrl(request: RefreshRequest) -> String? { calls.append(request); return fresh }
}

func get(_ url: String) async throws -> (Int, Data) {
    let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}

func config(_ dir: URL, _ key: Data) -> VaultConfig {
    VaultConfig(dir: dir.appendingPathComponent("vault").path, keyFile: .bytes(bytes: key), appId: app,
                maxParallelAssets: 3, maxParallelRequests: 6, defaultHeaders: [], autostart: true)
}

func request(_ url: String, _ mode: StorageMode, title: String? = nil) -> DownloadRequest {
    DownloadRequest(url: url, mode: mode, quality: "best", audio: nil, subtitles: nil, headers: [], title: title,
                    metadata: nil, identity: nil, parallel: nil, offlineUntilMs: nil)
}

/// The Rust test crate's fake ApsaraVideo VOD API and its type-A-signing origin
/// (`vodvault-test-origin FIXTURES --vod`; build it with `cargo build -p vodvault-tests`).
final class FakeVod: @unchecked Sendable {
    let process = Process()
    let endpoint: String

    init() throws {
        let bin = ProcessInfo.processInfo.environment["VODVAULT_TEST_ORIGIN"] ?? "../../target/debug/vodvault-test-origin"
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = [fixtures.path, "--vod"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var text = ""
        while text.split(separator: "\n").count < 2 {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count >= 2, lines[1].hasPrefix("http://127.0.0.1:") else { throw VaultError.Internal(details: "fake VOD: \(text)") }
        endpoint = lines[1]
    }

    /// STS credentials, as the app's own server would hand them out.
    func sts() throws -> VodCredentials {
        let data = try Data(contentsOf: URL(string: endpoint + "sts?ttl=3600")!)
        let body = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let c = (body["Credentials"] as? [String: Any]) ?? body
        return VodCredentials(accessKeyId: c["AccessKeyId"] as! String, accessKeySecret: c["AccessKeySecret"] as! String,
                              securityToken: c["SecurityToken"] as? String)
    }

    func stop() { process.terminate(); process.waitUntilExit() }
}

final class StsProvider: CredentialsProvider, @unchecked Sendable {
    let vod: FakeVod
    private let lock = NSLock()
    private var reasons: [CredentialsReason] = []
    init(_ vod: FakeVod) { self.vod = vod }
    func credentials(reason: CredentialsReason) -> VodCredentials? {
        lock.withLock { reasons.append(reason) }
        return try? vod.sts()
    }
    func seen() -> [CredentialsReason] { lock.withLock { reasons } }
}

final class VaultTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vodvault-swift-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func testKeyFiles() throws {
        let key = try generateKeyFile(appId: app)
        let info = try inspectKeyFile(keyFile: key)
        XCTAssertEqual(info.appId, app)
        XCTAssertEqual(info.version, 1)
        XCTAssertEqual(try validateKeyFile(keyFile: key, appId: app).keyId, info.keyId)
        XCTAssertThrowsError(try validateKeyFile(keyFile: key, appId: "com.example.other")) { error in
            guard case VaultError.InvalidKeyFile(let details) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(details.contains("belongs to app id"))
        }
        var damaged = key
        damaged[40] ^= 1
        XCTAssertThrowsError(try inspectKeyFile(keyFile: damaged))
    }

    func testAppFlow() async throws {
        let origin = try Origin()
        defer { origin.stop() }
        let key = try generateKeyFile(appId: app)
        let keyPath = dir.appendingPathComponent("app.vvkey")
        try key.write(to: keyPath)
        let vault = try await Vault.open(config: VaultConfig(dir: dir.appendingPathComponent("vault").path,
            keyFile: .path(path: keyPath.path), appId: app, maxParallelAssets: 3, maxParallelRequests: 6,
            defaultHeaders: [], autostart: true))
        XCTAssertEqual(vault.keyId(), try inspectKeyFile(keyFile: key).keyId)

        let source = try await vault.prepare(url: origin.url("hls-aes/master.m3u8"), headers: [])
        guard case .hls(let master, let variants, _, _, _) = source else { return XCTFail("\(source)") }
        XCTAssertTrue(master)
        XCTAssertEqual(variants.map { $0.height }, [90, 144, 180])

        let recorder = Recorder()
        let handle = vault.addListener(listener: recorder)
        origin.delay = 0.25
        let id = try await vault.download(request: request(origin.url("hls-aes/master.m3u8"), .encrypted, title: "Film"))
        for _ in 0..<400 {
            if recorder.snapshot().0.contains(where: { $0.segmentsDone >= 2 }) { break }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
        try await vault.pause(assetId: id)
        let paused = try await vault.asset(assetId: id)
        XCTAssertEqual(paused.state, .paused)
        XCTAssertLessThan(paused.segmentsDone, paused.segmentsTotal)
        origin.delay = 0
        try await vault.resume(assetId: id)
        let done = try await vault.wait(assetId: id)
        XCTAssertEqual(done.state, .completed)
        XCTAssertEqual(done.title, "Film")
        XCTAssertEqual(done.bytesDone, done.bytesExpected)
        try await Task.sleep(nanoseconds: 200_000_000)
        let (progress, states) = recorder.snapshot()
        let mine = progress.filter { $0.id == id }
        XCTAssertFalse(mine.isEmpty)
        XCTAssertTrue(zip(mine, mine.dropFirst()).allSatisfy { $0.bytesDone <= $1.bytesDone })
        XCTAssertTrue(states.contains { $0.0 == id && $0.1 == .paused })
        XCTAssertEqual(states.last { $0.0 == id }?.1, .completed)

        let session = try await vault.play(assetId: id)
        let (status, masterBody) = try await get(session.url())
        XCTAssertEqual(status, 200)
        XCTAssertTrue(String(decoding: masterBody, as: UTF8.self).contains("video/index.m3u8"))
        let (_, seg) = try await get(session.baseUrl() + "video/seg-00001.ts")
        XCTAssertEqual(seg, try Data(contentsOf: fixtures.appendingPathComponent("hls-aes/plain/high/seg-1.ts")))

        let reader = try await vault.openReader(assetId: id, name: "video/seg-00000.ts")
        let plain = try Data(contentsOf: fixtures.appendingPathComponent("hls-aes/plain/high/seg-0.ts"))
        XCTAssertEqual(reader.len(), UInt64(plain.count))
        XCTAssertEqual(try reader.readAt(offset: 1000, length: 5000), plain.subdata(in: 1000..<6000))
        XCTAssertEqual(try await vault.verify(assetId: id), [])

        session.revoke()
        XCTAssertEqual(try await get(session.url()).0, 404)
        handle.cancel()
        try await vault.remove(assetId: id)
        do {
            _ = try await vault.asset(assetId: id)
            XCTFail("removed")
        } catch VaultError.NotFound {}
        try await vault.shutdown()
    }

    func testErrorsAnAppTellsApart() async throws {
        let origin = try Origin()
        defer { origin.stop() }
        let vault = try await Vault.open(config: config(dir, try generateKeyFile(appId: app)))
        do {
            _ = try await vault.download(request: request(origin.url("missing/x.m3u8"), .normal))
            XCTFail("missing source")
        } catch VaultError.HttpStatus(let status, _) {
            XCTAssertEqual(status, 404)
        }
        let id = try await vault.download(request: request(origin.url("old/hls-aes/master.m3u8"), .normal))
        do {
            _ = try await vault.wait(assetId: id)
            XCTFail("expired URL")
        } catch VaultError.Failed(let reason) {
            guard case .urlExpired = reason else { return XCTFail("\(reason)") }
        }
        let failed = try await vault.asset(assetId: id)
        XCTAssertEqual(failed.state, .failed)
        guard case .urlExpired = failed.failure else { return XCTFail("\(String(describing: failed.failure))") }
        let refresher = Refresher(origin.url("new/hls-aes/master.m3u8"))
        vault.setRefresher(refresher: refresher)
        try await vault.resume(assetId: id)
        XCTAssertEqual(try await vault.wait(assetId: id).state, .completed)
        XCTAssertEqual(refresher.calls.first?.status, 403)
        do {
            _ = try await vault.prepare(url: origin.url("error-page.mp4"), headers: [])
            XCTFail("an error page")
        } catch VaultError.BadSource(let details) {
            XCTAssertTrue(details.contains("an HTML page"), details)
        }
        do {
            _ = try await vault.download(request: request(origin.url("error-page.mp4"), .normal))
            XCTFail("an error page")
        } catch VaultError.BadSource {}
        XCTAssertEqual(try await vault.assets().count, 1)
        try await vault.shutdown()
        do {
            _ = try await Vault.open(config: config(dir, try generateKeyFile(appId: app)))
            XCTFail("another key file")
        } catch VaultError.KeyMismatch {}
        do {
            _ = try await Vault.open(config: config(dir, try generateKeyFile(appId: "com.example.other")))
            XCTFail("another app's key file")
        } catch VaultError.InvalidKeyFile {}
    }

    func testKeyRotation() async throws {
        let origin = try Origin()
        defer { origin.stop() }
        let old = try generateKeyFile(appId: app)
        var vault = try await Vault.open(config: config(dir, old))
        let id = try await vault.download(request: request(origin.url("progressive/sample.mp4"), .encrypted))
        _ = try await vault.wait(assetId: id)
        try await vault.shutdown()
        let sealedPath = dir.appendingPathComponent("vault/assets/\(id)/media.mp4.vvs")
        let sealed = try Data(contentsOf: sealedPath)
        let new = try generateKeyFile(appId: app)
        let keyId = try await rotateVaultKey(dir: dir.appendingPathComponent("vault").path, appId: app, oldKeyFile: old, newKeyFile: new)
        XCTAssertEqual(keyId, try inspectKeyFile(keyFile: new).keyId)
        XCTAssertEqual(try Data(contentsOf: sealedPath), sealed, "media untouched")
        vault = try await Vault.open(config: config(dir, new))
        let reader = try await vault.openReader(assetId: id, name: "media.mp4")
        XCTAssertEqual(try reader.readAt(offset: 0, length: 1 << 20),
                       try Data(contentsOf: fixtures.appendingPathComponent("progressive/sample.mp4")))
        try await vault.shutdown()
    }

    func testConditionsHoldDownloadsAndTheQuotaRefuses() async throws {
        let origin = try Origin()
        defer { origin.stop() }
        let noKeep = Requirements(keepFreePercent: 0, keepFreeAtLeast: 0, keepFreeAtMost: 0)
        let wifiOnly = Requirements(unmeteredOnly: true, keepFreePercent: 0, keepFreeAtLeast: 0, keepFreeAtMost: 0)
        var cfg = config(dir, try generateKeyFile(appId: app))
        cfg.requirements = wifiOnly
        cfg.conditions = Conditions(network: .unmetered)
        let vault = try await Vault.open(config: cfg)
        origin.delay = 0.3
        var req = request(origin.url("hls-aes/master.m3u8"), .normal)
        req.parallel = 1
        let id = try await vault.download(request: req)
        while try await vault.asset(assetId: id).segmentsDone < 2 { try await Task.sleep(nanoseconds: 20_000_000) }
        vault.setConditions(conditions: Conditions(network: .metered))
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let held = try await vault.asset(assetId: id)
        XCTAssertEqual(held.state, .waitingForUnmetered)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        XCTAssertEqual(try await vault.asset(assetId: id).segmentsDone, held.segmentsDone, "nothing more while metered")
        origin.delay = 0
        vault.setConditions(conditions: Conditions(network: .unmetered))
        XCTAssertEqual(try await vault.wait(assetId: id).state, .completed)

        let used = try await vault.assets().reduce(0) { $0 + $1.bytesDone }
        vault.setQuota(quota: used + 1000)
        var big = request(origin.url("hls-aes/master.m3u8"), .normal)
        big.quality = "worst"
        big.requirements = noKeep
        do {
            _ = try await vault.download(request: big)
            XCTFail("over the quota")
        } catch let VaultError.QuotaExceeded(needed, usedNow, quota) {
            XCTAssertEqual(usedNow, used)
            XCTAssertEqual(quota, used + 1000)
            XCTAssertEqual(try await vault.checkSpace(request: big).needed, needed)
        }
        try await vault.shutdown()
    }

    func testQueueControlsOfflineExpiryAndRemovalEvents() async throws {
        let origin = try Origin()
        defer { origin.stop() }
        let vault = try await Vault.open(config: config(dir, try generateKeyFile(appId: app)))
        let recorder = Recorder()
        let handle = vault.addListener(listener: recorder)
        origin.delay = 0.2
        let a = try await vault.download(request: request(origin.url("hls-aes/master.m3u8"), .encrypted))
        let b = try await vault.download(request: request(origin.url("hls-aes/low/index.m3u8"), .normal))
        try await vault.pauseAll()
        let states = Dictionary(uniqueKeysWithValues: try await vault.assets().map { ($0.id, $0.state) })
        XCTAssertEqual(states, [a: .paused, b: .paused])
        try await vault.cancel(assetId: b)
        XCTAssertEqual(try await vault.asset(assetId: b).state, .cancelled)
        origin.delay = 0
        XCTAssertEqual(try await vault.resumeAll(), [a], "a cancelled download stays cancelled")
        XCTAssertEqual(try await vault.wait(assetId: a).state, .completed)

        let reader = try await vault.openReader(assetId: a, name: "video/seg-00000.ts")
        XCTAssertFalse(reader.isEmpty())
        try await vault.setOfflineUntil(assetId: a, untilMs: 1_000)
        do {
            _ = try await vault.play(assetId: a)
            XCTFail("expired")
        } catch VaultError.OfflineExpired {}
        try await vault.setOfflineUntil(assetId: a, untilMs: nil)
        var session: PlaybackSession? = try await vault.play(assetId: a)
        let url = session!.url()
        XCTAssertEqual(try await get(url).0, 200)
        session = nil // releasing the session revokes its URL
        XCTAssertEqual(try await get(url).0, 404)

        try await vault.removeAll()
        XCTAssertEqual(try await vault.assets().count, 0)
        try await Task.sleep(nanoseconds: 200_000_000)
        XCTAssertEqual(Set(recorder.removedIds()), [a, b])
        handle.cancel()
        try await vault.shutdown()
    }

    func testVod() async throws {
        let vod = try FakeVod()
        defer { vod.stop() }
        let vault = try await Vault.open(config: VaultConfig(dir: dir.appendingPathComponent("vault").path,
            keyFile: .bytes(bytes: try generateKeyFile(appId: app)), appId: app, vod: VodConfig(endpoint: vod.endpoint)))
        do {
            _ = try await vault.prepare(url: "vod:v-multi", headers: [])
            XCTFail("no credentials yet")
        } catch VaultError.Credentials {}
        let provider = StsProvider(vod)
        vault.setCredentialsProvider(provider: provider)

        guard case .vod(_, let title, _, _, let streams, _) = try await vault.prepare(url: "vod:v-multi", headers: []) else {
            return XCTFail("not a VOD source")
        }
        XCTAssertEqual(title, "A film")
        XCTAssertTrue(streams.first { $0.definition == "2K" }?.unsupported?.contains("AliyunVoDEncryption") ?? false)

        let id = try await vault.download(request: DownloadRequest(url: "vod:v-multi", mode: .encrypted, vod: VodOptions(format: "mp4")))
        let done = try await vault.wait(assetId: id)
        XCTAssertEqual(done.state, .completed)
        XCTAssertEqual(done.vod?.definition, "SD")
        XCTAssertEqual(done.vod?.format, "mp4")
        let media = try await vault.openReader(assetId: id, name: "media.mp4")
        XCTAssertEqual(try media.readAt(offset: 0, length: 1 << 20), try Data(contentsOf: fixtures.appendingPathComponent("progressive/sample.mp4")))
        let images = try await vault.images(assetId: id)
        XCTAssertEqual(images.count, 10)
        XCTAssertTrue(images.allSatisfy { $0.stored })
        let cover = images.first { $0.kind == .cover }!
        XCTAssertEqual(try await vault.openReader(assetId: id, name: cover.file).readAt(offset: 0, length: 1 << 20),
                       try Data(contentsOf: fixtures.appendingPathComponent("vod-images/cover.jpg")))
        let session = try await vault.play(assetId: id)
        let (status, jpeg) = try await get(session.baseUrl() + "images/snapshot-00002.jpg")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(jpeg, try Data(contentsOf: fixtures.appendingPathComponent("vod-images/snapshot-2.jpg")))
        session.revoke()
        guard case .initial = provider.seen().first else { return XCTFail("\(provider.seen())") }

        do {
            _ = try await vault.download(request: DownloadRequest(url: "vod:v-locked", mode: .normal))
            XCTFail("proprietary encryption")
        } catch VaultError.UnsupportedSource(let details) {
            XCTAssertTrue(details.contains("unsupported encryption"), details)
        }
        do {
            _ = try await vault.download(request: DownloadRequest(url: "vod:v-nope", mode: .normal))
            XCTFail("no such video")
        } catch VaultError.VodApi(let code, _) {
            XCTAssertEqual(code, "InvalidVideo.NotFound")
        }
        try await vault.shutdown()
    }
}
