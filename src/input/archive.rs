//! Zip files holding one `.csv` / `.txt`, behind the `zip` feature.

use std::io::{Cursor, Read};

use crate::issue::{Code, Issue};

/// Names that are not the users file: macOS resource forks and folders.
fn is_junk(name: &str) -> bool {
    name.starts_with("__MACOSX/")
        || name.ends_with('/')
        || name.rsplit('/').next().is_some_and(|n| n.starts_with("._"))
}

fn refuse(message: impl Into<String>) -> Issue {
    Issue::error(Code::UnsupportedFormat, message).at(1)
}

/// The one `.csv` / `.txt` member of a zip file: its name and bytes, read up
/// to `limit` bytes (a member that expands past it is refused, whatever size
/// it claims).
pub(crate) fn extract(bytes: &[u8], limit: u64) -> Result<(String, Vec<u8>), Issue> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| refuse(format!("the zip file cannot be read: {e}")))?;
    let mut candidates = Vec::new();
    for i in 0..archive.len() {
        let file = archive
            .by_index_raw(i)
            .map_err(|e| refuse(format!("the zip file cannot be read: {e}")))?;
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        if is_junk(&name) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".zip") {
            return Err(refuse(format!(
                "the zip file holds another zip file ({name}); zip files inside zip files are not read"
            )));
        }
        candidates.push((i, name, lower));
    }
    let users: Vec<&(usize, String, String)> = candidates
        .iter()
        .filter(|(_, _, l)| l.ends_with(".csv") || l.ends_with(".txt") || l.ends_with(".tsv"))
        .collect();
    let (index, name) = match (users.as_slice(), candidates.len()) {
        ([one], 1) => (one.0, one.1.clone()),
        ([], 0) => {
            return Err(refuse(
                "the zip file is empty; it must hold one .csv or .txt file",
            ));
        }
        ([], _) => {
            let names: Vec<&str> = candidates.iter().take(5).map(|c| c.1.as_str()).collect();
            return Err(refuse(format!(
                "the zip file holds no .csv or .txt file (it holds {})",
                names.join(", ")
            )));
        }
        _ => {
            let names: Vec<&str> = candidates.iter().take(5).map(|c| c.1.as_str()).collect();
            return Err(refuse(format!(
                "the zip file must hold exactly one .csv or .txt file; it holds {} files ({}{})",
                candidates.len(),
                names.join(", "),
                if candidates.len() > 5 { ", …" } else { "" }
            )));
        }
    };
    let file = archive
        .by_index(index)
        .map_err(|e| refuse(format!("{name} cannot be read from the zip file: {e}")))?;
    if file.encrypted() {
        return Err(refuse(format!("{name} is encrypted in the zip file")));
    }
    let mut out = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| refuse(format!("{name} cannot be read from the zip file: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Issue::error(
            Code::LimitExceeded,
            format!("{name} expands to more than the limit of {limit} bytes"),
        )
        .at(1));
    }
    if out.starts_with(b"PK\x03\x04") {
        return Err(refuse(format!(
            "{name} is itself a zip file; zip files inside zip files are not read"
        )));
    }
    Ok((name, out))
}
