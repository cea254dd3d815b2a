//! Sessions with peers: Noise handshakes (either role), the MAC1/MAC2 and cookie checks in front of them
//! (`crate::handshake_mac`), initiations held until the peer is introduced, installing a new session,
//! opening data packets on the right session, rekeying (on time and on message count) and expiring old
//! sessions.
//!
//! The order of the checks on an initiation is the point: MAC1 first (a stranger's initiation is dropped
//! silently, before any Diffie-Hellman, any peer lookup or any answer), then the load check (a cookie
//! reply instead of Diffie-Hellman when loaded), then Noise, and only once Noise proved the initiator's
//! static key does the peer table see it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::RngCore;

use super::peer::{Peer, Pending};
use super::timers::After;
use super::unconfirmed::{Stale, Unconfirmed};
use super::{Core, Edge, Event, Path};
use crate::handshake::{self, Initiator};
use crate::handshake_mac::{Admit, ReceivedCookie, Source};
use crate::keys::{PeerTag, PublicKey};
use crate::session::{OpenError, Session};
use crate::wire::{self, DataHeader, DataKind, HandshakeInit, HandshakeResp, MAC_LEN};

/// A handshake initiation from a peer no supernode has introduced yet, held while we wait for the peer
/// info (or, before the first acknowledgement, to learn whether the community is key-restricted).
pub(super) struct HeldInit {
    pub key: PublicKey,
    path: Path,
    tag: Option<PeerTag>,
    sender_index: u32,
    noise: Vec<u8>,
    at: Instant,
}

/// At most this many initiations are held, each at most [`HOLD_INIT`].
const MAX_HELD_INITS: usize = 16;
const HOLD_INIT: Duration = Duration::from_secs(5);

impl Core {
    /// A value that grows on every call and across restarts (wall-clock microseconds at least).
    pub(super) fn stamp(&mut self, now: Instant) -> u64 {
        let t = self.wall_start_us + now.saturating_duration_since(self.start).as_micros() as u64;
        self.last_stamp = t.max(self.last_stamp + 1);
        self.last_stamp
    }

    pub(super) fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    fn new_index(&mut self) -> u32 {
        loop {
            let i = self.rng.next_u32();
            if i != 0 && !self.by_index.contains_key(&i) && !self.unconfirmed.contains(i) {
                return i;
            }
        }
    }

    // ----- the rekey timer and session expiry -----

    /// The initiator rekeys on time; the responder does too, a little later, in case the initiator is gone
    /// quiet about it (both may then handshake at once, which is harmless: the newer session wins).
    fn rekey_time(&self, s: &Session) -> Duration {
        let t = self.cfg.timers.rekey_after_time;
        if s.initiator {
            t
        } else {
            t + self.cfg.timers.keepalive * 2
        }
    }

    fn handshake_backoff(&self, attempts: u32) -> Duration {
        let base = self.cfg.timers.handshake_retry;
        base * (1u32 << attempts.saturating_sub(1).min(3))
    }

    /// Timer: the pending handshake's retry, else the current session's rekey. Only while no handshake
    /// is pending does the rekey count: once a rekey is under way the rekey instant stays in the past,
    /// and reporting it would make `poll_timeout` return a past instant until the response arrives (a
    /// driver sleeping until then would spin).
    pub(super) fn handshake_deadline(&self, p: &Peer) -> Option<Instant> {
        if let Some(pend) = &p.pending {
            Some(pend.sent_at + self.handshake_backoff(p.handshake_attempts))
        } else {
            p.current.as_ref().map(|s| s.created + self.rekey_time(s))
        }
    }

    /// What the handshake timer does: retry the pending handshake (or give up after
    /// `handshake_attempts`: traffic or new peer info asks again), or rekey.
    pub(super) fn retry_or_rekey(&mut self, p: &mut Peer, now: Instant) -> After {
        match &p.pending {
            Some(pend) if p.handshake_attempts >= self.cfg.timers.handshake_attempts => {
                self.by_index.remove(&pend.local_index);
                p.pending = None;
            }
            _ => self.initiate(p, now),
        }
        After::Continue
    }

    /// Timer: the oldest of the peer's sessions reaches `reject_after_time`.
    pub(super) fn session_expiry_deadline(&self, p: &Peer) -> Option<Instant> {
        [&p.current, &p.previous, &p.next]
            .into_iter()
            .flatten()
            .map(|s| s.created + self.cfg.timers.reject_after_time)
            .min()
    }

