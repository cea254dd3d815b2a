//! The edge's supernodes: the control channel with each (its key, pinned or learned on first use, and the
//! Noise IK handshake that opens a session), registration in it (refresh, retry with back-off, refusals),
//! liveness pings, what they tell us (acknowledgements, peer info, revocations, restarts), and which one
//! is in use for relaying and punch requests.
//!
//! Nothing a supernode says changes our state unless it arrived sealed in our session with it: a forged
//! acknowledgement, refusal, peer info or revocation from its address is counted
//! (`dropped_unauthenticated`) and ignored. The only clear-text answers taken are the handshake response
//! (authenticated by Noise), a key reply while we have no key for it (trust on first use), and "unknown
//! sender", which at most makes us do a new handshake sooner.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::RngCore;

use super::{AddressMode, Core, Edge, Event, Path, Timers};
use crate::control::{self, CtlInitiator};
use crate::handshake_mac::{MacKeys, ReceivedCookie};
use crate::keys::PublicKey;
use crate::session::Session;
use crate::wire::{
    self, CtlResp, DataKind, Message, NakReason, Register, CTL_MAC_LEN, DATA_HEADER_LEN,
};

/// What the edge knows of one configured supernode.
pub(super) struct SupernodeLink {
    pub addr: SocketAddr,
    pub registered: bool,
    pub refused: bool,
    pub last_ack: Option<Instant>,
    /// Counter and send time of the last registration, to match its acknowledgement for the RTT.
    last_sent: Option<(u64, Instant)>,
    pub rtt: Option<Duration>,
    pub next_register: Instant,
    retry: Duration,
    boot_id: Option<u64>,
    /// Ask for the full peer list on the next registration.
    pub want_peers: bool,
    last_unknown_sender: Option<Instant>,
    /// Last acknowledgement or pong.
    pub last_heard: Option<Instant>,
    next_ping: Instant,
    /// Nonce and send time of the last ping.
    ping: Option<(u64, Instant)>,
    /// How full it said it is (per thousand), from its last pong.
    load_permille: u16,
    /// Why it refused our last registration.
    pub refusal: Option<NakReason>,
    /// It asked for the community name (NAK `NameRequired`): include it in every registration to it.
    send_name: bool,
    /// What its last acknowledgement said: answer handshakes only from introduced peers. None before
    /// the first acknowledgement.
    introduced_only: Option<bool>,
    /// Its static key: pinned, or learned on first use. None: ask it (key query).
    pub key: Option<PublicKey>,
    /// Another key it presented while handshakes with the pinned one went unanswered.
    pub key_mismatch: Option<PublicKey>,
    /// When we last asked for its key.
    key_query: Option<Instant>,
    /// Our handshake in flight.
    handshake: Option<PendingCtl>,
    /// The last cookie it sent us (under load), for MAC2 on our next initiations.
    cookie: Option<ReceivedCookie>,
    /// Handshakes sent since the last one it answered.
    unanswered: u32,
    /// The control session: everything but the handshake goes sealed in it.
    pub session: Option<Session>,
    /// Do a new handshake at the next registration (it said it lost our session).
    rehandshake: bool,
    /// Since when we have been trying to register without any answer.
    silent_since: Option<Instant>,
    /// That silence was reported (once per state change).
    silent_reported: bool,
}

/// A supernode that has answered nothing for this long while we try to register is reported (once until
/// it answers): an address that is wrong, UDP that is blocked, a supernode that is down.
pub const SUPERNODE_SILENT: Duration = Duration::from_secs(5);

/// A control handshake in flight: our index, the Noise state, and the initiation's MAC1 (a cookie reply is
/// bound to it).
pub(super) struct PendingCtl {
    index: u32,
    init: CtlInitiator,
    mac1: [u8; CTL_MAC_LEN],
}

impl SupernodeLink {
    /// It answered (anything authentic, or a key reply we asked for): not silent.
    fn heard(&mut self) {
        self.silent_since = None;
        self.silent_reported = false;
    }

