//! Telling systemd how the daemon is doing (`Type=notify`), through the `sd-notify` crate: READY once it
//! serves, RELOADING around a SIGHUP reload, STOPPING when it shuts down, with a one-line STATUS that
//! `systemctl status` shows. All of it is a no-op when `NOTIFY_SOCKET` is unset (not under systemd).

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// READY=1, with a status line.
pub fn ready(status: &str) {
    tracing::debug!("ready: {status}");
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// RELOADING=1 (a SIGHUP reload starts; [`ready`] ends it).
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// STOPPING=1.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