    /// What the expiry timer does: drops the sessions that reached `reject_after_time`; the peer is down
    /// when that was its current one.
    pub(super) fn expire_sessions(&mut self, p: &mut Peer, now: Instant) -> After {
        let reject = self.cfg.timers.reject_after_time;
        for slot in [&mut p.current, &mut p.previous, &mut p.next] {
            if let Some(s) = slot.take_if(|s| now >= s.created + reject) {
                self.by_index.remove(&s.local_index);
            }
        }
        if p.up && p.current.is_none() {
            p.up = false;
            self.events.push_back(Event::PeerDown { peer: p.key });
        }
        After::Continue
    }

    /// The initiator rekeys once a session has sent `rekey_after_messages`.
    pub(super) fn maybe_rekey_on_send(&mut self, p: &mut Peer, now: Instant) {
        let limit = self.cfg.limits.rekey_after_messages;
        if p.pending.is_none() && p.current.as_ref().is_some_and(|s| s.sent() >= limit) {
            self.initiate(p, now);
        }
    }

    // ----- handshakes -----

    /// Starts (or restarts) a handshake with `p` on its current path.
    pub(super) fn initiate(&mut self, p: &mut Peer, now: Instant) {
        let path = p.path.or_relay(|| self.relay_supernode());
        if path == Path::None {
            return;
        }
        let seed = self.seed();
        let ts = self.stamp(now);
        let local_index = self.new_index();
        let Ok((initiator, msg)) = Initiator::start(
            &self.cfg.identity,
            &p.key,
            &self.cfg.community.edge_psk,
            ts,
            seed,
        ) else {
            return;
        };
        if let Some(old) = p.pending.take() {
            self.by_index.remove(&old.local_index);
        }
        let (keys, peer, cookie) = (self.mac_keys.clone(), p.key, p.cookie);
        let mut mac1 = [0u8; MAC_LEN];
        self.send_on_path(path, p.key.tag(), |buf| {
            mac1 = wire::encode_handshake_init(
                local_index,
                &msg,
                buf,
                |m| keys.mac1(&peer, m),
                |m| cookie.map_or([0; MAC_LEN], |c| c.mac2(m, now)),
            );
        });
        p.pending = Some(Pending {
            initiator: Some(initiator),
            local_index,
            sent_at: now,
            mac1: Some(mac1),
        });
        p.handshake_attempts += 1;
        p.last_tx = now;
        self.by_index.insert(local_index, p.key);
        self.rearm(p);
    }

    /// Makes `session` the current one; the old current becomes previous (for packets in flight). Sends
    /// the frames queued while the session was set up.
    fn install_session(&mut self, p: &mut Peer, session: Session, now: Instant) {
        if let Some(old) = p.previous.take() {
            self.by_index.remove(&old.local_index);
        }
        p.previous = p.current.replace(session);
        p.handshake_attempts = 0;
        self.stats.handshakes_completed += 1;
        let was_up = p.up;
        p.up = true;
        if p.path == Path::None {
            if let Some(sn) = self.relay_supernode() {
                p.path = Path::Relayed(sn);
            }
        }
        if !was_up {
            self.events.push_back(Event::PeerUp {
                peer: p.key,
                description: p.description.clone(),
                path: p.path,
            });
        }
        for f in std::mem::take(&mut p.queued) {
            self.send_data(p, DataKind::Frame, &f, None, now);
        }
        // A new session arms its rekey, keepalive and probe timers; a reset attempt count shortens the
        // retry of a handshake still pending.
        self.rearm(p);
    }

    /// Opens the data packet `data` (header `h`) in place on the peer's session it names, and notes that
    /// the peer spoke. Returns the length of the plaintext after the header, or None when the packet was
    /// dropped (counted).
    pub(super) fn open_data(
        &mut self,
        p: &mut Peer,
        h: &DataHeader,
        data: &mut [u8],
        now: Instant,
    ) -> Option<usize> {
        // Find the session by index; remember whether it is the unconfirmed `next`.
        let idx = h.receiver_index;
        let (session, is_next) = match (&mut p.current, &mut p.previous, &mut p.next) {
            (Some(s), _, _) if s.local_index == idx => (s, false),
            (_, Some(s), _) if s.local_index == idx => (s, false),
            (_, _, Some(s)) if s.local_index == idx => (s, true),
            _ => {
                self.stats.dropped_unknown_session += 1;
                return None;
            }
        };
        if now.saturating_duration_since(session.created) >= self.cfg.timers.reject_after_time {
            self.stats.dropped_unknown_session += 1;
            return None;
        }
        let plain_len = match session.open(h, data) {
            Ok(n) => n,
            Err(OpenError::Replay) => {
                self.stats.dropped_replay += 1;
                return None;
            }
            Err(OpenError::Auth) => {
                self.stats.dropped_auth += 1;
                return None;
            }
        };
        self.accept_rx(p, is_next, now);
        Some(plain_len)
    }

