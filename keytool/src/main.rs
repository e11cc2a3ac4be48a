//! `vodvault-keytool`: generate, inspect and verify vodvault key files.
//!
//! Exit status: 0 on success, 1 when the key file is missing, damaged, of another app or of an
//! unknown version (one line on stderr says which), 2 for usage errors. The secret is never
//! printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vodvault_core::{KeyFile, KeyFileError, KeyFileInfo};

/// Generate, inspect and verify vodvault key files.
#[derive(Parser, Debug)]
#[command(name = "vodvault-keytool", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a key file with a fresh 256-bit secret bound to an app id.
    Generate {
        /// Android package name or iOS bundle id, e.g. com.example.player.
        #[arg(long)]
        app_id: String,
        /// Where to write the key file (created with owner-only permissions).
        #[arg(long)]
        out: PathBuf,
        /// Bind the key file to the app's signing certificate: its SHA-256 in hex (colons
        /// allowed, as `apksigner verify --print-certs` prints it). Repeat for an app with
        /// several signers (key rotation); at most 16. The vault then opens only in an app that
        /// says it is signed with one of them. Leave out for iOS (the bundle id binds the file).
        #[arg(long = "signing-cert-sha256", value_name = "HEX")]
        signers: Vec<String>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a key file's version, app id, key id, signing certificates and creation time (never
    /// its secret).
    Inspect {
        /// The key file.
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that a key file is intact and bound to an app id (and would open in an app signed
    /// with a given certificate).
    Verify {
        /// The key file.
        file: PathBuf,
        /// The app id it must be bound to.
        #[arg(long)]
        app_id: String,
        /// The app's signing certificate SHA-256 (hex), for a key file bound to signers.
        #[arg(long = "signing-cert-sha256", value_name = "HEX")]
        signer: Option<String>,
    },
}

fn print_info(info: &KeyFileInfo, json: bool) {
    if json {
        let mut v = serde_json::to_value(info).unwrap_or_default();
        v["created"] = info.created_rfc3339().into();
        println!("{v}");
    } else {
        println!("version:  {}", info.version);
        println!("app id:   {}", info.app_id);
        println!("key id:   {}", info.key_id);
        println!("created:  {}", info.created_rfc3339());
        if info.signers.is_empty() {
            println!("signers:  any (bound to the app id only)");
        }
        for s in &info.signers {
            println!("signer:   {s}");
        }
    }
}

fn run(cli: Cli) -> Result<(), (PathBuf, KeyFileError)> {
    match cli.command {
        Command::Generate { app_id, out, signers, force, json } => {
            let signers = signers
                .iter()
                .map(|s| vodvault_core::parse_signer(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| (out.clone(), e))?;
            let key = KeyFile::generate_for_signers(&app_id, &signers).map_err(|e| (out.clone(), e))?;
            key.write_to(&out, force).map_err(|e| (out.clone(), e))?;
            if json {
                let mut v = serde_json::to_value(key.info()).unwrap_or_default();
                v["created"] = key.info().created_rfc3339().into();
                v["path"] = out.display().to_string().into();
                println!("{v}");
            } else {
                println!("wrote {}", out.display());
                print_info(key.info(), false);
            }
            eprintln!("keep {} secret: whoever holds it can open every vault of {app_id}", out.display());
        }
        Command::Inspect { file, json } => {
            let info = KeyFile::inspect_file(&file).map_err(|e| (file.clone(), e))?;
            print_info(&info, json);
        }
        Command::Verify { file, app_id, signer } => {
            let key = KeyFile::load(&file, &app_id).map_err(|e| (file.clone(), e))?;
            key.check_signer(signer.as_deref()).map_err(|e| (file.clone(), e))?;
            println!("ok: {} is intact and bound to {} (key id {})", file.display(), key.app_id(), key.key_id());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err((path, KeyFileError::AlreadyExists)) => {
            eprintln!("vodvault-keytool: {}: already exists; pass --force to overwrite it", path.display());
            ExitCode::FAILURE
        }
        Err((path, err)) => {
            eprintln!("vodvault-keytool: {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
