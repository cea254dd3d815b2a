//! One transport session: the two keys a handshake produced, the send counter and the receive replay window.
//!
//! Packets are `header (16 bytes) | ciphertext | tag (16)`, sealed with ChaCha20-Poly1305 (ring's
//! implementation: it picks the fastest code for the CPU at run time, about three times the portable
//! RustCrypto speed on our machines, and a distribution binary cannot be built for one CPU). The nonce is
//! four zero bytes and the 64-bit little-endian counter; the header is the associated data, so the kind,
//! index and counter are authenticated too. Sealing and opening work in place.

use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

use crate::handshake::TransportKeys;
use crate::replay::ReplayWindow;
use crate::wire::{DataHeader, DataKind, DATA_HEADER_LEN, TAG_LEN};

/// Why a data packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The counter was seen before or is too old.
    #[error("replayed or too old")]
    Replay,
    /// Authentication failed.
    #[error("authentication failed")]
    Auth,
}

/// A session's keys and counters.
pub struct Session {
    /// Our index: peers put it on packets for this session.
    pub local_index: u32,
    /// The peer's index: we put it on packets we send.
    pub remote_index: u32,
    /// When the handshake completed.
    pub created: Instant,
    /// Whether we initiated the handshake (the initiator is the one that rekeys on time).
    pub initiator: bool,
    send_key: LessSafeKey,
    recv_key: LessSafeKey,
    send_counter: u64,
    replay: ReplayWindow,
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

fn key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("32-byte key"))
}

impl Session {
    /// A session from freshly agreed keys.
    pub fn new(
        keys: TransportKeys,
        local_index: u32,
        remote_index: u32,
        initiator: bool,
        now: Instant,
    ) -> Session {
        Session {
            local_index,
            remote_index,
            created: now,
            initiator,
            send_key: key(&keys.send),
            recv_key: key(&keys.recv),
            send_counter: 0,
            replay: ReplayWindow::default(),
        }
    }

    /// How many packets were sealed so far.
    pub fn sent(&self) -> u64 {
        self.send_counter
    }

    /// Seals `payload` into a new data packet appended to `out`.
    pub fn seal(&mut self, kind: DataKind, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(DATA_HEADER_LEN + payload.len() + TAG_LEN);
        out.extend_from_slice(&[0u8; DATA_HEADER_LEN]);
        out.extend_from_slice(payload);
        self.seal_at(kind, out, start);
    }

    /// Seals the payload that sits at `buf[start + DATA_HEADER_LEN..]`: writes the header in front of it and
    /// appends the tag. `buf[start..start + DATA_HEADER_LEN]` must be reserved space.
    pub fn seal_at(&mut self, kind: DataKind, buf: &mut Vec<u8>, start: usize) {
        let counter = self.send_counter;
        self.send_counter += 1;
        let mut hdr = [0u8; DATA_HEADER_LEN];
        DataHeader {
            kind,
            receiver_index: self.remote_index,
            counter,
        }
        .write(&mut hdr);
        buf[start..start + DATA_HEADER_LEN].copy_from_slice(&hdr);
        let tag = self
            .send_key
            .seal_in_place_separate_tag(
                nonce(counter),
                Aad::from(&hdr),
                &mut buf[start + DATA_HEADER_LEN..],
            )
            .expect("payload within ChaCha20-Poly1305 limits");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Opens a data packet in place: on success the plaintext is `packet[DATA_HEADER_LEN..len - TAG_LEN]`.
    pub fn open(&mut self, header: &DataHeader, packet: &mut [u8]) -> Result<usize, OpenError> {
        if !self.replay.check(header.counter) {
            return Err(OpenError::Replay);
        }
        let (hdr, body) = packet.split_at_mut(DATA_HEADER_LEN);
        let plain = self
            .recv_key
            .open_in_place(nonce(header.counter), Aad::from(&*hdr), body)
            .map_err(|_| OpenError::Auth)?
            .len();
        // Only an authentic packet moves the window.
        self.replay.record(header.counter);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, Message};

    fn pair(now: Instant) -> (Session, Session) {
        let a = Session::new(
            TransportKeys {
                send: [1; 32],
                recv: [2; 32],
            },
            10,
            20,
            true,
            now,
        );
        let b = Session::new(
            TransportKeys {
                send: [2; 32],
                recv: [1; 32],
            },
            20,
            10,
            false,
            now,
        );
        (a, b)
    }

    fn sealed(s: &mut Session, kind: DataKind, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; DATA_HEADER_LEN];
        buf.extend_from_slice(payload);
        s.seal_at(kind, &mut buf, 0);
        buf
    }

    fn open(s: &mut Session, pkt: &mut [u8]) -> Result<Vec<u8>, OpenError> {
        let h = match decode(pkt).unwrap() {
            Message::Data(h, _) => h,
            _ => panic!("not data"),
        };
        let n = s.open(&h, pkt)?;
        Ok(pkt[DATA_HEADER_LEN..DATA_HEADER_LEN + n].to_vec())
    }

    #[test]
    fn seal_open_roundtrip_and_replay() {
        let (mut a, mut b) = pair(Instant::now());
        let mut p = sealed(&mut a, DataKind::Frame, b"hello frame");
        assert_eq!(p.len(), DATA_HEADER_LEN + 11 + TAG_LEN);
        let copy = p.clone();
        assert_eq!(open(&mut b, &mut p).unwrap(), b"hello frame");
        let mut again = copy;
        assert_eq!(open(&mut b, &mut again), Err(OpenError::Replay));
    }

    #[test]
    fn any_bit_flip_is_refused_and_does_not_move_the_window() {
        let (mut a, mut b) = pair(Instant::now());
        let p = sealed(&mut a, DataKind::Frame, b"0123456789abcdef");
        for i in 0..p.len() {
            if (4..8).contains(&i) {
                continue; // the index selects the session; flipping it is another session's business
            }
            let mut t = p.clone();
            t[i] ^= 0x01;
            if let Ok(Message::Data(h, _)) = decode(&t) {
                assert!(b.open(&h, &mut t).is_err(), "flip at byte {i} accepted");
            }
        }
        let mut ok = p.clone();
        assert!(
            open(&mut b, &mut ok).is_ok(),
            "original still accepted after forgeries"
        );
    }

    #[test]
    fn counters_increase_and_kind_is_authenticated() {
        let (mut a, mut b) = pair(Instant::now());
        let p1 = sealed(&mut a, DataKind::Keepalive, b"");
        let mut p2 = sealed(&mut a, DataKind::Frame, b"x");
        assert_eq!(a.sent(), 2);
        assert_eq!(p1.len(), DATA_HEADER_LEN + TAG_LEN);
        // Relabel a frame as a probe: the header is associated data, so it fails.
        p2[2] = DataKind::Probe as u8;
        assert!(open(&mut b, &mut p2).is_err());
    }
}