    /// After an authentic packet from `p` (on its `next` session when `is_next`): the peer spoke, and
    /// `next` may become current.
    fn accept_rx(&mut self, p: &mut Peer, is_next: bool, now: Instant) {
        p.last_rx = Some(now);
        p.counters.rx_packets += 1;
        // The peer uses the session we answered: it becomes current. Except when both sides initiated at
        // once (the supernode's punch makes them, and so do simultaneous rekey timers): then each side
        // holds two fresh sessions, and if each promoted the other's, each would send on the session the
        // other keeps only as `previous`, which the next install drops while the peer still sends on it
        // (frames lost at every later rekey, and two handshakes per rekey). A deterministic tie-break
        // makes both sides settle on one session: the side with the lower key keeps its own, newer
        // session and merely accepts packets on `next`; the other side promotes as usual.
        let keep_own = p.key > self.cfg.identity.public
            && p.current.as_ref().is_some_and(|c| {
                c.initiator && p.next.as_ref().is_some_and(|n| c.created >= n.created)
            });
        if is_next && !keep_own {
            if let Some(s) = p.next.take() {
                self.install_session(p, s, now);
            }
        }
    }

    fn hold_init(
        &mut self,
        key: PublicKey,
        path: Path,
        tag: Option<PeerTag>,
        sender_index: u32,
        noise: &[u8],
        now: Instant,
    ) {
        self.held_inits
            .retain(|h| h.key != key && now.saturating_duration_since(h.at) < HOLD_INIT);
        if self.held_inits.len() >= MAX_HELD_INITS {
            self.held_inits.pop_front();
            self.stats.handshakes_rejected += 1;
        }
        self.held_inits.push_back(HeldInit {
            key,
            path,
            tag,
            sender_index,
            noise: noise.to_vec(),
            at: now,
        });
        // The peer info about it may have been lost (nothing would resend it): ask the supernodes we are
        // registered with for every peer now, at most once a second.
        if self
            .last_peer_request
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_peer_request = Some(now);
            for link in self.supernodes.iter_mut().filter(|l| l.registered) {
                link.want_peers = true;
                link.next_register = now;
            }
        }
    }
}

impl Edge {
    /// An initiation arrived (`raw` is the datagram, without any relay header): MAC1, then the load
    /// check, then the Noise work in [`Edge::answer_init`].
    pub(super) fn on_handshake_init(
        &mut self,
        path: Path,
        from_tag: Option<PeerTag>,
        msg: HandshakeInit,
        raw: &[u8],
        now: Instant,
    ) {
        let core = &mut self.core;
        let me = core.cfg.identity.public;
        if !core
            .mac_keys
            .verify_mac1(&me, HandshakeInit::mac1_input(raw), &msg.mac1)
        {
            // Not from a holder of the secret (or not meant for us): no work, no state, no answer.
            core.stats.dropped_bad_mac += 1;
            return;
        }
        let addr = match path {
            Path::Direct(a) | Path::Relayed(a) => a,
            Path::None => return,
        };
        let source = Source {
            addr,
            tag: from_tag,
        };
        let mac2_input = HandshakeInit::mac2_input(raw);
        match core
            .cookies
            .admit(&source, mac2_input, &msg.mac2, now, &mut core.rng)
        {
            Admit::Process => {}
            Admit::RateLimited => {
                core.stats.dropped_handshake_rate += 1;
                return;
            }
            Admit::Cookie(cookie) => {
                let mut nonce = [0u8; wire::COOKIE_NONCE_LEN];
                core.rng.fill_bytes(&mut nonce);
                let reply = wire::CookieReply {
                    receiver_index: msg.sender_index,
                    nonce,
                    sealed: core.mac_keys.seal_cookie(&cookie, &msg.mac1, &nonce),
                };
                // Back the way it came: relayed to the tag the supernode vouched for, or direct.
                let tag = from_tag.unwrap_or(PeerTag([0; 8]));
                core.send_on_path(path, tag, |buf| wire::encode_cookie_reply(&reply, buf));
                core.stats.cookie_replies_sent += 1;
                return;
            }
        }
        self.answer_init(path, from_tag, msg.sender_index, msg.noise, now);
    }

