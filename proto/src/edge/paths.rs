//! The path to each peer, direct or relayed, and hole punching: direct-path candidates, probe rounds with
//! back-off, the decision to ask the supernode for a coordinated punch, switching to the direct path on
//! the first probe reply, path checks (a working path stays; a peer that moved is followed), keepalives,
//! and falling back to the relay when the direct path goes quiet.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::RngCore;

use super::peer::Peer;
use super::timers::After;
use super::{Core, Event, Path};
use crate::wire::{self, DataKind};

/// Direct-path probing while the peer is not direct.
pub(crate) struct Probing {
    /// When the next round of probes goes out.
    pub next_at: Instant,
    /// The current interval between rounds.
    pub interval: Duration,
    /// The nonce of the current round; replies echo it.
    pub nonce: [u8; 8],
    /// When the current round was sent (for the RTT of a reply).
    pub sent_at: Instant,
}

/// A check of the current direct path, started when an authentic packet arrived from another address.
pub(crate) struct PathCheck {
    /// The other address (the latest one heard from while the check runs).
    pub to: SocketAddr,
    /// When the check began (the current address was probed then).
    pub started: Instant,
    /// When it concludes: the path moves to `to` unless the current address was heard from since
    /// `started`.
    pub until: Instant,
}

/// At most this many candidates per peer.
const MAX_CANDIDATES: usize = 12;

/// Bounds of the time the current direct address has to answer a path check: four round trips, at
/// least this (a scheduling hiccup on either host is not a move) ...
const CHECK_MIN: Duration = Duration::from_millis(250);
/// ... and at most this (a peer that really moved is followed within about a second).
const CHECK_MAX: Duration = Duration::from_secs(1);

impl Peer {
    /// Adds a direct-path candidate (bounded; the oldest peer-reflexive entries give way).
    pub fn add_candidate(&mut self, addr: SocketAddr) {
        if addr.port() == 0 || addr.ip().is_unspecified() || self.candidates.contains(&addr) {
            return;
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            self.candidates.remove(0);
        }
        self.candidates.push(addr);
    }

    /// Restarts probing from the first, fastest interval.
    pub fn restart_probing(&mut self, now: Instant, first: Duration) {
        self.probing.next_at = now;
        self.probing.interval = first;
    }
}

impl Path {
    /// The path for packets to a peer whose path is `self`: direct stays direct, anything else goes
    /// through the relaying supernode (`relay`), or nowhere without one.
    pub(super) fn or_relay(self, relay: impl FnOnce() -> Option<SocketAddr>) -> Path {
        match self {
            Path::Direct(a) => Path::Direct(a),
            _ => match relay() {
                Some(sn) => Path::Relayed(sn),
                None => Path::None,
            },
        }
    }

    /// Where a packet on this path goes: the peer itself, or the relaying supernode.
    pub(super) fn dest(self, relay: impl FnOnce() -> Option<SocketAddr>) -> Option<SocketAddr> {
        match self {
            Path::Direct(a) => Some(a),
            Path::Relayed(sn) => Some(sn),
            Path::None => relay(),
        }
    }
}

impl Core {
    // ----- timers -----

    /// Timer: a direct path with no packet from the peer for `direct_timeout` has failed.
    pub(super) fn direct_path_deadline(&self, p: &Peer) -> Option<Instant> {
        p.path
            .is_direct()
            .then(|| p.last_direct_rx.unwrap_or(p.created) + self.cfg.timers.direct_timeout)
    }

    /// What the direct-path timer does: fall back to the relay at once, and probe again from the fastest
    /// pace.
    pub(super) fn fall_back_to_relay(&mut self, p: &mut Peer, now: Instant) -> After {
        p.restart_probing(now, self.cfg.timers.probe_first);
        p.path_check = None;
        p.path = Path::None.or_relay(|| self.relay_supernode());
        self.events.push_back(Event::PathChanged {
            peer: p.key,
            path: p.path,
        });
        After::Continue
    }

    /// Timer: a peer with a session we sent nothing to for `keepalive` gets a keepalive (keeps NAT
    /// mappings and liveness).
    pub(super) fn keepalive_deadline(&self, p: &Peer) -> Option<Instant> {
        p.current
            .as_ref()
            .map(|_| p.last_tx + self.cfg.timers.keepalive)
    }

    /// What the keepalive timer does. On a direct path the keepalive is a probe: the reply keeps the RTT
    /// shown in status current and proves the path works both ways, at the cost of one small packet per
    /// idle interval.
    pub(super) fn send_keepalive(&mut self, p: &mut Peer, now: Instant) -> After {
        if let Path::Direct(addr) = p.path {
            p.probing.sent_at = now;
            let nonce = p.probing.nonce;
            self.send_data(p, DataKind::Probe, &nonce, Some(Path::Direct(addr)), now);
        } else {
            self.send_data(p, DataKind::Keepalive, &[], None, now);
        }
        After::Continue
    }

