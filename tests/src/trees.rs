//! File trees for the volume tests and benchmarks: built with what real
//! volumes hold (nested directories, symlinks, empty and sparse files, odd
//! modes and times), and a digest of content plus metadata to compare two
//! trees with.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// What [`build_tree`] makes.
#[derive(Clone, Copy, Debug)]
pub struct TreeShape {
    /// Regular files, spread over nested directories.
    pub files: usize,
    /// The size of a sparse file at the top (0: none). Only its first and
    /// last MiB hold data.
    pub sparse_bytes: u64,
    pub seed: u64,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn set_mtime(path: &Path, secs: u64) -> Result<()> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::new(secs, 123_456_789))
        .with_context(|| format!("setting the mtime of {}", path.display()))
}

/// Fills `root` (which must exist) with `shape.files` files of 0–8 KiB in
/// directories three levels deep, one symlink per directory, every
/// hundredth file empty, modes varying, mtimes in 2021.
pub fn build_tree(root: &Path, shape: TreeShape) -> Result<()> {
    let mut state = shape.seed | 1;
    let per_dir = 50;
    let mut dirs = Vec::new();
    for i in 0..shape.files {
        let dir = root
            .join(format!("d{}", i / (per_dir * 10)))
            .join(format!("e{}", (i / per_dir) % 10))
            .join("f");
        if i % per_dir == 0 {
            fs::create_dir_all(&dir)?;
            symlink(format!("../../e{}", (i / per_dir) % 10), dir.join("up"))?;
            dirs.push(dir.clone());
        }
        let path = dir.join(format!("file-{i}.txt"));
        let len = if i % 100 == 7 {
            0
        } else {
            (xorshift(&mut state) % 8192) as usize
        };
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            data.extend_from_slice(format!("{i}:{} ", xorshift(&mut state)).as_bytes());
        }
        data.truncate(len);
        fs::write(&path, &data)?;
        let mode = [0o644, 0o600, 0o755, 0o640, 0o444][i % 5];
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        set_mtime(&path, 1_610_000_000 + (i as u64) * 37)?;
    }
    if shape.sparse_bytes > 0 {
        let path = root.join("sparse.img");
        let mut file = fs::File::create(&path)?;
        file.write_all(&vec![0xab; 1 << 20])?;
        file.seek(SeekFrom::Start(shape.sparse_bytes - (1 << 20)))?;
        file.write_all(&vec![0xcd; 1 << 20])?;
        drop(file);
        set_mtime(&path, 1_620_000_000)?;
    }
    fs::write(root.join("empty"), b"")?;
    set_mtime(&root.join("empty"), 1_600_000_000)?;
    // Directory times last: writing into a directory changes its mtime.
    for (n, dir) in dirs.iter().enumerate().rev() {
        set_mtime(dir, 1_630_000_000 + n as u64)?;
    }
    Ok(())
}

/// Fills `root` (which must exist) with what volumes hold besides ordinary
/// files, the cases a backup must bring back exactly: directories that hold
/// nothing, 0-byte files, a dangling symlink and an absolute one pointing
/// outside the volume (restored as links, never followed), a hardlinked
/// pair, a sparse file, names with a newline, non-UTF-8 bytes and 255
/// bytes, and a directory tree `depth` levels deep.
pub fn build_odd_tree(root: &Path, depth: usize) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    for dir in ["empty-a", "empty-b/nested/deeper", "empty-c/x"] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::create_dir_all(root.join("files"))?;
    for n in 0..3 {
        fs::write(root.join(format!("files/zero-{n}")), b"")?;
    }
    symlink("/nowhere/at/all", root.join("files/dangling"))?;
    symlink("/etc/hostname", root.join("files/absolute"))?;
    fs::write(root.join("files/linked-a"), b"one inode, two names\n")?;
    fs::hard_link(root.join("files/linked-a"), root.join("files/linked-b"))?;
    {
        let mut file = fs::File::create(root.join("files/sparse.img"))?;
        file.seek(SeekFrom::Start(32 << 20))?;
        file.write_all(b"end")?;
    }
    fs::write(root.join("files/new\nline"), b"a newline in the name")?;
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9-latin1");
    fs::write(root.join("files").join(latin1), b"not UTF-8")?;
    fs::write(
        root.join("files").join("n".repeat(255)),
        b"a name of 255 bytes",
    )?;
    let mut deep = root.join("deep");
    for _ in 0..depth {
        deep.push("d");
    }
    fs::create_dir_all(&deep)?;
    fs::write(deep.join("bottom.txt"), b"the bottom")?;
    for (n, path) in walk(root)?.iter().enumerate() {
        let meta = fs::symlink_metadata(path)?;
        if meta.is_file() {
            fs::set_permissions(
                path,
                fs::Permissions::from_mode([0o640, 0o600, 0o755][n % 3]),
            )?;
            set_mtime(path, 1_600_000_000 + n as u64)?;
        }
    }
    // Directory times last, deepest first: writing into a directory changes its mtime.
    let mut dirs: Vec<_> = walk(root)?
        .into_iter()
        .filter(|p| {
            p.is_dir() && !fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
        })
        .collect();
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (n, dir) in dirs.iter().enumerate() {
        set_mtime(dir, 1_640_000_000 + n as u64)?;
    }
    Ok(())
}