    /// The Noise work on an initiation that passed MAC1 and the load check: respond, and only then
    /// (the initiator's static key proven) look up or add the peer.
    fn answer_init(
        &mut self,
        path: Path,
        from_tag: Option<PeerTag>,
        sender_index: u32,
        noise: &[u8],
        now: Instant,
    ) {
        let core = &mut self.core;
        let seed = core.seed();
        let Ok(r) = handshake::respond(
            &core.cfg.identity,
            &core.cfg.community.edge_psk,
            noise,
            seed,
        ) else {
            core.stats.handshakes_rejected += 1;
            return;
        };
        if r.remote == core.cfg.identity.public {
            core.stats.handshakes_rejected += 1;
            return;
        }
        if from_tag.is_some_and(|t| t != r.remote.tag()) {
            // The relay header claims another sender than the handshake proves.
            core.stats.handshakes_rejected += 1;
            return;
        }
        if !core.peer_allowed(&r.remote) {
            // Not on our own list: no answer, no state, whatever the supernode says of it.
            core.refuse_not_allowed(r.remote);
            return;
        }
        if core.introduced_only() && !self.peers.get(&r.remote).is_some_and(|p| p.introduced) {
            // A key-restricted community (or one we cannot tell yet): only peers a supernode introduced
            // may handshake, so a revoked edge that knows the secret and our address cannot. The peer
            // info usually arrives first; when the initiation overtakes it, hold the initiation a
            // moment rather than make the peer wait for its retry.
            core.hold_init(r.remote, path, from_tag, sender_index, noise, now);
            return;
        }
        let local_index = core.new_index();
        let session = Session::new(r.keys, local_index, sender_index, false, now);
        if let Some(p) = self.peers.get_mut(&r.remote) {
            if r.timestamp <= p.last_init_timestamp {
                core.stats.dropped_replay += 1;
                return;
            }
            p.last_init_timestamp = r.timestamp;
            if let Some(old) = p.next.replace(session) {
                core.by_index.remove(&old.local_index);
            }
            if let Path::Direct(a) = path {
                p.add_candidate(a);
            }
            core.by_index.insert(local_index, r.remote);
            core.rearm(p);
        } else {
            // Not a peer: Noise proved the key, not the PSK. Keep the session aside until the initiator's
            // first packet on it proves the PSK too (`confirm_session`); no peer, no timer, no event yet.
            if self.peers.len() >= core.cfg.limits.max_peers {
                core.stats.dropped_no_capacity += 1;
                return;
            }
            let entry = Unconfirmed {
                key: r.remote,
                session,
                timestamp: r.timestamp,
                path,
            };
            match core.unconfirmed.insert(entry, now) {
                Ok(dropped) => core.stats.unconfirmed_dropped += dropped,
                Err(Stale) => {
                    core.stats.dropped_replay += 1;
                    return;
                }
            }
        }
        let keys = core.mac_keys.clone();
        core.send_on_path(path, r.remote.tag(), |buf| {
            wire::encode_handshake_resp(local_index, sender_index, &r.msg, buf, |m| {
                keys.mac1(&r.remote, m)
            })
        });
    }

    /// The first packet on an unconfirmed session (`unconfirmed.rs`): opened there, and only if it is
    /// authentic (so its sender holds the PSK) does its sender become a peer, with the session as its
    /// `next` (promoted as usual by this very packet). Returns the sender and the plaintext length, or
    /// None when the packet was dropped (counted).
    pub(super) fn confirm_session(
        &mut self,
        now: Instant,
        h: &DataHeader,
        data: &mut [u8],
    ) -> Option<(PublicKey, usize)> {
        let core = &mut self.core;
        let index = h.receiver_index;
        let Some(u) = core.unconfirmed.get_mut(index, now) else {
            core.stats.dropped_unknown_session += 1;
            return None;
        };
        let plain_len = match u.session.open(h, data) {
            Ok(n) => n,
            Err(OpenError::Replay) => {
                core.stats.dropped_replay += 1;
                return None;
            }
            Err(OpenError::Auth) => {
                core.stats.dropped_auth += 1;
                return None;
            }
        };
        let u = core.unconfirmed.remove(index)?;
        let key = u.key;
        // The policy may have changed since we answered.
        if !core.peer_allowed(&key) {
            core.refuse_not_allowed(key);
            return None;
        }
        if core.introduced_only() && !self.peers.get(&key).is_some_and(|p| p.introduced) {
            core.stats.handshakes_rejected += 1;
            return None;
        }
        let p = core.ensure_peer(&mut self.peers, key, now)?;
        if u.timestamp <= p.last_init_timestamp {
            // The peer was made meanwhile and accepted a newer initiation.
            core.stats.dropped_replay += 1;
            return None;
        }
        p.last_init_timestamp = u.timestamp;
        if let Path::Direct(a) = u.path {
            p.add_candidate(a);
        }
        if let Some(old) = p.next.replace(u.session) {
            core.by_index.remove(&old.local_index);
        }
        core.by_index.insert(index, key);
        core.accept_rx(p, true, now);
        core.rearm(p);
        Some((key, plain_len))
    }