    /// A supernode we have not heard from yet: register at once.
    pub fn new(
        addr: SocketAddr,
        key: Option<PublicKey>,
        now: Instant,
        timers: &Timers,
    ) -> SupernodeLink {
        SupernodeLink {
            addr,
            registered: false,
            refused: false,
            last_ack: None,
            last_sent: None,
            rtt: None,
            next_register: now,
            retry: timers.register_retry,
            boot_id: None,
            want_peers: true,
            last_unknown_sender: None,
            last_heard: None,
            next_ping: now,
            ping: None,
            load_permille: 0,
            refusal: None,
            send_name: false,
            introduced_only: None,
            key,
            key_mismatch: None,
            key_query: None,
            handshake: None,
            cookie: None,
            unanswered: 0,
            session: None,
            rehandshake: false,
            silent_since: None,
            silent_reported: false,
        }
    }
}

impl Core {
    /// The supernode to relay through: the active one, else the first configured (to reach anyone at all
    /// before a registration is acknowledged).
    pub(super) fn relay_supernode(&self) -> Option<SocketAddr> {
        self.active
            .and_then(|i| self.supernodes.get(i))
            .or(self.supernodes.first())
            .map(|s| s.addr)
    }

    /// Whether only introduced peers may handshake with us: some supernode said the community is
    /// key-restricted, or none has acknowledged us yet (we cannot tell, so we hold initiations).
    pub(super) fn introduced_only(&self) -> bool {
        let mut known = false;
        for s in &self.supernodes {
            match s.introduced_only {
                Some(true) => return true,
                Some(false) => known = true,
                None => {}
            }
        }
        !known
    }

    fn send_register(&mut self, sn: usize, now: Instant) {
        let counter = self.stamp(now);
        let static_ip = match self.cfg.address {
            AddressMode::Static(n) => Some(n),
            _ => None,
        };
        let reg = Register {
            community: self.cfg.community.id,
            public_key: self.cfg.identity.public,
            counter,
            mac: self.cfg.mac,
            wants_ip: self.cfg.address == AddressMode::Auto,
            wants_peers: self.supernodes[sn].want_peers,
            static_ip,
            local_addrs: self.cfg.local_addrs.clone(),
            description: self.cfg.description.clone(),
            name: self.supernodes[sn]
                .send_name
                .then(|| self.cfg.community.name.clone()),
            admission_tag: [0; wire::ADMISSION_TAG_LEN],
        };
        let mut buf = Vec::with_capacity(160);
        reg.encode_unsigned(&mut buf);
        let tag = self.cfg.community.admission.tag(&buf);
        buf.extend_from_slice(&tag);
        self.supernodes[sn].last_sent = Some((counter, now));
        self.send_ctl(sn, &buf);
    }

    /// Whether the control session with supernode `sn` may carry a registration now (else: handshake).
    fn session_usable(&self, sn: usize, now: Instant) -> bool {
        let l = &self.supernodes[sn];
        !l.rehandshake
            && l.session.as_ref().is_some_and(|s| {
                now.saturating_duration_since(s.created) < self.cfg.timers.rekey_after_time
            })
    }

    /// Seals `msg` (an encoded control message) in the session with supernode `sn` and queues it. Without
    /// a session that may still send, nothing is sent: the registration timer opens one.
    pub(super) fn send_ctl(&mut self, sn: usize, msg: &[u8]) {
        let link = &mut self.supernodes[sn];
        let addr = link.addr;
        let Some(session) = link.session.as_mut() else {
            return;
        };
        let (len, _) = self.transmits.push_with(addr, |buf| {
            let start = buf.len();
            buf.extend_from_slice(&[0u8; DATA_HEADER_LEN]);
            buf.extend_from_slice(msg);
            session.seal_at(DataKind::Control, buf, start);
        });
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
    }

    /// Starts a control handshake with supernode `sn` (whose key we have).
    fn send_ctl_init(&mut self, sn: usize, now: Instant) {
        let Some(key) = self.supernodes[sn].key else {
            return;
        };
        let stamp = self.stamp(now);
        let seed = self.seed();
        let index = self.rng.next_u32();
        let cookie = self.supernodes[sn].cookie.as_ref().map(|c| (c, now));
        let Ok((init, buf, mac1)) =
            control::initiation(&self.cfg.identity, &key, index, stamp, seed, cookie)
        else {
            return;
        };
        let link = &mut self.supernodes[sn];
        if link.handshake.is_some() {
            link.unanswered += 1;
        }
        link.handshake = Some(PendingCtl { index, init, mac1 });
        let (addr, ask_key) = (link.addr, link.unanswered >= 3);
        self.push_transmit(addr, buf);
        if ask_key {
            // Several handshakes went unanswered: ask which key it has, to tell "down" from "re-keyed".
            self.send_key_query(sn, now);
        }
    }