    /// Timer: the next probe round, while the peer has a session, is not direct and has candidates (and
    /// direct paths are allowed).
    pub(super) fn probe_deadline(&self, p: &Peer) -> Option<Instant> {
        (self.cfg.allow_p2p
            && p.current.is_some()
            && !p.path.is_direct()
            && !p.candidates.is_empty())
        .then_some(p.probing.next_at)
    }

    /// What the probe timer does, the hole-punch decision: a round of probes to every candidate with a
    /// fresh nonce, the next round after the current interval, which doubles up to `probe_max`; at that
    /// slowest pace, also ask the supernode to have the peer probe us at the same moment.
    pub(super) fn probe_round(&mut self, p: &mut Peer, now: Instant) -> After {
        let max = self.cfg.timers.probe_max;
        let at_max = p.probing.interval >= max;
        self.rng.fill_bytes(&mut p.probing.nonce);
        p.probing.sent_at = now;
        p.probing.next_at = now + p.probing.interval;
        p.probing.interval = (p.probing.interval * 2).min(max);
        let nonce = p.probing.nonce;
        for c in p.candidates.clone() {
            self.send_data(p, DataKind::Probe, &nonce, Some(Path::Direct(c)), now);
        }
        if at_max {
            self.request_punch(p);
        }
        After::Continue
    }

    /// Asks the supernode to have the peer and us probe each other at the same moment.
    fn request_punch(&mut self, p: &Peer) {
        let Some(sn) = self.active else {
            return;
        };
        let mut buf = Vec::new();
        wire::PunchRequest {
            community: self.cfg.community.id,
            from: self.cfg.identity.public,
            target: p.key,
        }
        .encode(&mut buf);
        self.send_ctl(sn, &buf);
    }

    // ----- what the supernode and the peer tell us -----

    /// Peer info arrived: the peer's public (`observed`) and local addresses become candidates. With the
    /// punch flag the supernode sent the mirror message to the peer at this moment, so probe now.
    pub(super) fn on_introduction(
        &mut self,
        p: &mut Peer,
        observed: SocketAddr,
        local_addrs: Vec<SocketAddr>,
        punch: bool,
        now: Instant,
    ) {
        let allow_p2p = self.cfg.allow_p2p;
        for a in std::iter::once(observed).chain(local_addrs) {
            if self.usable_direct(a) {
                p.add_candidate(a);
            }
        }
        if punch && allow_p2p && !p.path.is_direct() {
            p.restart_probing(now, self.cfg.timers.probe_first);
        }
        // A punch about a peer we reach directly at another address: it moved (its NAT changed
        // its public address) and the supernode asks both sides to open their NATs towards each
        // other now. Probe the new address; the first authentic packet from there starts a path
        // check (`on_direct_rx`), which moves the path once the old address proves silent.
        // Ignoring the punch because the path "is direct" kept the dead path until
        // `direct_timeout` when our own NAT filters by remote address: 21 s of lost frames.
        let roamed = match p.path {
            Path::Direct(a) => {
                punch
                    && allow_p2p
                    && a != observed
                    && p.current.is_some()
                    && self.usable_direct(observed)
            }
            _ => false,
        };
        if roamed {
            let nonce = p.probing.nonce;
            self.send_data(
                p,
                DataKind::Probe,
                &nonce,
                Some(Path::Direct(observed)),
                now,
            );
        }
        // New candidates or a restarted round can bring the next probe round forward.
        self.rearm(p);
    }

    /// An authentic packet arrived straight from the peer at `from`.
    ///
    /// From the current direct address it keeps the path alive. From another address it does not move
    /// a working path: two addresses of one peer can both deliver (another VPN's tunnel beside the
    /// underlay, a second link), and taking every such packet for roaming made the path follow
    /// whichever of them carried the last packet, including a tunnel too small for full-size frames.
    /// Instead the current address is probed (a path check); only if it stays silent for the check's
    /// window (`check_window`) has the peer moved, and the path follows it to the other address.
    ///
    /// A packet from an address in one of our own tunnels' or bridges' networks (`avoid_nets`) came
    /// through that interface: it is delivered, but that address is no path and no candidate.
    pub(super) fn on_direct_rx(&mut self, p: &mut Peer, from: SocketAddr, now: Instant) {
        if !self.usable_direct(from) {
            return;
        }
        p.last_direct_rx = Some(now);
        p.add_candidate(from);
        match p.path {
            Path::Direct(a) if a == from => p.last_path_rx = Some(now),
            Path::Direct(a) => match &mut p.path_check {
                Some(c) => c.to = from,
                None => {
                    p.path_check = Some(PathCheck {
                        to: from,
                        started: now,
                        until: now + check_window(p.rtt),
                    });
                    p.probing.sent_at = now;
                    let nonce = p.probing.nonce;
                    self.send_data(p, DataKind::Probe, &nonce, Some(Path::Direct(a)), now);
                    self.rearm(p);
                }
            },
            _ => {
                // The peer reaches us directly; check that we reach it too, right away.
                if self.cfg.allow_p2p {
                    self.start_probe_to(p, from, now);
                }
                // A first candidate arms the probe timer.
                self.rearm(p);
            }
        }
    }