    /// Answers the held initiations that may now be answered (from `key`, or from anyone when the
    /// community turned out not to be restricted); forgets stale ones.
    pub(super) fn release_held_inits(&mut self, key: Option<PublicKey>, now: Instant) {
        let open = !self.core.introduced_only();
        let mut ready = Vec::new();
        let mut keep = VecDeque::new();
        for h in self.core.held_inits.drain(..) {
            if now.saturating_duration_since(h.at) >= HOLD_INIT {
                self.core.stats.handshakes_rejected += 1;
            } else if open || Some(h.key) == key {
                ready.push(h);
            } else {
                keep.push_back(h);
            }
        }
        self.core.held_inits = keep;
        for h in ready {
            // Its MAC1 and load checks were passed when it arrived.
            self.answer_init(h.path, h.tag, h.sender_index, &h.noise, now);
        }
    }

    /// A response arrived (`raw` is the datagram, without any relay header): MAC1 first, then it must
    /// name the handshake we have pending.
    pub(super) fn on_handshake_resp(
        &mut self,
        path: Path,
        msg: HandshakeResp,
        raw: &[u8],
        now: Instant,
    ) {
        let core = &mut self.core;
        let me = core.cfg.identity.public;
        if !core
            .mac_keys
            .verify_mac1(&me, HandshakeResp::mac1_input(raw), &msg.mac1)
        {
            core.stats.dropped_bad_mac += 1;
            return;
        }
        let Some(p) = core
            .by_index
            .get(&msg.receiver_index)
            .and_then(|key| self.peers.get_mut(key))
        else {
            core.stats.dropped_unknown_session += 1;
            return;
        };
        let Some(pending) = p
            .pending
            .as_mut()
            .filter(|x| x.local_index == msg.receiver_index)
        else {
            core.stats.dropped_unknown_session += 1;
            return;
        };
        let Some(initiator) = pending.initiator.take() else {
            // This attempt already failed; it waits for its retry timer.
            core.stats.dropped_unknown_session += 1;
            return;
        };
        let local_index = pending.local_index;
        let Ok(keys) = initiator.finish(msg.noise) else {
            // Refused (wrong PSK or forged). The attempt stays pending without its Noise state until
            // the retry timer replaces it. Clearing it instead let the next frame from the TAP start
            // a new handshake at once: an edge with a wrong secret initiated one handshake per frame
            // per peer, with no back-off and no attempt limit, costing each peer a Noise response.
            core.stats.handshakes_rejected += 1;
            return;
        };
        p.pending = None;
        let session = Session::new(keys, local_index, msg.sender_index, true, now);
        core.install_session(p, session, now);
        // Confirm the session to the responder at once: it does not send on it before it hears from us.
        let reply_path = match path {
            Path::Direct(a) => Path::Direct(a),
            _ => p.path.or_relay(|| core.relay_supernode()),
        };
        core.send_data(p, DataKind::Keepalive, &[], Some(reply_path), now);
        if let Path::Direct(a) = path {
            core.start_probe_to(p, a, now);
        }
    }

    /// A cookie reply: the peer is loaded and wants MAC2 on our next initiation. Accepted only for the
    /// initiation we have in flight (it is sealed with that initiation's MAC1), and only once.
    pub(super) fn on_cookie_reply(&mut self, msg: wire::CookieReply, now: Instant) {
        let core = &mut self.core;
        let Some(p) = core
            .by_index
            .get(&msg.receiver_index)
            .and_then(|key| self.peers.get_mut(key))
        else {
            core.stats.dropped_bad_cookie += 1;
            return;
        };
        let Some(pending) = p
            .pending
            .as_mut()
            .filter(|x| x.local_index == msg.receiver_index)
        else {
            core.stats.dropped_bad_cookie += 1;
            return;
        };
        let Some(cookie) = pending
            .mac1
            .and_then(|mac1| core.mac_keys.open_cookie(&msg.sealed, &mac1, &msg.nonce))
        else {
            core.stats.dropped_bad_cookie += 1;
            return;
        };
        pending.mac1 = None;
        p.cookie = Some(ReceivedCookie::new(cookie, now));
        core.stats.cookies_received += 1;
        // The retry timer sends the next initiation, now with MAC2, as after any unanswered one.
    }
}