    /// Asks supernode `sn` for its key.
    fn send_key_query(&mut self, sn: usize, now: Instant) {
        let link = &mut self.supernodes[sn];
        link.key_query = Some(now);
        let addr = link.addr;
        let mut buf = Vec::with_capacity(wire::KEY_QUERY_LEN);
        wire::encode_key_query(&mut buf);
        self.push_transmit(addr, buf);
    }

    // ----- timers (the table is in `timers.rs`) -----

    /// Timer: a registered supernode silent (no acknowledgement, no pong) for `supernode_dead` is lost.
    pub(super) fn supernode_dead_deadline(&self, l: &SupernodeLink) -> Option<Instant> {
        match (l.registered, l.last_heard) {
            (true, Some(heard)) => Some(heard + self.cfg.timers.supernode_dead),
            _ => None,
        }
    }

    /// Timer: the next liveness ping to a registered supernode.
    pub(super) fn supernode_ping_deadline(&self, l: &SupernodeLink) -> Option<Instant> {
        l.registered.then_some(l.next_ping)
    }

    /// Timer: the next registration (refresh, or retry with back-off until acknowledged).
    pub(super) fn register_deadline(&self, l: &SupernodeLink) -> Option<Instant> {
        Some(l.next_register)
    }
}

impl Edge {
    /// What the dead-supernode timer does: the registration is lost; register again at once and switch
    /// to another supernode.
    pub(super) fn on_supernode_dead(&mut self, i: usize, now: Instant) {
        let retry = self.core.cfg.timers.register_retry;
        let link = &mut self.core.supernodes[i];
        link.registered = false;
        // It may have lost our session (a restart): open a new one.
        link.rehandshake = true;
        link.want_peers = true;
        link.next_register = now;
        link.retry = retry;
        let addr = link.addr;
        self.core
            .events
            .push_back(Event::RegistrationLost { supernode: addr });
        self.choose_active();
    }

    /// What the ping timer does: a ping with a fresh nonce (answered only for a current registration).
    pub(super) fn ping_supernode(&mut self, i: usize, now: Instant) {
        let core = &mut self.core;
        core.supernodes[i].next_ping = now + core.cfg.timers.supernode_ping;
        let nonce = core.rng.next_u64();
        let link = &mut core.supernodes[i];
        link.ping = Some((nonce, now));
        let mut buf = Vec::with_capacity(12);
        wire::encode_supernode_ping(nonce, &mut buf);
        core.send_ctl(i, &buf);
    }