    /// Timer: a running path check concludes.
    pub(super) fn path_check_deadline(&self, p: &Peer) -> Option<Instant> {
        p.path_check.as_ref().map(|c| c.until)
    }

    /// What the path-check timer does: the current address was heard from since the check began, so the
    /// path works and stays; or it was not, so the peer moved and the path follows it.
    pub(super) fn conclude_path_check(&mut self, p: &mut Peer, _: Instant) -> After {
        let Some(c) = p.path_check.take() else {
            return After::Continue;
        };
        let Path::Direct(a) = p.path else {
            return After::Continue;
        };
        let heard = p.last_path_rx.is_some_and(|t| t >= c.started);
        if !heard && a != c.to {
            p.path = Path::Direct(c.to);
            p.last_path_rx = p.last_direct_rx;
            self.events.push_back(Event::PathChanged {
                peer: p.key,
                path: p.path,
            });
        }
        After::Continue
    }

    /// One probe to `addr`, unless the peer is already direct.
    pub(super) fn start_probe_to(&mut self, p: &mut Peer, addr: SocketAddr, now: Instant) {
        if p.path.is_direct() || !self.cfg.allow_p2p {
            return;
        }
        let nonce = p.probing.nonce;
        self.send_data(p, DataKind::Probe, &nonce, Some(Path::Direct(addr)), now);
    }

    /// A probe arrived straight from the peer at `from`: echo it back there.
    pub(super) fn answer_probe(
        &mut self,
        p: &mut Peer,
        from: SocketAddr,
        nonce: &[u8],
        now: Instant,
    ) {
        let echo = nonce.to_vec();
        self.send_data(
            p,
            DataKind::ProbeReply,
            &echo,
            Some(Path::Direct(from)),
            now,
        );
    }

    /// A reply to our probe from `from`: the path to there works both ways, switch to it.
    pub(super) fn on_probe_reply(
        &mut self,
        p: &mut Peer,
        from: SocketAddr,
        payload: &[u8],
        now: Instant,
    ) {
        if payload != p.probing.nonce || !self.usable_direct(from) {
            return; // a stale round's reply (the next round proves the path anyway), or no usable path
        }
        p.rtt = Some(now.saturating_duration_since(p.probing.sent_at));
        if p.path != Path::Direct(from) && !p.path.is_direct() {
            p.path = Path::Direct(from);
            p.last_direct_rx = Some(now);
            p.last_path_rx = Some(now);
            p.path_check = None;
            self.events.push_back(Event::PathChanged {
                peer: p.key,
                path: Path::Direct(from),
            });
            // The direct path arms its timeout.
            self.rearm(p);
        }
    }

    /// Whether `addr` may be a direct path: not inside the network of one of this host's tunnels or
    /// container bridges (`avoid_nets`), which would carry the traffic instead of the underlay.
    pub(super) fn usable_direct(&self, addr: SocketAddr) -> bool {
        let std::net::IpAddr::V4(ip) = addr.ip() else {
            return true;
        };
        !self.cfg.avoid_nets.iter().any(|n| {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(n.prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(n.addr) & mask
        })
    }

    /// Why the path to `p` is not direct, when it is not (for status).
    pub(super) fn why_not_direct(&self, p: &Peer) -> Option<&'static str> {
        if p.path.is_direct() {
            None
        } else if !self.cfg.allow_p2p {
            Some("direct paths disabled (allow_p2p=false)")
        } else if p.current.is_none() {
            Some("no session yet")
        } else if p.candidates.is_empty() {
            Some("no address known for the peer")
        } else {
            Some("no probe answered yet (NAT on one side does not allow a direct path)")
        }
    }
}

/// How long the current direct address has to answer a path check: four round trips (the probe and
/// its reply, with room for jitter and a delayed answer), within [`CHECK_MIN`, `CHECK_MAX`].
fn check_window(rtt: Option<Duration>) -> Duration {
    rtt.map_or(CHECK_MAX, |r| (r * 4).clamp(CHECK_MIN, CHECK_MAX))
}
