//! Where things are in the workshop repository.

use std::path::{Path, PathBuf};

/// The repository root (see [`lab::paths::root`]).
pub use lab::paths::{root, target_dir};

/// `path` relative to the repository root, as a learner would type it.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
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

/// The cargo the tool was started by, so a pinned toolchain stays pinned,
/// with the environment of a cargo started from a shell.
///
/// `cargo run` (how `cargo workshop` starts) and `cargo test` hand their
/// child the variables they set for it: `CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, a longer `LD_LIBRARY_PATH`, and so on. A cargo that
/// inherits them gives build scripts a different environment from the one
/// the learner's own `cargo test` gives them, and build scripts that watch
/// their environment (ring's does) run again, and everything above them is
/// compiled again: every switch between `cargo workshop verify` and
/// `cargo test -p module-1` would rebuild the TLS stack.
pub fn cargo() -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(root());
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && set_by_cargo(name)
        {
            command.env_remove(name);
        }
    }
    if let Some(paths) = std::env::var_os(DYLIB_PATH) {
        let kept = dylib_paths_of_the_shell(&paths);
        if kept.is_empty() {
            command.env_remove(DYLIB_PATH);
        } else {
            command.env(DYLIB_PATH, kept);
        }
    }
    command
}

/// Whether cargo sets `name` for the programs it runs (`cargo run`,
/// `cargo test`), rather than a user setting it to configure cargo.
pub fn set_by_cargo(name: &str) -> bool {
    const SET_FOR_PROGRAMS: &[&str] = &[
        "CARGO",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_MAKEFLAGS",
        "OUT_DIR",
        "RUST_RECURSION_COUNT",
    ];
    SET_FOR_PROGRAMS.contains(&name)
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
        || name.starts_with("CARGO_CFG_")
}

#[cfg(target_os = "macos")]
const DYLIB_PATH: &str = "DYLD_FALLBACK_LIBRARY_PATH";
#[cfg(windows)]
const DYLIB_PATH: &str = "PATH";
#[cfg(not(any(target_os = "macos", windows)))]
const DYLIB_PATH: &str = "LD_LIBRARY_PATH";

/// The library path without the directories cargo put in front of it: the
/// target directory's and the toolchain's own.
fn dylib_paths_of_the_shell(paths: &std::ffi::OsStr) -> std::ffi::OsString {
    if cfg!(windows) {
        // On Windows the variable is PATH itself: leave it whole.
        return paths.to_os_string();
    }
    let target = target_dir();
    let toolchains = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .map(|home| home.join("toolchains"));
    let kept: Vec<PathBuf> = std::env::split_paths(paths)
        .filter(|p| !p.starts_with(&target))
        .filter(|p| toolchains.as_ref().is_none_or(|t| !p.starts_with(t)))
        .collect();
    std::env::join_paths(kept).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cargo_sets_for_a_program_is_not_passed_on() {
        for name in [
            "CARGO",
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_PRE",
            "CARGO_BIN_EXE_module-1",
            "CARGO_TARGET_TMPDIR",
            "RUST_RECURSION_COUNT",
        ] {
            assert!(set_by_cargo(name), "{name} should be removed");
        }
    }

    #[test]
    fn what_a_user_sets_to_configure_cargo_is_kept() {
        for name in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO_TERM_COLOR",
            "CARGO_INCREMENTAL",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_NET_OFFLINE",
            "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
            "RUSTUP_TOOLCHAIN",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo(name), "{name} should be kept");
        }
    }

    #[test]
    fn the_child_cargo_gets_no_variable_cargo_set_for_this_program() {
        // This test runs under `cargo test`, which sets them for it.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let command = cargo();
        let removed: Vec<String> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        for name in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PKG_VERSION"] {
            assert!(removed.iter().any(|r| r == name), "{name} is passed on");
        }
    }
}