    /// What the registration timer does: register; until acknowledged, retry with back-off (the
    /// acknowledgement pushes the next one out to a full interval).
    pub(super) fn register(&mut self, i: usize, now: Instant) {
        let interval = self.core.cfg.timers.register_interval;
        let link = &mut self.core.supernodes[i];
        if !link.registered {
            match link.silent_since {
                None => link.silent_since = Some(now),
                Some(t)
                    if !link.silent_reported
                        && now.saturating_duration_since(t) >= SUPERNODE_SILENT =>
                {
                    link.silent_reported = true;
                    let event = Event::SupernodeSilent {
                        supernode: link.addr,
                        secs: now.saturating_duration_since(t).as_secs(),
                    };
                    self.core.events.push_back(event);
                }
                Some(_) => {}
            }
        }
        let link = &mut self.core.supernodes[i];
        link.next_register = now + link.retry;
        link.retry = (link.retry * 2).min(interval);
        let reject = self.core.cfg.timers.reject_after_time;
        if link
            .session
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.created) >= reject)
        {
            // Too old to send on (new handshakes went unanswered): no more control messages until one is.
            link.session = None;
        }
        if link.key.is_none() {
            self.core.send_key_query(i, now);
        } else if self.core.session_usable(i, now) {
            self.core.send_register(i, now);
        } else {
            self.core.send_ctl_init(i, now);
        }
    }

    /// Picks the supernode in use: keeps the current one while it is registered, unless another is much
    /// better (less than half its cost, and 5 ms less: a flapping choice would move relayed peers back
    /// and forth); else the registered one of lowest cost. The cost is the RTT plus 1 ms for every 10 % of
    /// its capacity in use, so that a nearly full supernode is used only when it is much closer. Relayed
    /// peers follow at once.
    fn choose_active(&mut self) {
        let core = &mut self.core;
        let cost = |s: &SupernodeLink| {
            s.rtt.unwrap_or(Duration::from_secs(10))
                + Duration::from_micros(10 * u64::from(s.load_permille))
        };
        let links = &core.supernodes;
        let best = (0..links.len())
            .filter(|&i| links[i].registered)
            .min_by_key(|&i| (cost(&links[i]), i));
        let keep = core.active.filter(|&i| {
            let cur = &links[i];
            cur.registered
                && best.is_none_or(|b| {
                    let b = cost(&links[b]);
                    !(b * 2 < cost(cur) && b + Duration::from_millis(5) < cost(cur))
                })
        });
        let Some(next) = keep.or(best) else {
            return;
        };
        if Some(next) == core.active {
            return;
        }
        let from = core.active.map(|i| links[i].addr);
        let to = links[next].addr;
        core.active = Some(next);
        if from.is_some() {
            core.events.push_back(Event::SupernodeChanged { from, to });
        }
        for (k, p) in &mut self.peers {
            if matches!(p.path, Path::Relayed(_)) {
                p.path = Path::Relayed(to);
                core.events.push_back(Event::PathChanged {
                    peer: *k,
                    path: Path::Relayed(to),
                });
            }
        }
    }

    /// A clear-text datagram from the supernode at index `sn`: only the handshake response, a key reply
    /// and "unknown sender" are taken in the clear.
    pub(super) fn on_channel(&mut self, now: Instant, sn: usize, msg: Message) {
        match msg {
            Message::CtlResp(r) => self.on_ctl_resp(now, sn, r),
            Message::CookieReply(r) => self.on_ctl_cookie(now, sn, r),
            Message::KeyReply(r) => self.on_key_reply(now, sn, r.key),
            Message::UnknownSender => {
                // Unauthenticated, so it only makes us open a new session sooner (at most once a
                // second); our registration stands until the session says otherwise or goes silent.
                let link = &mut self.core.supernodes[sn];
                if link.session.is_some()
                    && link
                        .last_unknown_sender
                        .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
                {
                    link.last_unknown_sender = Some(now);
                    link.rehandshake = true;
                    link.next_register = now;
                }
            }
            _ => self.core.stats.dropped_unauthenticated += 1,
        }
    }

    /// The supernode answered our handshake: if it is the one in flight and proves the pinned key, the
    /// session is open; register in it at once.
    fn on_ctl_resp(&mut self, now: Instant, sn: usize, r: CtlResp) {
        let link = &mut self.core.supernodes[sn];
        if link.handshake.as_ref().map(|h| h.index) != Some(r.receiver_index) {
            self.core.stats.dropped_unauthenticated += 1;
            return;
        }
        let PendingCtl { index, init, .. } = link.handshake.take().expect("checked above");
        let Ok(keys) = init.finish(r.noise) else {
            self.core.stats.dropped_unauthenticated += 1;
            return;
        };
        link.session = Some(Session::new(keys, index, r.sender_index, true, now));
        link.unanswered = 0;
        link.rehandshake = false;
        link.key_mismatch = None;
        self.core.send_register(sn, now);
    }

    /// The supernode is under load and answered our handshake with a cookie: keep it for MAC2 on the next
    /// initiation (sent by the retry timer, as WireGuard does, not at once). Only a cookie sealed for the
    /// initiation in flight, under its key, is taken.
    fn on_ctl_cookie(&mut self, now: Instant, sn: usize, r: wire::CookieReply) {
        let link = &mut self.core.supernodes[sn];
        let (Some(h), Some(key)) = (link.handshake.as_ref(), link.key) else {
            self.core.stats.dropped_unauthenticated += 1;
            return;
        };
        if h.index != r.receiver_index {
            self.core.stats.dropped_unauthenticated += 1;
            return;
        }
        match MacKeys::for_supernode(&key).open_cookie(&r.sealed, &h.mac1, &r.nonce) {
            Some(c) => {
                link.heard();
                link.cookie = Some(ReceivedCookie::new(c, now));
                self.core.stats.cookies_received += 1;
            }
            None => self.core.stats.dropped_unauthenticated += 1,
        }
    }

    /// A key reply: taken as the supernode's key when we have none and asked (trust on first use); with a
    /// pinned key, a different one is reported, never used.
    fn on_key_reply(&mut self, now: Instant, sn: usize, key: PublicKey) {
        let link = &mut self.core.supernodes[sn];
        let asked = link
            .key_query
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(10));
        if !asked {
            self.core.stats.dropped_unauthenticated += 1;
            return;
        }
        link.key_query = None;
        link.heard();
        let addr = link.addr;
        match link.key {
            None => {
                link.key = Some(key);
                link.next_register = now;
                link.retry = self.core.cfg.timers.register_retry;
                self.core.events.push_back(Event::SupernodeKeyLearned {
                    supernode: addr,
                    key,
                });
            }
            Some(pinned) if pinned != key && link.key_mismatch != Some(key) => {
                link.key_mismatch = Some(key);
                self.core.events.push_back(Event::SupernodeKeyMismatch {
                    supernode: addr,
                    pinned,
                    presented: key,
                });
            }
            Some(_) => {}
        }
    }

    /// A sealed control message from supernode `sn`: opened in our session, then believed.
    pub(super) fn on_ctl_data(&mut self, now: Instant, sn: usize, data: &mut [u8]) {
        let Ok(Message::Data(h, _)) = wire::decode(data) else {
            self.core.stats.dropped_malformed += 1;
            return;
        };
        let reject = self.core.cfg.timers.reject_after_time;
        let link = &mut self.core.supernodes[sn];
        let Some(session) = link
            .session
            .as_mut()
            .filter(|s| s.local_index == h.receiver_index)
            .filter(|s| now.saturating_duration_since(s.created) < reject)
        else {
            self.core.stats.dropped_unauthenticated += 1;
            return;
        };
        let Ok(n) = session.open(&h, data) else {
            self.core.stats.dropped_unauthenticated += 1;
            return;
        };
        match wire::decode(&data[DATA_HEADER_LEN..DATA_HEADER_LEN + n]) {
            Ok(m) => self.on_control(now, sn, m),
            Err(_) => self.core.stats.dropped_malformed += 1,
        }
    }

    /// A control message from the supernode at index `sn`, authenticated by our session with it.
    fn on_control(&mut self, now: Instant, sn: usize, msg: Message) {
        let own = self.core.cfg.identity.public;
        let community = self.core.cfg.community.id;
        match msg {
            Message::RegisterAck(ack) => {
                if ack.community != community || ack.public_key != own {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                }
                let core = &mut self.core;
                let timers = &core.cfg.timers;
                let link = &mut core.supernodes[sn];
                let addr = link.addr;
                let was = link.registered;
                let restarted = link.boot_id.is_some_and(|b| b != ack.boot_id);
                link.registered = true;
                link.heard();
                link.refused = false;
                link.refusal = None;
                link.introduced_only = Some(ack.introduced_only);
                link.last_ack = Some(now);
                link.last_heard = Some(now);
                if !was {
                    link.next_ping = now + timers.supernode_ping;
                }
                if let Some((c, sent)) = link.last_sent {
                    if c == ack.counter {
                        link.rtt = Some(now.saturating_duration_since(sent));
                    }
                }
                link.next_register = now + timers.register_interval;
                link.retry = timers.register_retry;
                link.boot_id = Some(ack.boot_id);
                link.want_peers = false;
                if restarted {
                    core.events
                        .push_back(Event::SupernodeRestarted { supernode: addr });
                }
                if !was || core.observed != Some(ack.observed) {
                    core.events.push_back(Event::Registered {
                        supernode: addr,
                        observed: ack.observed,
                    });
                }
                core.observed = Some(ack.observed);
                self.choose_active();
                let core = &mut self.core;
                if core.cfg.address == AddressMode::Auto {
                    if let Some(ip) = ack.assigned_ip {
                        if core.assigned_ip != Some(ip) {
                            core.assigned_ip = Some(ip);
                            core.events.push_back(Event::AddressAssigned(ip));
                        }
                    }
                }
                // Peers that had no path because no supernode was reachable can now use the relay.
                for p in self.peers.values_mut() {
                    if p.current.is_none() && p.pending.is_none() {
                        core.initiate(p, now);
                    }
                }
                if !core.held_inits.is_empty() {
                    self.release_held_inits(None, now);
                }
            }
            Message::RegisterNak(nak) => {
                if nak.community != community || nak.public_key != own {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                }
                let core = &mut self.core;
                let link = &mut core.supernodes[sn];
                link.heard();
                if nak.reason == NakReason::NameRequired && !link.send_name {
                    // It admits communities by name pattern: tell it the name, once, right away.
                    link.send_name = true;
                    link.next_register = now;
                    return;
                }
                if nak.reason == NakReason::Busy {
                    // Paced, not refused: the registration timer's back-off is already running (1 s,
                    // doubling); say so once per refusal streak.
                    if link.refusal != Some(NakReason::Busy) {
                        link.refusal = Some(NakReason::Busy);
                        core.events.push_back(Event::RegistrationRefused {
                            supernode: link.addr,
                            reason: nak.reason,
                        });
                    }
                    return;
                }
                link.registered = false;
                link.refused = true;
                link.refusal = Some(nak.reason);
                // Refused: try again only slowly, the operator has to fix something first (re-adding
                // a removed key lets the edge back in at its next attempt).
                link.next_register = now + core.cfg.timers.register_interval;
                core.events.push_back(Event::RegistrationRefused {
                    supernode: link.addr,
                    reason: nak.reason,
                });
                if core.active == Some(sn) {
                    core.active = None;
                    self.choose_active();
                }
                // Cut off (our key or our community is no longer admitted) and no other supernode
                // admits us: stop the data plane. Peers were told to forget us; forget them too, so
                // nothing more is sent until a supernode admits us and introduces us again.
                let cut_off = matches!(
                    nak.reason,
                    NakReason::KeyNotAllowed | NakReason::CommunityNotAllowed
                );
                if cut_off && !self.is_registered() {
                    let keys: Vec<PublicKey> = self.peers.keys().copied().collect();
                    for k in keys {
                        if self.forget_peer(&k) {
                            self.core.events.push_back(Event::PeerGone { peer: k });
                        }
                    }
                    self.core.held_inits.clear();
                    self.core.unconfirmed.clear();
                }
            }
            Message::PeerRevoked(rv) => {
                if rv.community != community {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                }
                if rv.public_key != own && self.peers.contains_key(&rv.public_key) {
                    self.forget_peer(&rv.public_key);
                    self.core.events.push_back(Event::PeerRevoked {
                        peer: rv.public_key,
                    });
                }
                self.core.held_inits.retain(|h| h.key != rv.public_key);
                self.core.unconfirmed.retain(|k| *k != rv.public_key);
            }
            Message::PeerInfo(info) => {
                if info.community != community {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                }
                if info.public_key == own {
                    return;
                }
                let key = info.public_key;
                let core = &mut self.core;
                if !core.peer_allowed(&key) {
                    // Introduced, but not on our own list: never a peer, never initiated to.
                    core.refuse_not_allowed(key);
                    return;
                }
                let Some(p) = core.ensure_peer(&mut self.peers, key, now) else {
                    return;
                };
                p.introduced = true;
                p.mac = Some(info.mac);
                p.ip = info.ip;
                p.description = info.description;
                core.on_introduction(p, info.observed, info.local_addrs, info.punch, now);
                if core.held_inits.iter().any(|h| h.key == key) {
                    self.release_held_inits(Some(key), now);
                }
                // Looked up again: answering the held initiation ran the handshake code on the table.
                let Some(p) = self.peers.get_mut(&key) else {
                    return;
                };
                if p.current.is_none() && p.pending.is_none() {
                    self.core.initiate(p, now);
                }
            }
            Message::SupernodePong(pong) => {
                let link = &mut self.core.supernodes[sn];
                let Some((nonce, sent)) = link.ping else {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                };
                if pong.nonce != nonce {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                }
                link.ping = None;
                link.last_heard = Some(now);
                link.rtt = Some(now.saturating_duration_since(sent));
                link.load_permille = pong.load_permille;
                if link.boot_id.is_some_and(|b| b != pong.boot_id) {
                    // Restarted (and it already has our registration again from someone? no: from an
                    // address reuse); register now to be sure it has everything.
                    link.next_register = now;
                    link.want_peers = true;
                }
                self.choose_active();
            }
            Message::UnknownSender => {
                // The supernode lost our registration (it expired it): register again now, at most once a second.
                let link = &mut self.core.supernodes[sn];
                if link
                    .last_unknown_sender
                    .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
                {
                    link.last_unknown_sender = Some(now);
                    link.next_register = now;
                    link.want_peers = true;
                }
            }
            _ => self.core.stats.dropped_malformed += 1,
        }
    }
}
