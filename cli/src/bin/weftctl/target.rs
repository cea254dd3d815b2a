//! Which daemon to talk to: `--session`, `--socket`, `--url`, or the one running session.

use std::path::{Path, PathBuf};

use weft_mgmt::client::{running_sessions, Target};

use crate::{Exit, Failure};

/// Parent of the session directories: `$WEFT_RUNTIME_DIR` or `/run/weft`.
fn runtime_dir() -> PathBuf {
    std::env::var_os("WEFT_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(weft_mgmt::DEFAULT_RUNTIME_DIR))
}

/// The target named on the command line, or the only running session.
pub(crate) fn resolve(
    session: Option<&str>,
    socket: Option<&Path>,
    url: Option<&str>,
) -> Result<Target, Failure> {
    if let Some(url) = url {
        return Target::from_url(url).map_err(|e| Failure::new(Exit::Usage, e.to_string()));
    }
    if let Some(socket) = socket {
        return Ok(Target::Unix(socket.to_owned()));
    }
    let dir = runtime_dir();
    if let Some(session) = session {
        if session.is_empty() || session.contains('/') || session == "." || session == ".." {
            return Err(Failure::new(
                Exit::Usage,
                format!("invalid session name {session:?}"),
            ));
        }
        return Ok(Target::Unix(weft_mgmt::socket_path(&dir, session)));
    }
    let sessions = running_sessions(&dir).map_err(|e| {
        Failure::new(
            Exit::Unreachable,
            format!("cannot look for running sessions in {}: {e}", dir.display()),
        )
    })?;
    match sessions.as_slice() {
        [] => Err(Failure::new(
            Exit::Unreachable,
            format!("no running weft daemon found under {}", dir.display()),
        )),
        [one] => Ok(Target::Unix(one.socket.clone())),
        several => {
            let names: Vec<&str> = several.iter().map(|s| s.name.as_str()).collect();
            Err(Failure::new(
                Exit::Usage,
                format!(
                    "several sessions are running: {}; choose one with --session",
                    names.join(", ")
                ),
            ))
        }
    }
}
