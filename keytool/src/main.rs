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
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a key file's version, app id, key id and creation time (never its secret).
    Inspect {
        /// The key file.
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that a key file is intact and bound to an app id.
    Verify {
        /// The key file.
        file: PathBuf,
        /// The app id it must be bound to.
        #[arg(long)]
        app_id: String,
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
    }
}

fn run(cli: Cli) -> Result<(), (PathBuf, KeyFileError)> {
    match cli.command {
        Command::Generate { app_id, out, force, json } => {
            let key = KeyFile::generate(&app_id).map_err(|e| (out.clone(), e))?;
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
        Command::Verify { file, app_id } => {
            let key = KeyFile::load(&file, &app_id).map_err(|e| (file.clone(), e))?;
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