/// Rewrites every `1/every`-th regular file (by sorted path) with new content
/// of the same size; returns how many bytes changed.
pub fn change_files(root: &Path, every: usize) -> Result<u64> {
    let mut changed = 0;
    for (n, entry) in walk(root)?.into_iter().enumerate() {
        let meta = fs::symlink_metadata(&entry)?;
        if n % every == 0 && meta.is_file() && meta.len() > 0 && meta.len() < (1 << 20) {
            let data: Vec<u8> = (0..meta.len()).map(|i| (i * 31 + n as u64) as u8).collect();
            fs::write(&entry, &data)?;
            changed += meta.len();
        }
    }
    Ok(changed)
}

fn walk(root: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The SHA-256 of every entry under `root`: relative path, type, mode,
/// owner, mtime (to the nanosecond; directories too), size, and content or
/// link target. Sparse files hash their content like any other (holes read
/// as zeros), and report how much disk they occupy in [`TreeDigest::allocated`].
#[derive(Debug, PartialEq, Eq)]
pub struct TreeDigest {
    pub digest: String,
    pub entries: usize,
    pub bytes: u64,
    pub allocated: u64,
}

pub fn tree_digest(root: &Path) -> Result<TreeDigest> {
    let mut hasher = Sha256::new();
    let (mut entries, mut bytes, mut allocated) = (0, 0, 0);
    let mut inodes = std::collections::BTreeMap::new();
    for path in walk(root)? {
        let meta = fs::symlink_metadata(&path)?;
        // Names by their bytes (escaped), so non-UTF-8 names compare exactly.
        let rel = path
            .strip_prefix(root)?
            .as_os_str()
            .as_encoded_bytes()
            .escape_ascii()
            .to_string();
        let kind = if meta.is_dir() {
            "d"
        } else if meta.file_type().is_symlink() {
            "l"
        } else {
            "f"
        };
        // A directory's mtime changes when anything is restored into it
        // after it; compare them too: the restore must set them last.
        hasher.update(format!(
            "{rel}\0{kind}\0{:o}\0{}:{}\0{}.{}\0{}\0",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid(),
            meta.mtime(),
            meta.mtime_nsec(),
            if meta.is_dir() { 0 } else { meta.len() },
        ));
        // Hardlinks: which earlier path shares the inode.
        if kind == "f" && meta.nlink() > 1 {
            let first = inodes
                .entry((meta.dev(), meta.ino()))
                .or_insert_with(|| rel.clone());
            hasher.update(format!("link\0{first}\0"));
        }
        if kind == "l" {
            hasher.update(fs::read_link(&path)?.to_string_lossy().as_bytes());
        } else if kind == "f" {
            bytes += meta.len();
            allocated += meta.blocks() * 512;
            let mut file = fs::File::open(&path)?;
            let mut buf = vec![0; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
        entries += 1;
    }
    Ok(TreeDigest {
        digest: hex::encode(hasher.finalize()),
        entries,
        bytes,
        allocated,
    })
}
