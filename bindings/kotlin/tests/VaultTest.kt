// The app flow through the Kotlin bindings, run on the JVM with JNA against the freshly built
// library (bindings/kotlin/run-tests.sh): key files, prepare, an Encrypted download with a
// listener, pause and resume, playback over HTTP, the reader, key rotation, and the exceptions an
// app must tell apart, and the device's conditions and a quota. Each test prints PASS or FAIL; the process exits non-zero on any failure.

import com.sun.net.httpserver.HttpServer
import io.vodvault.*
import java.io.File
import java.net.InetSocketAddress
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.util.Collections
import kotlin.system.exitProcess
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

const val APP = "com.example.vodvault.kotlin"
val FIXTURES = File(System.getenv("VODVAULT_FIXTURES") ?: "tests/fixtures")

/** Serves tests/fixtures on 127.0.0.1; segments can be slowed; under /old/ segments answer 403;
 *  /error-page* is an HTML page served with 200. */
class Origin : AutoCloseable {
    @Volatile var delayMs = 0L
    /** (System.nanoTime() when it arrived, path) of every request. */
    val requests: MutableList<Pair<Long, String>> = Collections.synchronizedList(mutableListOf())
    private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)

    init {
        server.executor = java.util.concurrent.Executors.newFixedThreadPool(8)
        server.createContext("/") { ex ->
            val path = ex.requestURI.path
            requests.add(System.nanoTime() to path)
            val rel = path.removePrefix("/old/").removePrefix("/new/").trimStart('/')
            val file = File(FIXTURES, rel)
            if (rel.startsWith("error-page")) {
                // A CDN's error page, served with 200 (whatever the name says).
                val body = "<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>".toByteArray()
                ex.sendResponseHeaders(200, body.size.toLong())
                ex.responseBody.use { it.write(body) }
                return@createContext
            }
            val code = when {
                rel.contains("..") || !file.isFile -> 404
                path.startsWith("/old/") && rel.endsWith(".ts") -> 403
                else -> 200
            }
            if (code == 200) {
                if (rel.endsWith(".ts")) Thread.sleep(delayMs)
                val body = file.readBytes()
                ex.sendResponseHeaders(200, body.size.toLong())
                ex.responseBody.use { it.write(body) }
            } else {
                ex.sendResponseHeaders(code, -1)
                ex.close()
            }
        }
        server.start()
    }

    fun url(path: String) = "http://127.0.0.1:${server.address.port}/$path"

    override fun close() = server.stop(0)
}

class Recorder : VaultListener {
    val progress: MutableList<DownloadProgress> = Collections.synchronizedList(mutableListOf())
    val states: MutableList<Pair<String, AssetState>> = Collections.synchronizedList(mutableListOf())
    override fun onProgress(progress: DownloadProgress) { this.progress.add(progress) }
    override fun onStateChanged(assetId: String, state: AssetState, failure: FailureReason?) { states.add(assetId to state) }
    val removed: MutableList<String> = Collections.synchronizedList(mutableListOf())
    override fun onRemoved(assetId: String) { removed.add(assetId) }
    override fun onIntegrityFailure(assetId: String, file: String) {}
    val missingImages: MutableList<Pair<String, AssetImage>> = Collections.synchronizedList(mutableListOf())
    override fun onImageMissing(assetId: String, image: AssetImage) { missingImages.add(assetId to image) }
    val lagged: MutableList<ULong> = Collections.synchronizedList(mutableListOf())
    override fun onLagged(missed: ULong) { lagged.add(missed) }
    override fun onFetchedForPlayback(assetId: String, file: String) {}
}

class Refresher(private val fresh: String?) : UrlRefresher {
    val calls: MutableList<RefreshRequest> = Collections.synchronizedList(mutableListOf())
    override fun refreshUrl(request: RefreshRequest): String? { calls.add(request); return fresh }
}

val http: HttpClient = HttpClient.newHttpClient()
fun get(url: String): HttpResponse<ByteArray> =
    http.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofByteArray())

fun check(cond: Boolean, msg: () -> String) { if (!cond) throw AssertionError(msg()) }

