//! What a killed process finished but did not record, checked and kept on resume (D33).

use std::collections::HashMap;

use crate::sniff::Sniffer;
use crate::store::{self, StoreError};

use super::lock::blocking;
use super::{Ctx, JobResult, storage};

/// A content check for a finished file found on resume.
pub(super) type Accept = Box<dyn Fn(&Sniffer) -> bool + Send>;
/// Keeps what an earlier process finished but was killed before recording, among `files` (the
/// logical names of pending pieces or images, each with its content check): files at their
/// final names, or complete beside them ([`store::finished_piece`]: a sealed file verifies whole,
/// a plain one is hashed and must match the digest its name carries), that pass the same content
/// check as a fetched piece. Returns the index in `files` of each one kept, with what it holds;
/// their renames are durable. `.done` files not kept are deleted.
pub(super) async fn adopt(ctx: &Ctx, files: Vec<(String, Accept)>) -> JobResult<Vec<(usize, store::FinishedPiece)>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let (layout, id, mode, key) = (ctx.deps.layout.clone(), ctx.id.clone(), ctx.mode, ctx.key.clone());
    blocking(ctx, move || -> Result<Vec<(usize, store::FinishedPiece)>, StoreError> {
        let mut done_names: HashMap<std::path::PathBuf, Vec<String>> = HashMap::new();
        let mut kept = Vec::new();
        let mut paths = Vec::new();
        for (i, (file, accept)) in files.into_iter().enumerate() {
            let dest = layout.file(&id, &file, mode);
            let dir = dest.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let names = done_names.entry(dir.clone()).or_insert_with(|| store::done_files(&dir));
            if let Some(found) = store::finished_piece(&layout, &id, &file, mode, key.as_deref(), names, &*accept)? {
                paths.push(dest);
                kept.push((i, found));
            }
        }
        for (dir, names) in &done_names {
            for n in names {
                let _ = std::fs::remove_file(dir.join(n));
            }
        }
        store::sync_dirs(&paths)?;
        Ok(kept)
    })
    .await
    .map_err(|e| storage("internal error", e))?
    .map_err(|e| match e {
        StoreError::Full => ctx.storage_full(0),
        other => storage("checking what was stored before a restart", other),
    })
}
