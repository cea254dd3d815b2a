//! Writes one valid datagram of every message type into a directory: the seed corpus of the `decode`
//! fuzz target (`fuzz/seeds/decode`), so the fuzzer starts from messages that decode and mutates them
//! field by field instead of first having to discover the header.
//! `cargo run -p weft-proto --example wire_samples -- fuzz/seeds/decode` rewrites it.

use std::net::SocketAddr;
use std::path::PathBuf;

use weft_proto::keys::{CommunityId, CommunityKeys, PeerTag, PublicKey};
use weft_proto::wire::{
    self, DataHeader, DataKind, FedMessage, Ipv4Net, MacAddr, MsgType, NakReason, PeerInfo,
    PeerRevoked, PunchRequest, Register, RegisterAck, RegisterNak, SupernodePong,
    ADMISSION_TAG_LEN, DATA_HEADER_LEN, NOISE_INIT_LEN, NOISE_RESP_LEN, TAG_LEN,
};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("fuzz/seeds/decode".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let community = CommunityId::from_name("home");
    let keys = CommunityKeys::from_key_material("home", b"a long shared secret");
    let edge = PublicKey([7; 32]);
    let v4: SocketAddr = "203.0.113.7:7777".parse().expect("address");
    let v6: SocketAddr = "[2001:db8::7]:7777".parse().expect("address");
    let net: Ipv4Net = "10.0.0.7/24".parse().expect("network");
    let mac = MacAddr([2, 0, 0, 0, 0, 7]);
    let mut samples: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut put = |name: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = Vec::new();
        f(&mut b);
        samples.push((name, b));
    };
    put("handshake_init", &|b| {
        wire::encode_handshake_init(1, &[0x11; NOISE_INIT_LEN], b, |_| [0x33; 16], |_| [0; 16]);
    });
    put("handshake_resp", &|b| {
        wire::encode_handshake_resp(2, 1, &[0x22; NOISE_RESP_LEN], b, |_| [0x44; 16])
    });
    put("cookie_reply", &|b| {
        wire::encode_cookie_reply(
            &wire::CookieReply {
                receiver_index: 1,
                nonce: [0x55; wire::COOKIE_NONCE_LEN],
                sealed: [0x66; wire::SEALED_COOKIE_LEN],
            },
            b,
        )
    });
    put("data", &|b| {
        let mut h = [0u8; DATA_HEADER_LEN];
        DataHeader {
            kind: DataKind::Frame,
            receiver_index: 1,
            counter: 9,
        }
        .write(&mut h);
        b.extend_from_slice(&h);
        b.extend_from_slice(&[0x33; 60 + TAG_LEN]);
    });
    put("register", &|b| {
        let reg = Register {
            community,
            public_key: edge,
            counter: 1,
            mac,
            wants_ip: true,
            wants_peers: true,
            static_ip: Some(net),
            local_addrs: vec![v4, v6],
            description: "laptop".into(),
            name: Some("home".into()),
            admission_tag: [0; ADMISSION_TAG_LEN],
        };
        reg.encode_unsigned(b);
        let tag = keys.admission.tag(b);
        b.extend_from_slice(&tag);
    });
    put("register_ack", &|b| {
        RegisterAck {
            community,
            public_key: edge,
            counter: 1,
            observed: v4,
            assigned_ip: Some(net),
            lifetime_secs: 60,
            boot_id: 5,
            introduced_only: true,
        }
        .encode(b)
    });
    put("register_nak", &|b| {
        RegisterNak {
            community,
            public_key: edge,
            counter: 1,
            reason: NakReason::KeyNotAllowed,
        }
        .encode(b)
    });
    put("peer_info", &|b| {
        PeerInfo {
            community,
            punch: true,
            public_key: edge,
            mac,
            ip: Some(net),
            observed: v4,
            local_addrs: vec![v6],
            description: "desk".into(),
        }
        .encode(b)
    });
    put("punch_request", &|b| {
        PunchRequest {
            community,
            from: edge,
            target: PublicKey([8; 32]),
        }
        .encode(b)
    });
    put("peer_revoked", &|b| {
        PeerRevoked {
            community,
            public_key: edge,
        }
        .encode(b)
    });
    put("unknown_sender", &|b| wire::encode_unknown_sender(b));
    put("ping", &|b| wire::encode_supernode_ping(42, b));
    put("pong", &|b| {
        SupernodePong {
            nonce: 42,
            boot_id: 5,
            load_permille: 10,
        }
        .encode(b)
    });
    put("relay", &|b| {
        wire::encode_relay_header(MsgType::Relay, PeerTag([9; 8]), b);
        wire::encode_handshake_init(1, &[0x11; NOISE_INIT_LEN], b, |_| [0x33; 16], |_| [0; 16]);
    });
    put("relayed", &|b| {
        wire::encode_relay_header(MsgType::Relayed, PeerTag([9; 8]), b);
        wire::encode_handshake_resp(2, 1, &[0x22; NOISE_RESP_LEN], b, |_| [0x44; 16]);
    });
    put("fed_gone", &|b| {
        FedMessage::Gone {
            community,
            key: edge,
        }
        .encode(b)
    });
    put("fed_init", &|b| {
        wire::FedInit {
            sender_index: 7,
            noise: &[0x11; wire::CTL_NOISE_INIT_LEN],
            mac: [0x55; wire::CTL_MAC_LEN],
        }
        .encode(b)
    });
    put("fed_resp", &|b| {
        wire::FedResp {
            sender_index: 8,
            receiver_index: 7,
            noise: &[0x22; wire::CTL_NOISE_RESP_LEN],
        }
        .encode(b)
    });
    put("ctl_init", &|b| {
        wire::CtlInit {
            sender_index: 7,
            noise: &[0x11; wire::CTL_NOISE_INIT_LEN],
            mac: [0x55; wire::CTL_MAC_LEN],
            mac2: [0; wire::MAC_LEN],
        }
        .encode(b)
    });
    put("ctl_resp", &|b| {
        wire::CtlResp {
            sender_index: 8,
            receiver_index: 7,
            noise: &[0x22; wire::CTL_NOISE_RESP_LEN],
        }
        .encode(b)
    });
    put("key_query", &|b| wire::encode_key_query(b));
    put("key_reply", &|b| wire::KeyReply { key: edge }.encode(b));
    put("data_control", &|b| {
        let mut h = [0u8; DATA_HEADER_LEN];
        DataHeader {
            kind: DataKind::Control,
            receiver_index: 8,
            counter: 3,
        }
        .write(&mut h);
        b.extend_from_slice(&h);
        b.extend_from_slice(&[0x77; 40]);
    });
    for (name, bytes) in &samples {
        assert!(wire::decode(bytes).is_ok(), "{name} must decode");
        std::fs::write(dir.join(name), bytes)?;
    }
    println!("{} samples written to {}", samples.len(), dir.display());
    Ok(())
}