inline fun <reified E : Throwable> expect(block: () -> Unit): E {
    try { block() } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

fun config(dir: File, key: ByteArray) = VaultConfig(dir = File(dir, "vault").absolutePath, keyFile = KeyFileSource.Bytes(key), appId = APP)

fun testKeyFiles(dir: File) {
    val key = generateKeyFile(APP)
    val info = inspectKeyFile(key)
    check(info.appId == APP && info.version.toInt() == 1 && info.keyId.length == 16) { "$info" }
    check(validateKeyFile(key, APP).keyId == info.keyId) { "validate" }
    val e = expect<VaultException.InvalidKeyFile> { validateKeyFile(key, "com.example.other") }
    check(e.details.contains("belongs to app id")) { e.details }
    val damaged = key.copyOf().also { it[40] = (it[40].toInt() xor 1).toByte() }
    check(expect<VaultException.InvalidKeyFile> { inspectKeyFile(damaged) }.details.contains("corrupted")) { "damaged" }
}

// A key file bound to the app's two signing certificates (as PackageManager reports them: the
// SHA-256 of each certificate), and a version 1 one bound to the app id alone.
fun testSigningCertificates(dir: File): Unit = runBlocking {
    val signers = listOf("11".repeat(32), "AB:".repeat(31) + "AB")
    val bound = generateBoundKeyFile(APP, signers)
    val info = inspectKeyFile(bound)
    check(info.version.toInt() == 2 && info.signers.sorted() == listOf("11".repeat(32), "ab".repeat(32))) { "$info" }
    fun cfg(key: ByteArray, signer: String?) = VaultConfig(
        dir = File(dir, "vault").absolutePath, keyFile = KeyFileSource.Bytes(key), appId = APP, signingCertSha256 = signer,
    )
    for (signer in signers) Vault.open(cfg(bound, signer)).use { it.shutdown() }
    val wrong = expect<VaultException.SignerMismatch> { runBlocking { Vault.open(cfg(bound, "22".repeat(32))) } }
    check(wrong.details.contains("not one of the 2")) { wrong.details }
    expect<VaultException.SignerMismatch> { runBlocking { Vault.open(cfg(bound, null)) } }
    val old = generateKeyFile(APP)
    check(inspectKeyFile(old).signers.isEmpty()) { "an old key file binds no signer" }
    File(dir, "vault").deleteRecursively()
    Vault.open(cfg(old, "22".repeat(32))).use { it.shutdown() }
    Vault.open(cfg(old, null)).use { it.shutdown() }
}

fun testAppFlow(dir: File): Unit = runBlocking {
    Origin().use { origin ->
        val key = generateKeyFile(APP)
        val keyPath = File(dir, "app.vvkey").also { it.writeBytes(key) }
        val vault = Vault.open(VaultConfig(dir = File(dir, "vault").absolutePath, keyFile = KeyFileSource.Path(keyPath.absolutePath), appId = APP))
        check(vault.keyId() == inspectKeyFile(key).keyId) { "key id" }

        val source = vault.prepare(origin.url("hls-aes/master.m3u8"), emptyList())
        check(source is SourceInfo.Hls && source.master && source.variants.map { it.height?.toInt() } == listOf(90, 144, 180)) { "$source" }

        val recorder = Recorder()
        val handle = vault.addListener(recorder)
        origin.delayMs = 1500 // slow enough that the pause lands before the end, even on a loaded machine
        val id = vault.download(DownloadRequest(url = origin.url("hls-aes/master.m3u8"), mode = StorageMode.ENCRYPTED, title = "Film"))
        // Asked of the vault, not of the listener: events reach a listener's thread in order but
        // not at once, and on a loaded machine the download could end before it heard of two pieces.
        withTimeout(10_000) {
            while (vault.asset(id).segmentsDone < 2uL) delay(25)
        }
        vault.pause(id)
        val paused = vault.asset(id)
        check(paused.state == AssetState.PAUSED && paused.segmentsDone < paused.segmentsTotal) { "$paused" }
        origin.delayMs = 0
        vault.resume(id)
        val done = vault.wait(id)
        check(done.state == AssetState.COMPLETED && done.title == "Film" && done.expectedExact && done.bytesDone == done.bytesExpected) { "$done" }
        delay(200)
        val progress = synchronized(recorder.progress) { recorder.progress.filter { it.id == id } }
        check(progress.isNotEmpty() && progress.zipWithNext().all { (a, b) -> a.bytesDone <= b.bytesDone }) { "monotonic progress" }
        val states = synchronized(recorder.states) { recorder.states.filter { it.first == id }.map { it.second } }
        check(AssetState.PAUSED in states && states.last() == AssetState.COMPLETED) { "$states" }

        val session = vault.play(id)
        val master = get(session.url())
        check(master.statusCode() == 200 && String(master.body()).contains("video/index.m3u8")) { "master" }
        val seg = get(session.baseUrl() + "video/seg-00001.ts").body()
        check(seg.contentEquals(File(FIXTURES, "hls-aes/plain/high/seg-1.ts").readBytes())) { "segment bytes" }

        val reader = vault.openReader(id, "video/seg-00000.ts")
        val plain = File(FIXTURES, "hls-aes/plain/high/seg-0.ts").readBytes()
        check(reader.len() == plain.size.toULong() && reader.contentType() == "video/mp2t") { "reader" }
        check(reader.readAt(1000uL, 5000u).contentEquals(plain.copyOfRange(1000, 6000))) { "readAt" }
        check(vault.verify(id).isEmpty()) { "verify" }

        session.revoke()
        check(get(session.url()).statusCode() == 404) { "revoked" }
        handle.cancel()
        vault.remove(id)
        expect<VaultException.NotFound> { runBlocking { vault.asset(id) } }
        vault.shutdown()
    }
}

fun testErrors(dir: File): Unit = runBlocking {
    Origin().use { origin ->
        val key = generateKeyFile(APP)
        val vault = Vault.open(config(dir, key))
        val gone = expect<VaultException.HttpStatus> { runBlocking { vault.download(DownloadRequest(url = origin.url("missing/x.m3u8"), mode = StorageMode.NORMAL)) } }
        check(gone.status.toInt() == 404) { "$gone" }
        val id = vault.download(DownloadRequest(url = origin.url("old/hls-aes/master.m3u8"), mode = StorageMode.NORMAL))
        val why = expect<VaultException.Failed> { runBlocking { vault.wait(id) } }
        check(why.reason is FailureReason.UrlExpired) { "$why" }
        val failed = vault.asset(id)
        check(failed.state == AssetState.FAILED && failed.failure is FailureReason.UrlExpired) { "$failed" }
        val refresher = Refresher(origin.url("new/hls-aes/master.m3u8"))
        vault.setRefresher(refresher)
        vault.resume(id)
        check(vault.wait(id).state == AssetState.COMPLETED) { "refreshed" }
        check(refresher.calls.isNotEmpty() && refresher.calls[0].status.toInt() == 403) { "${refresher.calls}" }
        val page = expect<VaultException.BadSource> { runBlocking { vault.prepare(origin.url("error-page.mp4"), listOf()) } }
        check(page.message?.contains("an HTML page") == true) { "${page.message}" }
        expect<VaultException.BadSource> { runBlocking { vault.download(DownloadRequest(url = origin.url("error-page.mp4"), mode = StorageMode.NORMAL)) } }
        check(vault.assets().size == 1) { "a refused source leaves no asset" }
        expect<VaultException.InvalidRequest> { runBlocking { vault.download(DownloadRequest(url = "ftp://example.com/x", mode = StorageMode.NORMAL)) } }
        vault.shutdown()
        expect<VaultException.KeyMismatch> { runBlocking { Vault.open(config(dir, generateKeyFile(APP))) } }
        expect<VaultException.InvalidKeyFile> { runBlocking { Vault.open(config(dir, generateKeyFile("com.example.other"))) } }
        Unit
    }
}

fun testKeyRotation(dir: File): Unit = runBlocking {
    Origin().use { origin ->
        val old = generateKeyFile(APP)
        var vault = Vault.open(config(dir, old))
        val id = vault.download(DownloadRequest(url = origin.url("progressive/sample.mp4"), mode = StorageMode.ENCRYPTED))
        vault.wait(id)
        vault.shutdown()
        val sealed = File(dir, "vault/assets/$id/media.mp4.vvs").readBytes()
        val new = generateKeyFile(APP)
        val keyId = rotateVaultKey(File(dir, "vault").absolutePath, APP, old, new)
        check(keyId == inspectKeyFile(new).keyId) { "new key id" }
        check(File(dir, "vault/assets/$id/media.mp4.vvs").readBytes().contentEquals(sealed)) { "media untouched" }
        expect<VaultException.KeyMismatch> { runBlocking { Vault.open(config(dir, old)) } }
        vault = Vault.open(config(dir, new))
        val reader = vault.openReader(id, "media.mp4")
        check(reader.readAt(0uL, 1u shl 20).contentEquals(File(FIXTURES, "progressive/sample.mp4").readBytes())) { "readable" }
        // However much is asked for, only what the file holds is read (and allocated).
        check(reader.readAt(0uL, UInt.MAX_VALUE).size.toULong() == reader.len()) { "a 4 GiB read" }
        vault.shutdown()
    }
}

fun testQueueControls(dir: File): Unit = runBlocking {
    Origin().use { origin ->
        val vault = Vault.open(config(dir, generateKeyFile(APP)))
        val recorder = Recorder()
        val handle = vault.addListener(recorder)
        val closed = Recorder()
        vault.addListener(closed).close() // AutoCloseable: closing the handle stops delivery
        origin.delayMs = 200
        val a = vault.download(DownloadRequest(url = origin.url("hls-aes/master.m3u8"), mode = StorageMode.ENCRYPTED))
        val b = vault.download(DownloadRequest(url = origin.url("hls-aes/low/index.m3u8"), mode = StorageMode.NORMAL))
        vault.pauseAll()
        val states = vault.assets().associate { it.id to it.state }
        check(states == mapOf(a to AssetState.PAUSED, b to AssetState.PAUSED)) { "$states" }
        vault.cancel(b)
        check(vault.asset(b).state == AssetState.CANCELLED) { "cancelled" }
        origin.delayMs = 0
        check(vault.resumeAll() == listOf(a)) { "a cancelled download stays cancelled" }
        check(vault.wait(a).state == AssetState.COMPLETED) { "completed" }

        val reader = vault.openReader(a, "video/seg-00000.ts")
        check(!reader.isEmpty() && reader.len() > 0uL) { "reader" }
        vault.setOfflineUntil(a, 1_000L)
        expect<VaultException.OfflineExpired> { runBlocking { vault.play(a) } }
        vault.setOfflineUntil(a, null)
        val url = vault.play(a).use { session -> session.url().also { check(get(it).statusCode() == 200) { "plays again" } } }
        check(get(url).statusCode() == 404) { "closing the session revokes its URL" }

        vault.removeAll()
        check(vault.assets().isEmpty()) { "all removed" }
        delay(200)
        check(recorder.removed.toSet() == setOf(a, b)) { "${recorder.removed}" }
        check(closed.progress.isEmpty() && closed.states.isEmpty() && closed.removed.isEmpty()) { "closed listener got events" }
        handle.cancel()
        vault.shutdown()
    }
}

/** Media requests (segments) since `sinceNanos`. */
fun Origin.media(sinceNanos: Long = 0): List<String> =
    synchronized(requests) { requests.filter { it.first >= sinceNanos && it.second.endsWith(".ts") }.map { it.second } }

suspend fun until(what: String, seconds: Double, check: suspend () -> Boolean) {
    val deadline = System.nanoTime() + (seconds * 1e9).toLong()
    while (!check()) {
        check(System.nanoTime() < deadline) { "timed out waiting for $what" }
        delay(20)
    }
}

fun testConditions(dir: File): Unit = runBlocking {
    Origin().use { origin ->
        val noKeep = Requirements(keepFreePercent = 0u, keepFreeAtLeast = 0uL, keepFreeAtMost = 0uL)
        val wifiOnly = Requirements(unmeteredOnly = true, keepFreePercent = 0u, keepFreeAtLeast = 0uL, keepFreeAtMost = 0uL)
        val vault = Vault.open(
            VaultConfig(
                dir = File(dir, "vault").absolutePath, keyFile = KeyFileSource.Bytes(generateKeyFile(APP)), appId = APP,
                requirements = wifiOnly, conditions = Conditions(network = Network.UNMETERED),
            )
        )
        val recorder = Recorder()
        val handle = vault.addListener(recorder)
        origin.delayMs = 300
        val id = vault.download(DownloadRequest(url = origin.url("hls-aes/master.m3u8"), mode = StorageMode.NORMAL, parallel = 1u))
        until("two pieces stored", 20.0) { vault.asset(id).segmentsDone >= 2uL }
        vault.setConditions(Conditions(network = Network.METERED))
        val t0 = System.nanoTime()
        until("waiting for an unmetered network", 1.0) { vault.asset(id).state == AssetState.WAITING_FOR_UNMETERED }
        delay(1000)
        val held = vault.asset(id).segmentsDone
        delay(1500)
        check(origin.media(t0 + 1_000_000_000L).isEmpty()) { "requests a second after the change: ${origin.media(t0)}" }
        val info = vault.asset(id)
        check(info.state == AssetState.WAITING_FOR_UNMETERED && info.segmentsDone == held && held < info.segmentsTotal) { "$info" }
        origin.delayMs = 0
        vault.setConditions(Conditions(network = Network.UNMETERED))
        val done = withTimeout(30_000) { vault.wait(id) }
        check(done.state == AssetState.COMPLETED) { "completed" }
        val counts = origin.media().groupingBy { it }.eachCount()
        check(counts.isNotEmpty() && counts.values.all { it == 1 }) { "a piece fetched twice: $counts" }
        for (n in 0..3) {
            val stored = File(done.dir, "video/seg-%05d.ts".format(n)).readBytes()
            check(stored.contentEquals(File(FIXTURES, "hls-aes/plain/high/seg-$n.ts").readBytes())) { "segment $n" }
        }
        delay(200)
        val states = recorder.states.filter { it.first == id }.map { it.second }
        check(AssetState.WAITING_FOR_UNMETERED in states && states.last() == AssetState.COMPLETED) { "$states" }

        // A download of its own requiring charging waits for it, from before its first byte.
        vault.setConditions(Conditions(network = Network.METERED, charging = false))
        val before = origin.media().size
        val own = Requirements(chargingOnly = true, keepFreePercent = 0u, keepFreeAtLeast = 0uL, keepFreeAtMost = 0uL)
        val low = vault.download(DownloadRequest(url = origin.url("hls-aes/low/index.m3u8"), mode = StorageMode.ENCRYPTED, requirements = own))
        until("waiting for charging", 3.0) { vault.asset(low).state == AssetState.WAITING_FOR_CHARGING }
        delay(1200)
        check(origin.media().size == before) { "fetched while waiting for charging" }
        vault.setConditions(Conditions(network = Network.METERED, charging = true))
        check(withTimeout(30_000) { vault.wait(low) }.state == AssetState.COMPLETED) { "completed once charging" }

        // The quota: refused with the numbers, nothing stored.
        val used = vault.assets().sumOf { it.bytesDone }
        vault.setQuota(used + 1000uL)
        val request = DownloadRequest(url = origin.url("hls-aes/master.m3u8"), mode = StorageMode.NORMAL, quality = "worst", requirements = noKeep)
        val e = expect<VaultException.QuotaExceeded> { runBlocking { vault.download(request) } }
        check(e.used == used && e.quota == used + 1000uL && (e.needed ?: 0uL) > 1000uL) { "$e" }
        check(vault.assets().size == 2) { "nothing stored for the refused download" }
        val space = vault.checkSpace(request)
        check(!space.fitsQuota && space.needed == e.needed) { "$space" }
        handle.cancel()
        vault.shutdown()
    }
}

/** The Rust test crate's fake ApsaraVideo VOD API and its type-A-signing origin (`vodvault-test-origin --vod`). */
class FakeVod : AutoCloseable {
    private val proc: Process
    val endpoint: String

    init {
        val bin = File(System.getenv("VODVAULT_TEST_ORIGIN") ?: "target/debug/vodvault-test-origin")
        check(bin.canExecute()) { "${bin.path} is missing: cargo build -p vodvault-tests" }
        proc = ProcessBuilder(bin.path, FIXTURES.path, "--vod").redirectErrorStream(false).start()
        val out = proc.inputStream.bufferedReader()
        out.readLine()
        endpoint = out.readLine()
        check(endpoint.startsWith("http://127.0.0.1:")) { endpoint }
    }

    /** STS credentials, as the app's own server would hand them out. */
    fun sts(): VodCredentials {
        val body = String(get(endpoint + "sts?ttl=3600").body())
        fun field(name: String) = Regex("\"$name\":\"([^\"]+)\"").find(body)!!.groupValues[1]
        return VodCredentials(accessKeyId = field("AccessKeyId"), accessKeySecret = field("AccessKeySecret"), securityToken = field("SecurityToken"))
    }

    override fun close() { proc.destroy(); proc.waitFor() }
}

class StsProvider(private val vod: FakeVod) : CredentialsProvider {
    val reasons: MutableList<CredentialsReason> = Collections.synchronizedList(mutableListOf())
    override fun credentials(reason: CredentialsReason): VodCredentials? { reasons.add(reason); return vod.sts() }
}

fun testVod(dir: File): Unit = runBlocking {
    FakeVod().use { vod ->
        val vault = Vault.open(VaultConfig(dir = File(dir, "vault").absolutePath, keyFile = KeyFileSource.Bytes(generateKeyFile(APP)), appId = APP,
            vod = VodConfig(endpoint = vod.endpoint)))
        expect<VaultException.Credentials> { runBlocking { vault.prepare("vod:v-multi", emptyList()) } }
        val provider = StsProvider(vod)
        vault.setCredentialsProvider(provider)

        val info = vault.prepare("vod:v-multi", emptyList())
        check(info is SourceInfo.Vod && info.title == "A film") { "$info" }
        val locked = (info as SourceInfo.Vod).streams.first { it.definition == "2K" }
        check(locked.unsupported!!.contains("AliyunVoDEncryption")) { "$locked" }

        val id = vault.download(DownloadRequest(url = "vod:v-multi", mode = StorageMode.ENCRYPTED, vod = VodOptions(format = "mp4")))
        val done = vault.wait(id)
        check(done.state == AssetState.COMPLETED && done.vod?.definition == "SD" && done.vod?.format == "mp4") { "$done" }
        val media = vault.openReader(id, "media.mp4")
        check(media.readAt(0uL, 1u shl 20).contentEquals(File(FIXTURES, "progressive/sample.mp4").readBytes())) { "media" }
        val images = vault.images(id)
        check(images.size == 10 && images.all { it.stored }) { "$images" }
        val cover = images.first { it.kind == ImageKind.COVER }
        check(vault.openReader(id, cover.file).readAt(0uL, 1u shl 20).contentEquals(File(FIXTURES, "vod-images/cover.jpg").readBytes())) { "cover" }
        vault.play(id).use { session ->
            val r = get(session.baseUrl() + "images/snapshot-00002.jpg")
            check(r.statusCode() == 200 && r.headers().firstValue("content-type").get() == "image/jpeg") { "served" }
            check(r.body().contentEquals(File(FIXTURES, "vod-images/snapshot-2.jpg").readBytes())) { "snapshot bytes" }
        }
        check(provider.reasons.first() is CredentialsReason.Initial) { "${provider.reasons}" }

        val e = expect<VaultException.UnsupportedSource> { runBlocking { vault.download(DownloadRequest(url = "vod:v-locked", mode = StorageMode.NORMAL)) } }
        check(e.details.contains("unsupported encryption")) { e.details }
        val nope = expect<VaultException.VodApi> { runBlocking { vault.download(DownloadRequest(url = "vod:v-nope", mode = StorageMode.NORMAL)) } }
        check(nope.code == "InvalidVideo.NotFound") { "$nope" }
        vault.shutdown()
    }
}

fun main() {
    val tests: List<Pair<String, (File) -> Unit>> = listOf(
        "key files" to ::testKeyFiles,
        "key files bound to signing certificates" to ::testSigningCertificates,
        "app flow: prepare, download with a listener, pause/resume, play, reader" to ::testAppFlow,
        "errors an app tells apart: not found, expired URL + refresh, key mismatch" to ::testErrors,
        "key rotation keeps encrypted assets" to ::testKeyRotation,
        "queue controls, offline expiry and removal events" to ::testQueueControls,
        "conditions: Wi-Fi only and charging hold downloads and let them go on; the quota refuses" to ::testConditions,
        "ApsaraVideo VOD: credentials provider, download by id, images, typed errors" to ::testVod,
    )
    var failed = 0
    for ((name, test) in tests) {
        val dir = Files.createTempDirectory("vodvault-kt").toFile()
        try {
            test(dir)
            println("PASS $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace()
        } finally {
            dir.deleteRecursively()
        }
    }
    println(if (failed == 0) "all ${tests.size} Kotlin tests passed" else "$failed of ${tests.size} Kotlin tests failed")
    exitProcess(if (failed == 0) 0 else 1)
}
