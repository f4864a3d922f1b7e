//! Where the repository and its build output are, for the lab and for the
//! tool on top of it.

use std::path::{Path, PathBuf};

/// Whether `dir` is the workshop's repository root.
fn is_root(dir: &Path) -> bool {
    dir.join("steps.toml").is_file() && dir.join("lab").join("Cargo.toml").is_file()
}

/// The repository root. Cargo sets `CARGO_MANIFEST_DIR` to the package it
/// runs (the tool, a module's suite, the lab's tests), which sits inside
/// the repository; without it, the lab's own source directory tells.
pub fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| dir.ancestors().find(|d| is_root(d)).map(Path::to_path_buf))
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("lab/ sits in the repository root")
                .to_path_buf()
        })
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the
/// root), else `target/` in the root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_holds_the_steps_and_the_lab() {
        let root = root();
        assert!(
            is_root(&root),
            "{} is not the repository root",
            root.display()
        );
        assert!(!is_root(&root.join("lab")));
    }
}
