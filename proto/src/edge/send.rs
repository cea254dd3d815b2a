//! Putting datagrams into the output queue: control messages to a supernode, edge-to-edge packets on a
//! path (with the relay header when relayed), and data sealed in place on a peer's current session.

use std::net::SocketAddr;
use std::time::Instant;

use super::peer::Peer;
use super::{Core, Path};
use crate::keys::PeerTag;
use crate::wire::{self, DataKind, MsgType, DATA_HEADER_LEN, TAG_LEN};

impl Core {
    /// Queues a control datagram (registration, punch request): not on the data path, built in its own
    /// buffer.
    pub(super) fn push_transmit(&mut self, dest: SocketAddr, payload: Vec<u8>) {
        self.transmits.push(dest, &payload);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += payload.len() as u64;
    }

    /// Queues an edge-to-edge packet for the peer with tag `tag` on `path`, built by `write` in place
    /// after the relay header when the path needs one.
    pub(super) fn send_on_path(
        &mut self,
        path: Path,
        tag: PeerTag,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let Some(dest) = path.dest(|| self.relay_supernode()) else {
            return;
        };
        let (len, _) = self.transmits.push_with(dest, |buf| {
            if !path.is_direct() {
                wire::encode_relay_header(MsgType::Relay, tag, buf);
            }
            write(buf);
        });
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
    }

    /// Seals `payload` on the peer's current session and sends it on `path` (the peer's path if None).
    pub(super) fn send_data(
        &mut self,
        p: &mut Peer,
        kind: DataKind,
        payload: &[u8],
        path: Option<Path>,
        now: Instant,
    ) -> bool {
        self.seal(p, kind, [payload, &[]], path, now)
    }

    /// [`Core::send_data`] of a payload given in two parts (a rebuilt header and a payload slice of a
    /// larger buffer, as segmentation offload hands frames over), copied once, straight into the output
    /// queue, and sealed there in place. False when there is no path, no current session, or the session
    /// may no longer send.
    pub(super) fn seal(
        &mut self,
        p: &mut Peer,
        kind: DataKind,
        parts: [&[u8]; 2],
        path: Option<Path>,
        now: Instant,
    ) -> bool {
        let path = path.unwrap_or_else(|| p.path.or_relay(|| self.relay_supernode()));
        let Some(dest) = path.dest(|| self.relay_supernode()) else {
            return false;
        };
        let Some(s) = p.current.as_mut() else {
            return false;
        };
        if now.saturating_duration_since(s.created) >= self.cfg.timers.reject_after_time
            || s.sent() >= self.cfg.limits.reject_after_messages
        {
            return false;
        }
        let tag = p.key.tag();
        let (len, _) = self.transmits.push_with(dest, |buf| {
            if !path.is_direct() {
                wire::encode_relay_header(MsgType::Relay, tag, buf);
            }
            let start = buf.len();
            let [head, tail] = parts;
            buf.reserve(DATA_HEADER_LEN + head.len() + tail.len() + TAG_LEN);
            buf.resize(start + DATA_HEADER_LEN, 0);
            buf.extend_from_slice(head);
            buf.extend_from_slice(tail);
            s.seal_at(kind, buf, start);
        });
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        p.last_tx = now;
        p.counters.tx_packets += 1;
        if kind == DataKind::Frame {
            let n = (parts[0].len() + parts[1].len()) as u64;
            p.counters.tx_bytes += n;
            if path.is_direct() {
                self.stats.tx_direct_frames += 1;
                self.stats.tx_direct_bytes += n;
            } else {
                self.stats.tx_relayed_frames += 1;
                self.stats.tx_relayed_bytes += n;
            }
        }
        true
    }
}
