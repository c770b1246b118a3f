//! Errors of files and sockets, worded for the user. Under wasmtime a capability the
//! command was not given shows as a plain OS error (a file outside every `--dir` is
//! "No such file or directory", a socket without `-S inherit-network` is "Permission
//! denied"); on WASI these say which wasmtime flag grants it. Natively they are the OS's.

use std::io;

/// `cannot {doing} '{path}': ...` for a file the command could not open. `writes`: it
/// was to be written (the key log), else read.
pub fn file_error(doing: &str, path: &str, err: &io::Error, writes: bool) -> String {
    #[cfg(target_os = "wasi")]
    if let Some(dir) = outside_every_dir(path, err) {
        let what = if writes {
            "not in the directories this program may write"
        } else {
            "no such file in the directories this program may read"
        };
        return format!(
            "cannot {doing} '{path}': {what} (run wasmtime with --dir HOST_DIR::{dir})"
        );
    }
    let _ = writes;
    format!("cannot {doing} '{path}': {err}")
}

/// For a path WASI could not find: the directory to map, if no part of the path is in a
/// directory the program was given. wasi-libc answers ENOENT both for a missing file
/// and for a path under no preopened directory; an ancestor it can see tells them apart.
#[cfg(target_os = "wasi")]
fn outside_every_dir(path: &str, err: &io::Error) -> Option<String> {
    use std::path::Path;

    if err.kind() != io::ErrorKind::NotFound {
        return None;
    }
    let path = Path::new(path);
    if path
        .ancestors()
        .skip(1)
        .any(|dir| std::fs::metadata(dir).is_ok())
    {
        return None;
    }
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| ".".to_owned(), |dir| dir.display().to_string());
    Some(dir)
}

/// `cannot connect to {target}: ...`.
pub fn connect_error(target: &str, err: &io::Error) -> String {
    // WASI's access-denied: wasmtime gives no TCP without -S inherit-network.
    if cfg!(target_os = "wasi") && err.kind() == io::ErrorKind::PermissionDenied {
        return format!(
            "cannot connect to {target}: network access denied (run wasmtime with \
             -S inherit-network, and -S allow-ip-name-lookup for host names)"
        );
    }
    format!("cannot connect to {target}: {err}")
}

/// `cannot resolve '{target}': ...`.
pub fn resolve_error(target: &str, err: &io::Error) -> String {
    // Without -S allow-ip-name-lookup, wasmtime's resolver fails as EAI_FAIL, which std
    // reports only as text.
    if cfg!(target_os = "wasi") && err.to_string().contains("Non-recoverable") {
        return format!(
            "cannot resolve '{target}': name lookup denied or failed (run wasmtime with \
             -S allow-ip-name-lookup, and -S inherit-network to connect)"
        );
    }
    format!("cannot resolve '{target}': {err}")
}
