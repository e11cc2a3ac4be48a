//! `vodvault`: download, store and play back HLS and MP4 streams for offline viewing.
//!
//! This build has the `bench` command; the download and playback commands arrive with the
//! download engine.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod bench;

/// Download, store and play back HLS and MP4 streams for offline viewing.
#[derive(Parser, Debug)]
#[command(name = "vodvault", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure the vault's decrypt+verify throughput on one core.
    Bench {
        /// Plaintext bytes to seal and open (e.g. 64M, 1G, 1048576).
        #[arg(long, default_value = "64M", value_parser = parse_size)]
        size: u64,
        /// Plaintext bytes per sealed chunk.
        #[arg(long, default_value = "64K", value_parser = parse_size)]
        chunk_size: u64,
        /// Rounds per measurement; the median is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Minimum measured seconds per round.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `1048576`, `64K`, `64KiB`, `16M`, `1G` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 65536, 64K or 1G"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench {
            size,
            chunk_size,
            rounds,
            seconds,
            json,
        } => {
            let Ok(chunk_size) = u32::try_from(chunk_size) else {
                eprintln!("vodvault: --chunk-size {chunk_size} is too large");
                return ExitCode::from(2);
            };
            if rounds == 0 || !seconds.is_finite() || seconds <= 0.0 {
                eprintln!("vodvault: --rounds and --seconds must be positive");
                return ExitCode::from(2);
            }
            let report =
                match bench::run(size, chunk_size, rounds, Duration::from_secs_f64(seconds)) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("vodvault: bench failed: {e}");
                        return ExitCode::FAILURE;
                    }
                };
            if json {
                match serde_json::to_string(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("vodvault: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                println!(
                    "{} · chunk {} B · {} B · median of {} rounds · 1 thread",
                    report.suite, report.chunk_size, report.size, report.rounds
                );
                println!(
                    "decrypt+verify (in place)   {:6.2} GB/s",
                    report.decrypt_verify_gbps
                );
                println!(
                    "read_at (copy+decrypt)      {:6.2} GB/s",
                    report.read_at_gbps
                );
                println!("seal                        {:6.2} GB/s", report.seal_gbps);
            }
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
