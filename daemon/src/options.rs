//! The option tables of both daemons, here rather than in each binary so that weft.conf(5) can be
//! generated from one place (`weft-edge --generate man-conf`). Each daemon's schema is its own table
//! followed by [`crate::COMMON_OPTIONS`] ([`crate::schema`]).

use weft_config::OptionSpec;

/// The edge's own options.
pub const EDGE_OPTIONS: &[OptionSpec] = &[
        OptionSpec::new("community", "name", "Name of the community (the virtual Ethernet segment) to join. Required."),
        OptionSpec::new("community", "key", "The community secret. Use a generated key: `weft-edge new-community-key` prints a new one (weftkey1- and 72 hex digits), the same on every edge of the community. Anything else is a passphrase, which goes through Argon2id (kdf_memory, kdf_passes) so that guessing it from captured traffic is slow; a passphrase that is easy to guess still draws a warning at start-up. Also read from the environment variable WEFT_KEY, or from key_file.").secret(),
        OptionSpec::new("community", "key_file", "A file whose first line is the community secret (a generated key or a passphrase, as for key)."),
        OptionSpec::new("community", "kdf_memory", "Memory in KiB that Argon2id uses to turn a passphrase secret into keys (not used with a generated key), once at start-up; an attacker pays as much for every guess. At least 8192, at most 4194304. Every edge of the community must use the same value, and so must `weft-edge admission-key --kdf-memory` when it makes the supernode's admission key.").default("65536"),
        OptionSpec::new("community", "kdf_passes", "Passes of Argon2id over kdf_memory for a passphrase secret, 1 to 64. The same on every edge of the community and for `weft-edge admission-key --kdf-passes`.").default("3"),
        OptionSpec::new("community", "supernode", "A supernode to register with, as host:port (port 7700 when omitted). Repeatable; at least one is required. With several, the edge stays registered with all of them, relays through the closest and moves to another within about 4 s when it stops answering (supernodes serving one network federate: see the supernode's peer and federation options).").repeatable(),
        OptionSpec::new("tuntap", "name", "Name of the TAP device. Default: weft-<session>, cut to 15 characters."),
        OptionSpec::new("tuntap", "address", "The virtual IPv4 address with prefix length, e.g. 10.0.0.1/24 (address_mode=static)."),
        OptionSpec::new("tuntap", "address_mode", "static: use address; auto: the supernode assigns one; dhcp: the device comes up without an IPv4 address for a DHCP client. Default: static when address is set, else auto."),
        OptionSpec::new("tuntap", "macaddr", "MAC address of the TAP device. Default: derived from this edge's identity key, so it is stable across restarts."),
        OptionSpec::new("tuntap", "mtu", "MTU of the TAP device. 1400 leaves room for the 32-byte tunnel and 12-byte relay headers on a 1500-byte IPv4 underlay.").default("1400"),
        OptionSpec::new("tuntap", "offload", "Let the kernel hand over large TCP/UDP segments (TSO/USO) that the edge cuts into frames itself: far fewer system calls per byte. Turn off only to debug.").default("true"),
        OptionSpec::new("tuntap", "description", "A description shown to peers and in status. Default: the host name."),
        OptionSpec::new("connection", "bind", "Local UDP address and port, [addr]:port; port 0 picks a free port.").default("0.0.0.0:0"),
        OptionSpec::new("connection", "allow_p2p", "Try direct paths to peers. false sends all traffic through the supernode.").default("true"),
        OptionSpec::new("connection", "register_interval", "Seconds between registration refreshes with each supernode.").default("20"),
        OptionSpec::new("connection", "advertise", "A local address (ip or ip:port) to offer peers as a direct-path candidate. Repeatable. Default: every IPv4 address of this host's interfaces that are up, except loopback and the TAP device.").repeatable(),
];

/// The supernode's own options.
pub const SUPERNODE_OPTIONS: &[OptionSpec] = &[
        OptionSpec::new("connection", "bind", "UDP address and port to listen on, [addr]:port.").default("0.0.0.0:7700"),
        OptionSpec::new("supernode", "community_file", "A file listing the communities this supernode serves, and on what terms; re-read on reload (weftctl reload, or SIGHUP). Without this option every community is admitted. One entry per line, an indented line continues the entry above, # starts a comment. An entry is a community name, or a pattern with * and ?, followed by options:\n\nkey=HEX: the admission key (from `WEFT_KEY=<the community secret> weft-edge admission-key NAME`, with --kdf-memory and --kdf-passes when the edges set kdf_memory or kdf_passes and their secret is a passphrase); edges must prove they know the community secret. The form `NAME HEX` of earlier versions still works.\n\npool=NET/LEN: addresses assigned to this community's edges come from this network (else from a /24 inside auto_ip_min..auto_ip_max). Pools must not overlap.\n\nallow=KEY[,KEY...], repeatable: only edges with these public keys (64 hex digits, as `weft-edge show-key` prints them) are admitted, and they handshake only with peers the supernode introduced. Removing a key and reloading cuts that edge off within seconds: its registration is dropped, its peers drop their sessions with it, and it is refused with the reason. An empty allow= admits no key; with no allow= at all any key is admitted.\n\nA pattern admits every community whose name matches; their edges then tell this supernode the name (visible on the path, as in n3n). A pattern can have allow=, not key= or pool=.\n\nExample:\n\nfamily\n\nhome key=<64 hex digits> pool=10.10.0.0/24 allow=<laptop key>,<phone key>\n\noffice-* allow=<key>"),
        OptionSpec::new("supernode", "auto_ip_min", "First address of the pool for addresses assigned to edges (address_mode=auto); each community gets a /24 inside the pool.").default("10.128.0.0"),
        OptionSpec::new("supernode", "auto_ip_max", "Last address of that pool.").default("10.255.255.0"),
        OptionSpec::new("supernode", "lease_time", "Seconds an assigned address stays reserved for an edge that no longer registers; then it is freed for another edge (and a community's /24 once its last address is freed). An edge that comes back within it gets its old address again. Leases and their last-seen times are kept in <state_dir>/leases across restarts. 600 to 31536000.").default("86400"),
        OptionSpec::new("supernode", "peer", "Another supernode of this federation, as host:port (port 7700 when omitted). Repeatable; list every other supernode (a full mesh: a supernode never forwards what it heard from one peer to another). Needs federation.").repeatable(),
        OptionSpec::new("supernode", "federation", "The federation secret shared by all supernodes listed as peers: it authenticates what they tell each other (which edge is registered where). Also read from the environment variable WEFT_FEDERATION.").secret(),
];
