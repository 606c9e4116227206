//! Where the relative paths of a config file point: paths written in the
//! file are taken from the file's directory; the default model and
//! onnxruntime library are the installation's (the checkout the binary was
//! built in), so `serve` finds them from any working directory.

use std::path::{Path, PathBuf};

/// The directory relative paths in the config file at `config` start from:
/// the file's directory, made absolute against the working directory.
pub fn config_dir(config: &Path) -> PathBuf {
    let absolute = std::path::absolute(config).unwrap_or_else(|_| config.to_owned());
    match absolute.parent() {
        Some(dir) => dir.to_owned(),
        None => PathBuf::from("/"),
    }
}

/// `path` taken from `base` when relative; absolute paths are kept.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.as_os_str().is_empty() || path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// A `sqlite:` URL whose file path is relative, taken from `base`
/// (`sqlite://db/x.db?mode=rwc` -> `sqlite:///etc/xueliang/db/x.db?mode=rwc`).
/// In-memory databases and other schemes are kept.
pub fn resolve_sqlite_url(base: &Path, url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_owned();
    };
    let (file, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if file.is_empty() || file.starts_with(':') || Path::new(file).is_absolute() {
        return url.to_owned();
    }
    format!("sqlite://{}{query}", base.join(file).display())
}

/// The checkout the running binary belongs to: the directory above
/// `target/` when the binary is `<checkout>/target/<profile>/xueliang`;
/// `None` when it is installed elsewhere.
pub fn install_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile = exe.parent()?;
    let target = profile.parent()?;
    if target.file_name()? != "target" {
        return None;
    }
    target.parent().map(Path::to_owned)
}

/// A default file of the installation (`models/...`, `.local/...`): under
/// [`install_dir`] when there is one, else left relative (and then taken
/// from the config file's directory like a written path).
pub fn installed(relative: &str) -> PathBuf {
    match install_dir() {
        Some(dir) => dir.join(relative),
        None => PathBuf::from(relative),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_taken_from_the_base() {
        let base = Path::new("/etc/xueliang");
        assert_eq!(
            resolve(base, Path::new("models/m.toml")),
            Path::new("/etc/xueliang/models/m.toml")
        );
        assert_eq!(
            resolve(base, Path::new("/opt/m.toml")),
            Path::new("/opt/m.toml")
        );
    }

    #[test]
    fn sqlite_urls_with_relative_files_are_taken_from_the_base() {
        let base = Path::new("/etc/xueliang");
        assert_eq!(
            resolve_sqlite_url(base, "sqlite://db/x.db?mode=rwc"),
            "sqlite:///etc/xueliang/db/x.db?mode=rwc"
        );
        assert_eq!(
            resolve_sqlite_url(base, "sqlite:x.db"),
            "sqlite:///etc/xueliang/x.db"
        );
        for kept in [
            "sqlite:///var/lib/x.db",
            "sqlite::memory:",
            "postgres://db/x",
        ] {
            assert_eq!(resolve_sqlite_url(base, kept), kept);
        }
    }

    #[test]
    fn the_config_dir_is_absolute() {
        let dir = config_dir(Path::new("config/demo.toml"));
        assert!(dir.is_absolute() && dir.ends_with("config"), "{dir:?}");
    }
}
