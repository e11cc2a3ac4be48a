//! The command-line harness: a home with a key file made by the keytool, `vodvault` runs and
//! child processes that never outlive a test.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::Row;

use crate::{APP_ID, bin, keytool_generate};

/// A child process that is killed and reaped whatever happens to the test.
pub struct Proc(Option<Child>);

impl Proc {
    /// Its process id (0 once reaped).
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Its standard output, to read as it runs.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.0.as_mut().and_then(|c| c.stdout.take())
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.0.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Waits for it to end, with what it printed.
    pub fn wait_with_output(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A temporary home for the `vodvault` command: a key file made by the keytool, and a vault
/// folder next to it.
pub struct Home {
    /// The folder (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The key file.
    pub key_path: PathBuf,
    /// Its bytes.
    pub key: Vec<u8>,
}

impl Home {
    /// A new home with a fresh key file for [`APP_ID`].
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("app.vvkey");
        let key = keytool_generate(&key_path, APP_ID);
        Self { dir, key_path, key }
    }

    /// The vault folder.
    pub fn vault(&self) -> PathBuf {
        self.dir.path().join("vault")
    }

    /// `vodvault --home <vault> --key-file <key>`, nothing from the environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin("vodvault"));
        c.arg("--home").arg(self.vault()).arg("--key-file").arg(&self.key_path);
        for v in [
            "VODVAULT_HOME",
            "VODVAULT_KEY_FILE",
            "VODVAULT_APP_ID",
            "VODVAULT_SIGNING_CERT_SHA256",
            "VODVAULT_MAX_RATE",
            "VODVAULT_ACCESS_KEY_ID",
            "VODVAULT_ACCESS_KEY_SECRET",
            "VODVAULT_SECURITY_TOKEN",
            "VODVAULT_CREDENTIALS_CMD",
            "VODVAULT_REGION",
            "VODVAULT_VOD_ENDPOINT",
            "VODVAULT_VOD_SIGNATURE",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Runs `vodvault <args>` to the end (at most 90 s).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut child = self.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "vodvault {args:?} did not finish in 90 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    /// Starts `vodvault <args>`.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        Proc(Some(self.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()))
    }

    /// (id, state, segments done, segments total) of every asset, read straight from SQLite.
    pub async fn rows(&self) -> Vec<(String, String, i64, i64)> {
        let path = self.vault().join("catalog.sqlite");
        if !path.exists() {
            return Vec::new();
        }
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).read_only(true);
        let Ok(pool) = sqlx::SqlitePool::connect_with(opts).await else {
            return Vec::new();
        };
        let rows = sqlx::query("SELECT id, state, segments_done, segments_total FROM assets")
            .fetch_all(&pool)
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        pool.close().await;
        rows
    }
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}
