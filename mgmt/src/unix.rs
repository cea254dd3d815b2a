//! Taking ownership of a unix socket path safely.
//!
//! A daemon that crashed leaves its socket file behind, and binding over an existing file fails, so
//! startup must remove stale sockets — but never the socket of a daemon that is still running the
//! same session. The only reliable liveness test is to connect: a live listener accepts, a stale
//! file gives `ECONNREFUSED`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::error::WebError;

/// Mode of the session directory: owner and group may enter it, nobody else.
const DIR_MODE: u32 = 0o750;
/// Mode of the socket: connecting needs write permission, so 0660 lets the owner and the group
/// (the admin group that may manage weft) in.
const SOCKET_MODE: u32 = 0o660;

/// A bound unix socket plus what is needed to clean its file up again. Field order matters: the
/// listener is closed before the file is removed.
#[derive(Debug)]
pub(crate) struct BoundUnix {
    pub(crate) listener: UnixListener,
    pub(crate) file: SocketFile,
}

/// The socket file we created, identified by device and inode so that cleanup never removes a
/// socket that a later daemon bound at the same path. Removed on drop, so that the file goes away
/// however the server ends (shutdown, error, cancelled future, or bound but never served).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the socket file if it is still ours. Errors are only logged: this runs on shutdown,
    /// where there is nobody left to report them to, and a leftover file is handled at next start.
    fn remove(&self) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                match fs::remove_file(&self.path) {
                    Ok(()) => {
                        tracing::debug!(path = %self.path.display(), "removed management socket")
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "cannot remove management socket")
                    }
                }
            }
            Ok(_) => {
                tracing::debug!(path = %self.path.display(), "socket file was replaced by someone else; leaving it")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot stat management socket")
            }
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Create the parent directory (0750), refuse a live socket, remove a stale one, bind, chmod 0660.
///
/// Must be called inside a tokio runtime (binding registers with the reactor).
pub(crate) async fn bind(path: &Path) -> Result<BoundUnix, WebError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| WebError::InvalidPath(path.to_owned()))?;
    if path.file_name().is_none() {
        return Err(WebError::InvalidPath(path.to_owned()));
    }
    ensure_dir(dir)?;
    clear_stale(path).await?;

    let listener = UnixListener::bind(path).map_err(|source| WebError::Bind {
        path: path.to_owned(),
        source,
    })?;
    fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE)).map_err(|source| {
        WebError::Permissions {
            path: path.to_owned(),
            source,
        }
    })?;
    let meta = fs::symlink_metadata(path).map_err(|source| WebError::Bind {
        path: path.to_owned(),
        source,
    })?;
    tracing::debug!(path = %path.display(), "management socket bound");
    Ok(BoundUnix {
        listener,
        file: SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    })
}

/// Create `dir` (and missing parents) with mode 0750. An existing directory is left as it is: the
/// administrator may have chosen other permissions on purpose.
fn ensure_dir(dir: &Path) -> Result<(), WebError> {
    if dir.is_dir() {
        return Ok(());
    }
    let err = |source| WebError::CreateDir {
        path: dir.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(err)?;
    // The builder's mode is filtered by the umask; set it explicitly so the result is predictable.
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(err)?;
    tracing::debug!(dir = %dir.display(), "created management directory");
    Ok(())
}

/// Make `path` free for binding, or explain why it cannot be.
async fn clear_stale(path: &Path) -> Result<(), WebError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(WebError::Probe {
                path: path.to_owned(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(WebError::NotASocket(path.to_owned()));
    }
    // A unix connect succeeds as soon as the kernel queues the connection, without waiting for the
    // peer to accept(); tokio's connect is non-blocking, so a listener with a full backlog (a busy
    // or wedged daemon) shows up as WouldBlock instead of hanging us. Both mean "somebody is there".
    match tokio::net::UnixStream::connect(path).await {
        Ok(_) => Err(WebError::AlreadyRunning {
            session: session_name(path),
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(WebError::AlreadyRunning {
            session: session_name(path),
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::debug!(path = %path.display(), "removing stale management socket");
            fs::remove_file(path).map_err(|source| WebError::RemoveStale {
                path: path.to_owned(),
                source,
            })
        }
        Err(source) => Err(WebError::Probe {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The session a socket path belongs to: the name of its directory (see [`crate::socket_path`]).
pub(crate) fn session_name(path: &Path) -> String {
    path.parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
