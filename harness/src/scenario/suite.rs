//! Suites: which scenario files a command names, and the suite each
//! belongs to (what keys its contract snapshots).

use std::path::{Path, PathBuf};

use super::ScenarioError;

/// The scenario files that `paths` name: each file itself, each directory's
/// scenario files, and `scenarios/` when no path is given.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    Ok(suite_files(paths)?.into_iter().map(|f| f.path).collect())
}

/// A scenario file and the suite it belongs to: the directory it was found
/// in, or its own directory when named alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteFile {
    pub suite: PathBuf,
    pub path: PathBuf,
}

impl SuiteFile {
    /// The file's path within its suite, without `.toml`: what keys its
    /// contract snapshots, so that two suites never collide.
    pub fn key(&self) -> String {
        let within = self.path.strip_prefix(&self.suite).unwrap_or(&self.path);
        within
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// As [`files`], with the suite of each.
pub fn suite_files(paths: &[PathBuf]) -> Result<Vec<SuiteFile>, ScenarioError> {
    let default = [PathBuf::from("scenarios")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(discover(path)?.into_iter().map(|file| SuiteFile {
                suite: path.clone(),
                path: file,
            }));
        } else {
            let suite = path.parent().map(Path::to_path_buf).unwrap_or_default();
            files.push(SuiteFile {
                suite,
                path: path.clone(),
            });
        }
    }
    Ok(files)
}

/// The scenario files in `dir` (not its subdirectories, which hold includes),
/// in name order.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| ScenarioError::file(dir, format!("cannot list scenarios: {err}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ScenarioError::file(dir, "no scenario files (*.toml) here"));
    }
    Ok(files)
}
