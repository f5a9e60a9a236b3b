//! Dangerous content: executables and scripts (also inside zip archives), double extensions,
//! macro-enabled Office documents and zip bombs.
//!
//! Archives are inspected with strict limits: at most [`MAX_ENTRIES`] entries, nesting depth
//! [`MAX_DEPTH`], [`MAX_INFLATE`] bytes actually decompressed per message, and a declared
//! expansion of at most [`MAX_DECLARED`] bytes or [`MAX_RATIO`] times the archive size.

use std::io::{Cursor, Read};

use super::Tags;
use super::test_strings::{contains, has_eicar};
use crate::message::Extracted;

pub const MAX_ENTRIES: usize = 1000;
pub const MAX_DEPTH: u32 = 3;
pub const MAX_INFLATE: u64 = 8 * 1024 * 1024;
pub const MAX_DECLARED: u64 = 512 * 1024 * 1024;
pub const MAX_RATIO: u64 = 200;

/// Extensions of programs and scripts that run when opened.
pub const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe",
    "scr",
    "com",
    "pif",
    "bat",
    "cmd",
    "js",
    "jse",
    "vbs",
    "vbe",
    "wsf",
    "wsh",
    "hta",
    "ps1",
    "psm1",
    "lnk",
    "msi",
    "msp",
    "jar",
    "cpl",
    "reg",
    "vb",
    "application",
    "gadget",
    "msc",
    "scf",
    "dll",
    "sys",
    "appx",
    "appxbundle",
    "msix",
    "iqy",
    "slk",
    "sct",
    "chm",
    "inf",
];

/// Macro-enabled Office formats.
pub const MACRO_EXTENSIONS: &[&str] = &[
    "docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppsm", "sldm", "ppam",
];

/// Extensions a double-extension trick hides behind.
const DECOY_EXTENSIONS: &[&str] = &[
    "pdf", "doc", "docx", "xls", "xlsx", "txt", "jpg", "jpeg", "png", "gif", "zip", "rtf", "htm",
    "html", "mp3", "mp4", "avi",
];

/// Runs the attachment rules.
pub fn analyze(message: &Extracted<'_>, tags: &mut Tags) {
    let mut budget = MAX_INFLATE;
    for attachment in message.attachments.iter().take(100) {
        let name = attachment.name.as_deref().unwrap_or("").trim().to_owned();
        inspect_file(&name, attachment.data, "attachment", 0, &mut budget, tags);
        let is_zip = attachment.data.starts_with(b"PK\x03\x04")
            || attachment.content_type.ends_with("/zip")
            || attachment.content_type.ends_with("/x-zip-compressed");
        if is_zip {
            inspect_zip(&name, attachment.data, 1, &mut budget, tags);
        }
    }
}

fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(
        ext.trim()
            .trim_end_matches(['"', '\''])
            .to_ascii_lowercase(),
    )
}

/// Checks one file (an attachment or an archive entry) by name and content.
fn inspect_file(
    name: &str,
    data: &[u8],
    what: &str,
    depth: u32,
    budget: &mut u64,
    tags: &mut Tags,
) {
    let ext = extension(name);
    let lower = name.to_ascii_lowercase();
    let executable_ext = ext
        .as_deref()
        .is_some_and(|e| EXECUTABLE_EXTENSIONS.contains(&e));
    let executable_magic = data.starts_with(b"MZ") || data.starts_with(b"\x7fELF");
    let (rule, where_) = if depth == 0 {
        ("EXECUTABLE_ATTACHMENT", format!("{what} {name:?}"))
    } else {
        (
            "EXECUTABLE_IN_ARCHIVE",
            format!("{name:?} inside a zip archive"),
        )
    };
    if executable_ext || executable_magic {
        let kind = if executable_magic {
            "program"
        } else {
            "runnable file"
        };
        tags.add(rule, format!("{where_} is a {kind}"));
    }
    // invoice.pdf.exe, or many spaces before the real extension.
    let parts: Vec<&str> = lower.rsplitn(3, '.').collect();
    if parts.len() == 3 && executable_ext {
        let decoy = parts[1].trim();
        if DECOY_EXTENSIONS.contains(&decoy) || lower.contains("   ") {
            tags.add("DOUBLE_EXTENSION", format!("{name:?}"));
        }
    }
    if ext
        .as_deref()
        .is_some_and(|e| MACRO_EXTENSIONS.contains(&e))
    {
        tags.add(
            "OFFICE_MACRO",
            format!("{where_} is a macro-enabled document"),
        );
    } else if data.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        // OLE2 (legacy Office): look for the VBA project stream name (UTF-16LE).
        let marker = "_VBA_PROJECT"
            .bytes()
            .flat_map(|b| [b, 0])
            .collect::<Vec<u8>>();
        if contains(&data[..data.len().min(16 * 1024 * 1024)], &marker) {
            tags.add("OFFICE_MACRO", format!("{where_} contains a VBA project"));
        }
    } else if data.starts_with(b"PK\x03\x04") && depth < MAX_DEPTH && is_ooxml(ext.as_deref()) {
        // OOXML: macros live in vbaProject.bin; listing the entries is enough.
        if let Ok(archive) = zip::ZipArchive::new(Cursor::new(data))
            && archive
                .file_names()
                .any(|n| n.to_ascii_lowercase().ends_with("vbaproject.bin"))
        {
            tags.add("OFFICE_MACRO", format!("{where_} contains a VBA project"));
        }
    }
    if depth > 0 && has_eicar(data) {
        tags.add("EICAR", format!("{name:?} inside a zip archive"));
    }
    let _ = budget;
}

