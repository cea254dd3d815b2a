//! What the attack tests send: the edge's side of a control channel played by hand (to register with
//! chosen credentials), and datagrams with a forged source address (an on-path host speaking for the
//! supernode).

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use weft_e2e::nsnet;
use weft_proto::control;
use weft_proto::keys::{PublicKey, StaticKeypair};
use weft_proto::session::Session;
use weft_proto::wire::{self, DataKind, Message, DATA_HEADER_LEN};

/// Opens a control session with the supernode at `sn` (key `sn_key`) as `me`, over `sock`.
pub fn handshake(
    sock: &UdpSocket,
    sn: SocketAddr,
    sn_key: &PublicKey,
    me: &StaticKeypair,
    timestamp: u64,
) -> Result<Session> {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&timestamp.to_le_bytes());
    let index = timestamp as u32;
    let (init, b, _) = control::initiation(me, sn_key, index, timestamp, seed, None)?;
    sock.send_to(&b, sn)?;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if from != sn {
            continue;
        }
        if let Ok(Message::CtlResp(r)) = wire::decode(&buf[..n]) {
            if r.receiver_index == index {
                let keys = init.finish(r.noise)?;
                return Ok(Session::new(
                    keys,
                    index,
                    r.sender_index,
                    true,
                    Instant::now(),
                ));
            }
        }
    }
    bail!("no control handshake response from {sn}")
}

/// `msg` (an encoded control message) sealed in `session`.
pub fn sealed(session: &mut Session, msg: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; DATA_HEADER_LEN];
    b.extend_from_slice(msg);
    session.seal_at(DataKind::Control, &mut b, 0);
    b
}

/// Sends `payload` from namespace `ns` to `to` with the forged source `from` (an address of another
/// host): IP_TRANSPARENT lets a socket bind and send from an address that is not its own, as an on-path
/// router can. The forged packets bypass connection tracking there: on a NAT router, conntrack would
/// otherwise see them clash with the real flow they imitate and rewrite their source port.
pub fn spoof(ns: &str, from: SocketAddr, to: SocketAddr, payloads: &[Vec<u8>]) -> Result<()> {
    let saddr = from.ip().to_string();
    let sport = from.port().to_string();
    for cmd in [
        vec!["add", "table", "ip", "weft_attack"],
        vec![
            "add",
            "chain",
            "ip",
            "weft_attack",
            "out",
            "{ type filter hook output priority raw; }",
        ],
        vec![
            "add",
            "rule",
            "ip",
            "weft_attack",
            "out",
            "ip",
            "saddr",
            &saddr,
            "udp",
            "sport",
            &sport,
            "notrack",
        ],
    ] {
        let mut args = vec!["netns", "exec", ns, "nft"];
        args.extend(cmd);
        let out = weft_e2e::cmd::run("ip", &args, Duration::from_secs(5))?;
        anyhow::ensure!(out.status.success(), "nft in {ns}: {}", out.stderr);
    }
    let socks = spoofed_sockets(ns, &[from])?;
    for p in payloads {
        socks[0].send_to(p, &to.into())?;
    }
    Ok(())
}

/// Sockets in namespace `ns` bound to forged sources (addresses of nobody on its segment), to send a
/// flood that appears to come from many hosts.
pub fn spoofed_sockets(ns: &str, sources: &[SocketAddr]) -> Result<Vec<Socket>> {
    nsnet::in_netns(ns, || {
        sources
            .iter()
            .map(|from| {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
                s.set_ip_transparent(true)
                    .context("IP_TRANSPARENT (needs CAP_NET_ADMIN)")?;
                s.set_freebind(true)?;
                s.set_reuse_address(true)?;
                s.bind(&(*from).into())
                    .with_context(|| format!("binding the forged source {from}"))?;
                Ok(s)
            })
            .collect()
    })
}
