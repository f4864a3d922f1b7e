//! Where things are in the workshop repository.

use std::path::{Path, PathBuf};

/// The repository root: the workspace this tool was built in.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
