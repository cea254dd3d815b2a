//! For unit tests: the supernode's end of an edge's control channel, with nothing behind it, so a test can
//! say anything a real supernode could (sealed) and check what the edge does with forgeries (in the clear,
//! or sealed with another key).

use std::net::SocketAddr;
use std::time::Instant;

use super::Edge;
use crate::control;
use crate::keys::StaticKeypair;
use crate::session::Session;
use crate::wire::{self, CtlResp, DataKind, Message, DATA_HEADER_LEN};

/// The fake supernode's key (pin it in the edge's configuration).
pub(super) fn key() -> StaticKeypair {
    StaticKeypair::from_private([0x33; 32])
}

pub(super) struct FakeSupernode {
    pub addr: SocketAddr,
    session: Session,
    /// Sealed control messages the edge sent, opened (in order).
    pub received: Vec<Vec<u8>>,
}

impl FakeSupernode {
    /// Runs the edge's timers until it sends a control handshake to `addr`, answers it, and keeps the
    /// session. The edge's first sealed registration is in `received`.
    pub fn connect(e: &mut Edge, addr: SocketAddr, now: Instant) -> FakeSupernode {
        e.handle_timeout(now);
        let init = std::iter::from_fn(|| e.poll_transmit())
            .find(|t| t.dest == addr && wire::peek_type(&t.payload) == Ok(wire::MsgType::CtlInit))
            .expect("the edge opens a control session");
        let Ok(Message::CtlInit(m)) = wire::decode(&init.payload) else {
            panic!("not a control initiation");
        };
        assert!(control::verify_initiation_mac(&key().public, &init.payload));
        let r = control::respond(&key(), m.noise, [9; 32]).expect("valid initiation");
        let mut resp = Vec::new();
        CtlResp {
            sender_index: 77,
            receiver_index: m.sender_index,
            noise: &r.msg,
        }
        .encode(&mut resp);
        let mut sn = FakeSupernode {
            addr,
            session: Session::new(r.keys, 77, m.sender_index, false, now),
            received: Vec::new(),
        };
        e.handle_udp(now, addr, &mut resp);
        sn.drain(e);
        sn
    }

    /// Seals `msg` (an encoded control message) and hands it to the edge; returns the datagram (to replay).
    pub fn send(&mut self, e: &mut Edge, msg: &[u8], now: Instant) -> Vec<u8> {
        let mut buf = vec![0u8; DATA_HEADER_LEN];
        buf.extend_from_slice(msg);
        self.session.seal_at(DataKind::Control, &mut buf, 0);
        let copy = buf.clone();
        e.handle_udp(now, self.addr, &mut buf);
        copy
    }

    /// Opens every sealed control message the edge queued for us (others are dropped from the queue).
    pub fn drain(&mut self, e: &mut Edge) {
        while let Some(t) = e.poll_transmit() {
            if t.dest != self.addr {
                continue;
            }
            self.open_into_received(t.payload);
        }
    }

    /// Opens one datagram the edge sent us, if it is sealed in our session.
    pub fn open_into_received(&mut self, mut d: Vec<u8>) {
        if let Ok(Message::Data(h, _)) = wire::decode(&d) {
            if let Ok(n) = self.session.open(&h, &mut d) {
                self.received
                    .push(d[DATA_HEADER_LEN..DATA_HEADER_LEN + n].to_vec());
            }
        }
    }
}