fn is_ooxml(ext: Option<&str>) -> bool {
    matches!(
        ext,
        Some("docx" | "xlsx" | "pptx" | "dotx" | "xltx" | "potx" | "ppsx")
    )
}

/// Lists and (within the budget) reads a zip archive's entries.
fn inspect_zip(name: &str, data: &[u8], depth: u32, budget: &mut u64, tags: &mut Tags) {
    if depth > MAX_DEPTH {
        tags.add(
            "ARCHIVE_BOMB",
            format!("{name:?} nests archives more than {MAX_DEPTH} deep"),
        );
        return;
    }
    if is_ooxml(extension(name).as_deref()) {
        return;
    }
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(archive) => archive,
        Err(_) => {
            tags.add("ARCHIVE_UNREADABLE", format!("{name:?}"));
            return;
        }
    };
    if archive.len() > MAX_ENTRIES {
        tags.add(
            "ARCHIVE_BOMB",
            format!("{name:?} has {} entries", archive.len()),
        );
        return;
    }
    // First pass: metadata only, so that a bomb is refused before anything is inflated.
    let mut entries = Vec::new();
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let Ok(entry) = archive.by_index_raw(index) else {
            tags.add("ARCHIVE_UNREADABLE", format!("{name:?}"));
            return;
        };
        if entry.is_dir() {
            continue;
        }
        declared = declared.saturating_add(entry.size());
        let base = entry
            .name()
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .to_owned();
        entries.push((index, base, entry.size(), entry.encrypted()));
    }
    if declared > MAX_DECLARED
        || (declared > 16 * 1024 * 1024 && declared / (data.len() as u64).max(1) > MAX_RATIO)
    {
        tags.add(
            "ARCHIVE_BOMB",
            format!("{name:?} would expand to {} MB", declared / (1024 * 1024)),
        );
        return;
    }
    // Second pass: names, and a bounded prefix of each entry (magic numbers, EICAR), or the
    // whole entry for nested archives.
    for (index, base, size, encrypted) in entries {
        if encrypted {
            tags.add("ARCHIVE_ENCRYPTED", format!("{name:?}"));
            inspect_file(&base, &[], "entry", depth, budget, tags);
            continue;
        }
        let nested_name = extension(&base).as_deref() == Some("zip");
        let limit = if nested_name {
            4 * 1024 * 1024
        } else {
            64 * 1024
        };
        let want = size.min(*budget).min(limit);
        let mut content = Vec::new();
        if want > 0
            && let Ok(entry) = archive.by_index(index)
        {
            let _ = entry.take(want).read_to_end(&mut content);
        }
        *budget = budget.saturating_sub(content.len() as u64);
        inspect_file(&base, &content, "entry", depth, budget, tags);
        let nested = nested_name
            || (content.starts_with(b"PK\x03\x04") && !is_ooxml(extension(&base).as_deref()));
        if nested {
            if content.len() as u64 == size {
                inspect_zip(&base, &content, depth + 1, budget, tags);
            } else {
                tags.add(
                    "ARCHIVE_UNREADABLE",
                    format!("{base:?} nested in {name:?} is too large to inspect"),
                );
            }
        }
    }
}
