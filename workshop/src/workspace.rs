//! Where things are in the workshop repository.

use std::path::{Path, PathBuf};

/// The repository root. `cargo workshop` runs through `cargo run`, which
/// names the workshop crate of the repository it runs in; a binary started
/// some other way falls back to the repository it was built in.
pub fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("src/workspace.rs").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("workshop/ sits in the repository root")
        .to_path_buf()
}

/// The learner's crate for module `n` in the repository at `root`.
pub fn learner_dir(root: &Path, n: u32) -> PathBuf {
    root.join("modules").join(format!("module-{n}"))
}

/// The reference solution for module `n` in the repository at `root`.
pub fn solution_dir(root: &Path, n: u32) -> PathBuf {
    root.join("solutions").join(format!("module-{n}"))
}

/// The package names of module `n`: (learner, reference).
pub fn packages(n: u32) -> (String, String) {
    (format!("module-{n}"), format!("module-{n}-solution"))
}

/// Where `solve` and `reset` keep the learner's code before replacing it.
pub fn backups_dir(root: &Path) -> PathBuf {
    root.join(".workshop").join("backups")
}

/// The cargo the tool was started by, so a pinned toolchain stays pinned.
pub fn cargo() -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(root());
    command
}
